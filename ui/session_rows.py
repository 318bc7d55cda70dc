"""Every row the runner has measured in this server process, read without changing it.

``ui.runner`` keeps its cache private and is being reworked elsewhere, so this is the
one place that knows its shape: the Trust page gathers every point measured so far
onto one roofline through here, and nothing else reaches into the runner.
"""

from __future__ import annotations

import contextlib

import pandas as pd

from core import results, workloads
from ui import runner


def rows(workload_name: str | None = None) -> list[dict]:
    """Copies of the cached rows; only those of ``workload_name`` when it is given."""
    cache = getattr(runner, "_cache", None)
    if not cache:
        return []
    lock = getattr(runner, "_cache_lock", None) or contextlib.nullcontext()
    with lock:
        found = [dict(row) for row in cache.values()]
    return [row for row in found if workload_name is None or row.get("workload") == workload_name]


def frame(workload_name: str) -> pd.DataFrame:
    """The cached rows of one workload as the tidy result table."""
    workload = workloads.get(workload_name)
    return results.to_frame(rows(workload.name), workload.param_names)
