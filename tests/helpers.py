"""Short ways into the engine for tests: the CLI as a process, one grid or one point."""

import os
import subprocess
import sys
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
