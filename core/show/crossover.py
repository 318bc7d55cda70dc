"""Where an accelerator starts (or stops) beating the CPU baseline.

The crossover is read off the ``speedup`` column: between the two measured points
that bracket speedup = 1 we interpolate linearly in log10(x) against log(speedup),
because both sizes and speedups span decades and are close to straight lines in
log-log space, not in linear space.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from core import stats, units
from core.keep import results


def crossover(
    frame: pd.DataFrame,
    x: str,
    group: str | None = "op",
    unit: str = "",
) -> pd.DataFrame:
    """One row per (group, non-baseline backend): where its speedup crosses 1 along ``x``.

    Columns: the group column (named ``group``, or ``"group"`` when ``group`` is None),
    ``backend``, ``crossover_x``, ``direction``, ``sentence``. ``direction`` is one of
    ``wins_above`` (the backend wins at every measured x past ``crossover_x``),
    ``wins_below``, ``wins_between`` (wins only inside a window; ``crossover_x`` is its
    lower edge), ``always`` or ``never`` (no crossing; ``crossover_x`` is NaN).
    Several rows at one x (other parameters varying) are pooled by geometric mean. A
    ``group`` column the table lacks is treated as no grouping.
    """
    if frame is not None and group is not None and group not in frame:
        group = None  # e.g. the default "op" on a conv2d table: nothing to split by
    group_col = group or "group"
    if frame is None or frame.empty or x not in frame:
        return _frame(group_col, [])
    usable, baseline = against_baseline(frame)
    usable = usable[usable["claim"]]  # never a sentence from a busy or too-close point
    usable["_x"] = pd.to_numeric(usable[x], errors="coerce").astype("float64")
    # Logs need strictly positive, finite values; anything else carries no information.
    keep = np.isfinite(usable["_x"]) & np.isfinite(usable["speedup"])
    usable = usable[keep & (usable["_x"] > 0) & (usable["speedup"] > 0)]
    if group is None:
        usable[group_col] = None

    base = str(baseline) if baseline is not None else "the baseline"
    rows = []
    for (value, backend), part in usable.groupby([group_col, "backend"], sort=False, dropna=False):
        log_s = np.log(part["speedup"]).groupby(part["_x"]).mean().sort_index()
        at_x, direction = _find(np.log10(log_s.index.to_numpy()), log_s.to_numpy())
        value = None if units.missing(value) else value
        lo, hi = (units.about(v) for v in at_x)
        unit_ = f" {unit}" if unit else ""
        sentence = {
            "always": f"{backend} is faster at every size measured",
            "never": f"{base} stays faster at every size measured",
            "wins_above": f"{backend} wins from {x} ≈ {lo}{unit_}",
            "wins_below": f"{backend} wins below {x} ≈ {lo}{unit_}",
            "wins_between": f"{backend} wins only at {x} ≈ {lo} to {hi}{unit_}",
        }[direction]
        prefix = f"{value}: " if group is not None and value is not None else ""
        rows.append([value, backend, at_x[0], direction, prefix + sentence])
    return _frame(group_col, rows)


def against_baseline(frame: pd.DataFrame) -> tuple[pd.DataFrame, str | None]:
    """The ok rows of every backend but the baseline (the first CPU backend), with their
    ``speedup`` over it as floats, and the baseline's name. ``claim`` says whether a row's
    speedup may be stated as a fact: its 95% interval leaves out 1× (a clear winner), and
    neither it nor its baseline was timed on a busy machine (rows without raw times cannot
    be judged, and are taken as they are)."""
    baseline = results.baseline_of(frame) if "backend" in frame else None
    if "speedup" not in frame:
        frame = results.add_speedup(frame, baseline)
    elif "speedup_low" not in frame:  # speedups given as they are, with no interval
        frame = frame.assign(speedup_low=math.nan, speedup_high=math.nan)
    ok = frame[frame["status"] == "ok"] if "status" in frame else frame.iloc[0:0]
    busy = (
        ok["flags"].fillna("").str.contains(r"\bbusy\b")
        if "flags" in ok
        else ok["status"] != ok["status"]
    )
    keys = [
        k
        for k in [*results.param_columns(ok), "dtype"]
        if k in ok and k not in results.SPEEDUP_COLUMNS
    ]
    busy_points = {tuple(point) for point in ok.loc[busy, keys].itertuples(index=False)}
    ok = ok[ok["backend"] != baseline].copy()
    for name in results.SPEEDUP_COLUMNS:
        ok[name] = pd.to_numeric(ok[name], errors="coerce").astype("float64")
    # Figures without raw times (the post's, a summary file) have no interval to judge by.
    clear = [
        not (math.isfinite(low) and math.isfinite(high)) or stats.clear_winner(low, high)
        for low, high in zip(ok["speedup_low"], ok["speedup_high"], strict=True)
    ]
    quiet = [tuple(point) not in busy_points for point in ok[keys].itertuples(index=False)]
    ok["claim"] = pd.Series(clear, index=ok.index, dtype=bool) & pd.Series(
        quiet, index=ok.index, dtype=bool
    )
    return ok, baseline


def _frame(group_col: str, rows: list[list]) -> pd.DataFrame:
    columns = [group_col, "backend", "crossover_x", "direction", "sentence"]
    return pd.DataFrame(rows, columns=columns).astype({"crossover_x": "float64"})


def _find(log_x: np.ndarray, log_s: np.ndarray) -> tuple[tuple[float, float], str]:
    """Crossing positions (lower, upper edge of the winning range) and the direction."""
    nan = (math.nan, math.nan)
    wins = log_s > 0
    if not wins.any():  # no points at all included
        return nan, "never"
    if wins.all():
        return nan, "always"
    won, lost = np.flatnonzero(wins), np.flatnonzero(~wins)
    if wins[-1]:
        # The last losing point: past the crossing after it, the backend wins everywhere.
        return (_interpolate(log_x, log_s, lost[-1]), math.nan), "wins_above"
    if wins[0]:
        return (_interpolate(log_x, log_s, lost[0] - 1), math.nan), "wins_below"
    lower, upper = _interpolate(log_x, log_s, won[0] - 1), _interpolate(log_x, log_s, won[-1])
    return (lower, upper), "wins_between"


def _interpolate(log_x: np.ndarray, log_s: np.ndarray, i: int) -> float:
    """x where the straight line between points i and i+1 (log-log) reaches speedup 1."""
    x0, x1, s0, s1 = log_x[i], log_x[i + 1], log_s[i], log_s[i + 1]
    t = (0.0 - s0) / (s1 - s0)
    return float(10 ** (x0 + t * (x1 - x0)))
