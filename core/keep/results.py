"""The tidy result table every part of the project speaks.

One row per (point, backend). Parameter columns sit between ``workload`` and
``backend`` and depend on the workload; everything else is fixed here so that the
store, the charts and the CLI agree on names and units.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import pandas as pd

from core import stats

STATUSES = ("ok", "skipped", "failed", "refused")

# Columns before the workload's own parameters.
LEADING_COLUMNS = ("run_id", "timestamp", "workload")

# Columns after the parameters, with their pandas dtypes.
MEASUREMENT_COLUMNS: dict[str, str] = {
    "backend": "string",  # label that tells two CPU backends apart, e.g. "cpu (1 thread)"
    "device": "string",  # torch device string: cpu, cuda:0, mps
    "device_name": "string",
    "dtype": "string",
    "threads": "Int64",
    "median_s": "float64",
    "p25_s": "float64",
    "p75_s": "float64",
    "min_s": "float64",
    "max_s": "float64",
    "mean_s": "float64",
    "n": "Int64",
    "rel_precision": "float64",  # half-width of the median's 95% interval over the median
    # The median's order-statistics interval at 97.5%: two of them give a speedup's 95%.
    "median_low_s": "float64",
    "median_high_s": "float64",
    "noisy": "boolean",
    "first_call_s": "float64",
    "times_s": "string",  # JSON list of the timed repeats the statistics come from
    "rounds": "Int64",  # how many rounds measured the point (busy or noisy ones repeat)
    "rounds_times_s": "string",  # JSON list of every round's repeats, when more than one
    "busy_share": "float64",  # other processes' share of the machine while it was timed
    "wall_s": "float64",  # the point on one backend: build, timing, check (every round)
    "dispatch_floor_s": "float64",
    "launch_s": "float64",  # host time to launch one call (accelerators)
    "flops": "float64",
    "bytes": "float64",
    "gflops_per_s": "float64",
    "gb_per_s": "float64",
    "memory_estimate_bytes": "float64",
    "peak_memory_bytes": "float64",
    "driver_memory_bytes": "float64",  # MPS: what the driver holds, caches included
    "max_rel_err": "float64",
    "implementation": "string",  # the kernel or path torch ran, where known (attention)
    "energy_j": "float64",  # joules per call, where a meter could read it (core.measure.energy)
    "energy_method": "string",  # how energy_j was read ("nvml: ..."), or why it was not
    "cold_cache": "boolean",
    "pct_of_ceiling": "float64",
    # comma-separated: noisy, busy, host-bound, cpu-fallback, suspect, mismatch, nonfinite
    "flags": "string",
    "status": "string",
    "message": "string",
}

# Columns a table may carry that are not stored per row: they come from the run or are computed.
DERIVED_COLUMNS = ("machine", "source", "speedup", "speedup_low", "speedup_high", "schema_version")


def empty_frame(param_names: Iterable[str] = ()) -> pd.DataFrame:
    """An empty result table with the right columns, for pages that have not run yet."""
    columns = [*LEADING_COLUMNS, *param_names, *MEASUREMENT_COLUMNS]
    return pd.DataFrame({name: pd.Series(dtype="object") for name in columns})


def to_frame(rows: list[dict] | dict[str, list], param_names: Iterable[str]) -> pd.DataFrame:
    """Rows (dicts from the sweep) or checked columns into a typed, column-ordered DataFrame."""
    if not len(rows):
        return empty_frame(tuple(param_names))
    frame = pd.DataFrame(rows)
    columns = [*LEADING_COLUMNS, *param_names, *MEASUREMENT_COLUMNS]
    for name in columns:
        if name not in frame:
            frame[name] = None
    frame = frame[columns + [c for c in frame.columns if c not in columns]]
    return _with_param_defaults(frame.astype(MEASUREMENT_COLUMNS))


def _with_param_defaults(frame: pd.DataFrame) -> pd.DataFrame:
    """Parameters a workload gained after a row was measured (a variant, a stride) take
    the value that row ran with: the parameter's default. Without it an old eager row
    would match nothing new, and speedups across runs would vanish."""
    from core.measure import workloads  # the registry; it does not import torch

    for name in frame["workload"].dropna().unique():
        workload = workloads.REGISTRY.get(str(name))
        mine = frame["workload"] == name
        for param in workload.params if workload else ():
            if param.name in frame and frame.loc[mine, param.name].isna().any():
                gaps = mine & frame[param.name].isna()
                if frame[param.name].isna().all():  # an empty column takes the value's type
                    frame[param.name] = frame[param.name].astype(object)
                frame.loc[gaps, param.name] = param.default
    return frame


def param_columns(table: Iterable[str], *, derived: bool = True) -> list[str]:
    """The workload parameter columns of a table, a row or a list of names: the unfixed ones.

    ``derived=False`` also leaves out ``DERIVED_COLUMNS`` (the run's machine and
    source, the computed speedup), which the store and imports do not keep per row.
    """
    fixed = {*LEADING_COLUMNS, *MEASUREMENT_COLUMNS, *(() if derived else DERIVED_COLUMNS)}
    return [c for c in table if c not in fixed]


def add_speedup(frame: pd.DataFrame, baseline_backend: str | None = None) -> pd.DataFrame:
    """Add ``speedup``: baseline median over this row's median, matched on every parameter,
    with its 95% interval (``speedup_low``, ``speedup_high``; see ``core.stats``).

    The baseline is the given backend, else the first CPU backend in the table. Rows
    without an ok baseline get NaN; the baseline's own rows get 1.
    """
    frame = with_median_intervals(fold_variants(frame))
    if frame.empty:
        return frame.assign(**{c: pd.Series(dtype="float64") for c in SPEEDUP_COLUMNS})
    if baseline_backend is None:
        baseline_backend = baseline_of(frame)
    keys = [k for k in [*param_columns(frame), "dtype"] if k in frame and k not in SPEEDUP_COLUMNS]
    ok = frame[(frame["status"] == "ok") & (frame["backend"] == baseline_backend)]
    renamed = {"median_s": "_base_s", "median_low_s": "_base_low_s"}
    base = ok[[*keys, *renamed, "median_high_s"]].rename(
        columns={**renamed, "median_high_s": "_base_high_s"}
    )
    base = base.drop_duplicates(subset=keys, keep="last")
    merged = frame.drop(columns=[c for c in SPEEDUP_COLUMNS if c in frame])
    merged = merged.merge(base, on=keys, how="left") if keys else merged.assign(_base_s=math.nan)
    ok_rows = merged["status"] == "ok"
    merged["speedup"] = merged["_base_s"] / merged["median_s"].where(ok_rows)
    # The ratio of two medians lies between the ratios of their intervals' ends.
    low = merged["_base_low_s"] / merged["median_high_s"].where(ok_rows)
    high = merged["_base_high_s"] / merged["median_low_s"].where(ok_rows)
    same = merged["backend"] == baseline_backend  # a row against itself is exactly 1
    merged["speedup_low"] = low.where(~same, 1.0).astype("float64")
    merged["speedup_high"] = high.where(~same, 1.0).astype("float64")
    return merged.drop(columns=["_base_s", "_base_low_s", "_base_high_s"], errors="ignore")


SPEEDUP_COLUMNS = ("speedup", "speedup_low", "speedup_high")


def with_median_intervals(frame: pd.DataFrame) -> pd.DataFrame:
    """Fill ``median_low_s``/``median_high_s`` from ``times_s`` where rows lack them (rows
    stored or exported before intervals were kept)."""
    frame = frame.copy()
    for name in ("median_low_s", "median_high_s"):
        if name not in frame:
            frame[name] = pd.Series(math.nan, index=frame.index, dtype="float64")
        frame[name] = pd.to_numeric(frame[name], errors="coerce").astype("float64")
    lacking = frame["median_low_s"].isna() & (frame.get("status") == "ok")
    if lacking.any() and "times_s" in frame:
        found = [
            stats.median_interval(stats.parse_times(text), stats.MEDIAN_CONFIDENCE)
            for text in frame.loc[lacking, "times_s"]
        ]
        frame.loc[lacking, ["median_low_s", "median_high_s"]] = found
    return frame


def baseline_of(frame: pd.DataFrame) -> str | None:
    """The backend others are compared with: the first CPU backend present, run eagerly
    where variants are compared."""
    backends = list(dict.fromkeys(frame["backend"].dropna()))
    cpu = [b for b in backends if str(b).startswith("cpu")]
    eager = [b for b in cpu if str(b).endswith(f"{VARIANT_SEPARATOR}eager")]
    return (eager or cpu or backends or [None])[0]


VARIANT_SEPARATOR = " · "


def fold_variants(frame: pd.DataFrame) -> pd.DataFrame:
    """Where any row ran another way than eagerly, each backend label names its variant
    ("cuda · compile") and the ``variant`` column goes: every chart then draws variants
    side by side per backend, and a speedup can be read against any backend and variant."""
    if "variant" not in frame or frame.empty:
        return frame
    variant = frame["variant"].astype("string").fillna("eager")
    if (variant == "eager").all():
        return frame
    folded = frame.drop(columns="variant")
    folded["backend"] = frame["backend"].astype("string") + VARIANT_SEPARATOR + variant
    return folded
