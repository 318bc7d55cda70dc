"""Short ways into the engine for tests: the CLI as a process, one grid or one point, and
the app served for a real browser and waited on there."""

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from core.measure import sweep

ROOT = Path(__file__).resolve().parents[1]


def cli(*args: str, timeout: float = 300, env: dict | None = None):
    """``python -m core ARGS`` in its own process, from the project root."""
    return subprocess.run(
        [sys.executable, "-m", "core", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )


def run_sweep(workload, grid, backends=None, settings=None, **options) -> list[dict]:
    """``plan`` then ``measure`` for one grid: the rows (the budget comes from settings)."""
    settings = settings or sweep.SweepSettings()
    tasks = sweep.plan(workload, grid, backends or sweep.default_backends(), settings)
    return sweep.measure(tasks, settings, budget_s=settings.sweep_budget_s, **options).rows


def measure_point(workload, params, backend, settings, **options) -> dict:
    """One point on one backend, planned and measured: its row."""
    (task,) = sweep.plan(workload, {k: [v] for k, v in params.items()}, [backend], settings)
    return sweep.measure_task(task, settings, **options)


@contextlib.contextmanager
def serve_app(store: Path, log: Path | None = None) -> Iterator[str]:
    """A real ``streamlit run`` of the app on a free port of 127.0.0.1 with its own store,
    answering on its health URL (or RuntimeError after 90 s); ended by its PID on exit."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "SPEEDUP_EXPLORER_STORE": f"sqlite:///{store}"}
    command = [sys.executable, "-m", "streamlit", "run", str(ROOT / "streamlit_app.py"),
               "--server.port", str(port), "--server.headless", "true"]  # fmt: skip
    with open(log or os.devnull, "w") as output:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=output)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while not _answers(f"{url}/_stcore/health"):
            if time.monotonic() > deadline:
                raise RuntimeError("streamlit did not answer on /_stcore/health within 90 s")
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return answer.read().decode().strip() == "ok"
    except OSError:
        return False


# Streamlit's "running" indicator: present while a script run is under way.
RUNNING = '[data-testid="stStatusWidget"]'


def idle(page, timeout_ms: float = 120_000) -> None:
    """Wait, in a Playwright page, until the app's script run has finished."""
    page.wait_for_function(
        f"() => !document.querySelector('{RUNNING}')", timeout=timeout_ms, polling=250
    )
