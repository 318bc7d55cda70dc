"""What the Trust page and the explorer pages' roofline show, as plain tables: the
ceilings measured on this machine, the roofs to draw, the first-call slice, and the
committed fidelity run against independent timers."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from core import units
from core.measure import ceilings, workloads
from core.measure.ceilings import Ceilings
from core.measure.sweep import Backend

FIDELITY_PATH = Path(__file__).resolve().parents[2] / "bench" / "results" / "fidelity.json"
PEAK_DTYPES = ("float32", "tf32", "float16", "bfloat16")
FIDELITY_COLUMNS = {
    "point": "point",
    "engine_warm_ms": "engine warm (ms)",
    "engine_cold_ms": "engine cold L2 (ms)",
    "engine_pipelined_ms": "engine pipelined (ms)",
    "do_bench_ms": "do_bench (ms)",
    "timer_ms": "Timer (ms)",
    "warm_over_do_bench": "warm / do_bench",
    "cold_over_do_bench": "cold / do_bench",
    "pipelined_over_do_bench": "pipelined / do_bench",
    "warm_over_timer": "warm / Timer",
    "n": "repeats",
    "launch_ms": "launch (ms)",
    "flags": "flags",
}


def cached_ceilings(
    frame: pd.DataFrame | None = None, backends: Sequence[Backend] = ()
) -> dict[str, Ceilings | None]:
    """Each backend's ceilings as measured earlier on this machine, None where never measured;
    the backends of ``frame``'s rows first, then ``backends``. Only the CPU's ceilings depend
    on its thread count."""
    wanted = []
    if frame is not None and not frame.empty and "backend" in frame:
        seen = frame[["backend", "device", "threads"]].drop_duplicates()
        wanted = list(seen.itertuples(index=False, name=None))
    for backend in backends:
        cpu = backend.device == "cpu"
        wanted.append((backend.label, backend.device, backend.resolved_threads if cpu else None))
    found: dict[str, Ceilings | None] = {}
    for label, device, threads in wanted:
        if str(label) not in found:
            cpu = str(device) == "cpu" and pd.notna(threads)
            found[str(label)] = ceilings.cached_only(str(device), int(threads) if cpu else None)
    return found


def ceilings_table(found: dict[str, Ceilings | None]) -> pd.DataFrame:
    """One row per backend: bandwidths in GB/s and matmul peaks in TFLOP/s per dtype."""
    rows = []
    for label, roofs in found.items():
        row = {"backend": label, "measured": roofs is not None}
        if roofs is not None:
            row["memory copy GB/s"] = roofs.bandwidth_bytes_per_s / 1e9
            row["cache-sized copy GB/s"] = roofs.cache_bandwidth_bytes_per_s / 1e9
            for dtype in PEAK_DTYPES:
                rate = roofs.peak_flops_per_s.get(dtype)
                if rate is not None and math.isfinite(rate):
                    row[f"{dtype} matmul TFLOP/s"] = rate / 1e12
        rows.append(row)
    return pd.DataFrame(rows)


def roof_specs(found: dict[str, Ceilings | None], dtypes: Sequence[str]) -> dict[str, dict]:
    """What ``charts.roofline`` draws: bandwidth and the highest peak among ``dtypes``."""
    specs = {}
    for label, roofs in found.items():
        if roofs is None:
            continue
        peaks = [roofs.peak_for(d) for d in dtypes]
        peak = max((p for p in peaks if math.isfinite(p)), default=math.nan)
        bandwidth = roofs.bandwidth_bytes_per_s
        specs[label] = {"bandwidth_bytes_per_s": bandwidth, "peak_flops_per_s": peak}
    return specs


def cold_slice(frame: pd.DataFrame, param_names: Sequence[str]) -> tuple[str, pd.DataFrame, str]:
    """(x, rows, what): the numeric parameter with most values as x, and the largest group
    of rows that agree on every other parameter, so lines do not zigzag across them."""
    ok = frame[frame["status"] == "ok"] if len(frame) else frame
    numeric = [n for n in param_names if n in ok and pd.api.types.is_numeric_dtype(ok[n])]
    if ok.empty or not numeric:
        return (numeric or [""])[0], ok, ""
    x = max(numeric, key=lambda n: ok[n].nunique())
    # A point measured again under other budgets keeps its latest row: one value per x.
    keys = ["backend", "dtype", *(n for n in param_names if n in ok)]
    ok = ok.drop_duplicates(keys, keep="last")
    others = [n for n in param_names if n != x and n in ok] + ["dtype"]
    groups = ok.groupby(others, dropna=False, sort=False)
    values = max(groups.groups, key=lambda k: len(groups.groups[k]))
    values = values if isinstance(values, tuple) else (values,)
    chosen = dict(zip(others, values, strict=True))
    workload = ok["workload"].iloc[0] if "workload" in ok else None
    what = units.point_label(None, workloads.said(workload, chosen), all_named=True)
    return x, groups.get_group(values), what.replace(f"dtype={values[-1]}", str(values[-1]))


def fidelity(path: Path = FIDELITY_PATH) -> tuple[dict, pd.DataFrame, str] | None:
    """The committed GPU run: (what it ran on, the table with readable columns, a line on
    that card's ceilings); None when this checkout has no such run."""
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    table = pd.DataFrame(stored.get("rows", []))
    table = table[[c for c in FIDELITY_COLUMNS if c in table]].rename(columns=FIDELITY_COLUMNS)
    roofs = stored.get("ceilings") or {}
    line = ""
    if roofs.get("bandwidth_bytes_per_s"):
        peaks = roofs.get("peak_flops_per_s") or {}
        shown = ", ".join(f"{d} {peaks[d] / 1e12:.3g} TFLOP/s" for d in PEAK_DTYPES if d in peaks)
        line = (
            f"Ceilings of that card: copy {roofs['bandwidth_bytes_per_s'] / 1e12:.3g} TB/s; "
            f"matmul {shown}."
        )
    return stored, table, line
