"""Short ways into the engine for tests: one grid or one point, planned and measured."""

from core.measure import sweep


def run_sweep(workload, grid, backends=None, settings=None, **options) -> list[dict]:
    """``plan`` then ``measure`` for one grid: the rows (the budget comes from settings)."""
    settings = settings or sweep.SweepSettings()
    tasks = sweep.plan(workload, grid, backends or sweep.default_backends(), settings)
    return sweep.measure(tasks, settings, budget_s=settings.sweep_budget_s, **options).rows


def measure_point(workload, params, backend, settings, **options) -> dict:
    """One point on one backend, planned and measured: its row."""
    (task,) = sweep.plan(workload, {k: [v] for k, v in params.items()}, [backend], settings)
    return sweep.measure_task(task, settings, **options)
