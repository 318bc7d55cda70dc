"""The README's two set-up commands are the ones CI runs."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _ci_variable(name: str) -> str:
    match = re.search(rf'^{name}="([^"]+)"$', (ROOT / ".ci/run").read_text(), re.MULTILINE)
    assert match, name
    return match.group(1)


def test_readme_has_exactly_the_two_commands_ci_runs():
    readme = (ROOT / "README.md").read_text()
    app = f"{_ci_variable('INSTALL_APP')} && streamlit run streamlit_app.py"
    tests = f"{_ci_variable('INSTALL_DEV')} && {_ci_variable('RUN_TESTS')}"
    setup = readme.split("## Set up", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)\n```", setup, re.DOTALL)
    assert blocks == [app, tests]


def test_streamlit_config_keeps_the_app_offline():
    config = (ROOT / ".streamlit/config.toml").read_text()
    assert 'address = "127.0.0.1"' in config
    assert "gatherUsageStats = false" in config
    assert 'fileWatcherType = "none"' in config
