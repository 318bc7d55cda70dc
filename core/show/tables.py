"""The tidy frame as a person reads it, in the app and in the terminal alike."""

from __future__ import annotations

import pandas as pd

from core import units
from core.keep import results
from core.measure import workloads

_NOT_MEASURED = ("refused", "failed", "skipped")


def result_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Formatted times, one row per point and backend, sorted by the point; ``speedup``
    stays a number (the app formats it, the terminal through ``units.speedup``)."""
    names = results.param_columns(frame, derived=False)
    quiet = workloads.quiet_defaults(*frame["workload"].dropna().unique())
    names = [n for n in names if n not in quiet or (frame[n] != quiet[n]).any()]
    iqr = [
        f"{units.seconds(low)} – {units.seconds(high)}" if pd.notna(low) else "-"
        for low, high in zip(frame["p25_s"], frame["p75_s"], strict=True)
    ]
    table = frame[[*names, "backend", "dtype"]].assign(
        median=frame["median_s"].map(units.seconds),
        IQR=iqr,
        n=frame["n"],
        **{"first call": frame["first_call_s"].map(units.seconds)},
        threads=frame["threads"],
        speedup=_speedups(frame),
        status=frame["status"],
        flags=frame["flags"].fillna(""),
        message=frame["message"].fillna(""),
    )
    return table.sort_values([*names, "dtype"], kind="stable").reset_index(drop=True)


def _speedups(frame: pd.DataFrame) -> list[str]:
    if "speedup" not in frame:
        return [""] * len(frame)
    low = frame.get("speedup_low", pd.Series(index=frame.index, dtype="float64"))
    high = frame.get("speedup_high", pd.Series(index=frame.index, dtype="float64"))
    return [
        units.speedup_range(value, lo, hi)
        for value, lo, hi in zip(frame["speedup"], low, high, strict=True)
    ]


def busy_summary(frame: pd.DataFrame) -> str:
    """One line when points were timed while other programs took cores they needed."""
    flags = frame["flags"].fillna("") if "flags" in frame else pd.Series(dtype="string")
    busy = frame[flags.str.contains(r"\bbusy\b")]
    if busy.empty:
        return ""
    share = pd.to_numeric(busy.get("busy_share"), errors="coerce").max()
    used = f" (other programs used up to {share:.0%} of it)" if pd.notna(share) else ""
    return (
        f"The machine was busy while {len(busy)} of {len(frame)} points were timed{used}: "
        "they are flagged busy, and no speedup or crossover is claimed from them. Close "
        "other programs and measure again for figures you can quote."
    )


def problems(frame: pd.DataFrame) -> list[str]:
    """One line per point that was not measured or whose output failed its check."""
    names = results.param_columns(frame, derived=False)
    not_measured = frame["status"].isin(_NOT_MEASURED)
    wrong = frame["flags"].fillna("").str.contains("mismatch|nonfinite")
    lines = []
    for row in frame[not_measured | wrong].to_dict("records"):
        said = workloads.said(row.get("workload"), {n: row[n] for n in names})
        point = units.point_label(row.get("workload"), said)
        status = row["status"] if row["status"] != "ok" else "output check failed"
        reason = row["message"] or "no reason given"
        lines.append(f"{point} on {row['backend']}: {status} — {reason}")
    return lines
