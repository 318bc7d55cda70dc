"""Shared fixtures: an isolated store for every test, and a real app in a real Chromium."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
]
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture(autouse=True)
def _isolated_store(tmp_path_factory, monkeypatch):
    """No test writes into the user's own results, nor reads another test's."""
    from core.measure import ceilings

    monkeypatch.setattr(
        ceilings, "cache_path", lambda: tmp_path_factory.getbasetemp() / "ceilings.json"
    )
    # A store per test: time estimates learn from stored rows, and one test's (measured
    # busy, say) must not decide whether another's page runs by itself.
    path = tmp_path_factory.mktemp("store") / "store.sqlite"
    monkeypatch.setenv("SPEEDUP_EXPLORER_STORE", f"sqlite:///{path}")
    # Nor reads or writes the user's measured ceilings.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture
def store_url(tmp_path, monkeypatch) -> str:
    """A store of the test's own, which the app and the CLI open by default."""
    url = f"sqlite:///{tmp_path / 'results.sqlite'}"
    monkeypatch.setenv("SPEEDUP_EXPLORER_STORE", url)
    return url


def _require_browser():
    found = Path(CHROMIUM).exists()
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        found = False
    if not found:
        reason = f"no browser: needs {CHROMIUM}, playwright and streamlit"
        if os.environ.get("SPEEDUP_EXPLORER_REQUIRE_BROWSER") == "1":
            pytest.fail(reason + " (required in CI)")
        pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def app_url(tmp_path_factory):
    """A real ``streamlit run`` on 127.0.0.1, ended by its PID after the session."""
    _require_browser()
    from tests.helpers import serve_app

    store = tmp_path_factory.mktemp("browser-store") / "store.sqlite"
    log = tmp_path_factory.mktemp("browser-log") / "streamlit.log"
    try:
        with serve_app(store, log) as url:
            yield url
    except RuntimeError as error:
        pytest.fail(str(error))


@pytest.fixture(scope="session")
def browser():
    _require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 2400})
    tab = context.new_page()
    yield tab
    context.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
