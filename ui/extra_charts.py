"""Small chart builders the pages need and ``core.charts`` does not have (yet).

Same contract as ``core.charts``: a tidy result frame in, an Altair chart out, only
``ok`` rows plotted. Kept here so the UI does not edit core while it is in flux.
"""

from __future__ import annotations

import math

import altair as alt
import numpy as np
import pandas as pd

from core import charts, results


def _ok(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["status"] == "ok"].copy() if "status" in frame else frame.iloc[0:0]


def _numbers(series: pd.Series) -> np.ndarray:
    return pd.to_numeric(series, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)


def _title(what: str, machine: str) -> str:
    return f"{what} on {machine}" if machine else what


def speedup_vs_x(
    frame: pd.DataFrame,
    x: str,
    crossovers: pd.DataFrame | None = None,
    color: str = "op",
    machine: str = "",
    x_title: str | None = None,
    title: str = "",
) -> alt.LayerChart:
    """Speedup over the CPU baseline against ``x`` (log-log), with 1× drawn as the even line
    and each crossover from ``core.crossover`` as a dashed rule."""
    baseline = results.baseline_of(frame)
    if "speedup" not in frame:
        frame = results.add_speedup(frame, baseline)
    data = _ok(frame)
    data = data[data["backend"] != baseline]
    data[x] = _numbers(data[x])
    data["speedup"] = _numbers(data["speedup"])
    data = data[np.isfinite(data["speedup"]) & (data["speedup"] > 0)]
    if color not in data:
        color = "backend"
    data["label"] = data["speedup"].map(charts.speedup_label)
    data["series"] = data[color].astype(str) + " · " + data["backend"].astype(str)
    fields = [x, "speedup", "label", "series", "backend", *([color] if color != "backend" else [])]
    data = data[list(dict.fromkeys(fields))].reset_index(drop=True)
    x_enc = alt.X(f"{x}:Q", scale=alt.Scale(type="log"), title=x_title or x)
    y_enc = alt.Y("speedup:Q", scale=alt.Scale(type="log"), title=f"speedup over {baseline}")
    colour = alt.Color(f"{color}:N", title=color)
    tips = [alt.Tooltip(f"{f}:N") for f in dict.fromkeys([color, "backend"])]
    tips += [alt.Tooltip(f"{x}:Q", format=",.0f"), alt.Tooltip("label:N", title="speedup")]
    base = alt.Chart(data).encode(x=x_enc, y=y_enc, color=colour, tooltip=tips)
    layers = [
        base.mark_line().encode(detail="series:N"),
        base.mark_point(filled=True, size=45),
        alt.Chart(pd.DataFrame({"even": [1.0]}))
        .mark_rule(color="gray", strokeDash=[2, 2])
        .encode(y=alt.Y("even:Q", scale=alt.Scale(type="log"))),
    ]
    if crossovers is not None and not crossovers.empty:
        layers.append(charts.crossover_rules(crossovers, x, color=color))
    what = title or f"Speedup over {baseline}"
    return alt.layer(*layers).properties(title=_title(what, machine))


def with_speedup_labels(chart: alt.LayerChart, frame: pd.DataFrame, x: str) -> alt.LayerChart:
    """Write each non-baseline point's speedup (e.g. '3.2×') above it on a ``time_vs_x``
    chart, in the same time unit that chart chose."""
    baseline = results.baseline_of(frame)
    if "speedup" not in frame:
        frame = results.add_speedup(frame, baseline)
    data = _ok(frame)
    _, factor = charts.time_unit(data["median_s"])
    data = data[data["backend"] != baseline]
    data["time"] = _numbers(data["median_s"]) * factor
    data["speedup"] = _numbers(data["speedup"])
    data = data[np.isfinite(data["speedup"]) & (data["time"] > 0)]
    data["label"] = data["speedup"].map(charts.speedup_label)
    data[x] = _numbers(data[x])
    data = data[[x, "time", "label", "backend"]].reset_index(drop=True)
    text = (
        alt.Chart(data)
        .mark_text(dy=-12, fontSize=11, fontWeight="bold")
        .encode(
            x=alt.X(f"{x}:Q", scale=alt.Scale(type="log")),
            y=alt.Y("time:Q", scale=alt.Scale(type="log")),
            text="label:N",
            color=alt.Color("backend:N"),
        )
    )
    return chart.add_layers(text)


def tflops_vs_x(
    frame: pd.DataFrame,
    x: str,
    dash: str | None = None,
    machine: str = "",
    x_title: str | None = None,
) -> alt.LayerChart:
    """Achieved TFLOP/s (``gflops_per_s`` / 1000) against ``x``; one line per backend."""
    data = _ok(frame)
    data["tflops_per_s"] = _numbers(data["gflops_per_s"]) / 1000
    data[x] = _numbers(data[x])
    data = data[np.isfinite(data["tflops_per_s"]) & (data["tflops_per_s"] > 0)]
    keys = ["backend", *([dash] if dash and dash in data else [])]
    data["series"] = data[keys].astype(str).agg(" · ".join, axis=1) if len(data) else []
    data = data[[x, "tflops_per_s", "series", *keys]].reset_index(drop=True)
    style = {"color": alt.Color("backend:N")}
    if len(keys) > 1:
        style["strokeDash"] = alt.StrokeDash(f"{dash}:N")
    tips = [*(alt.Tooltip(f"{k}:N") for k in keys), alt.Tooltip(f"{x}:Q")]
    tips.append(alt.Tooltip("tflops_per_s:Q", title="TFLOP/s", format=".3~g"))
    base = alt.Chart(data).encode(
        x=alt.X(f"{x}:Q", scale=alt.Scale(type="log", base=2), title=x_title or x),
        y=alt.Y("tflops_per_s:Q", scale=alt.Scale(type="log"), title="achieved TFLOP/s"),
        tooltip=tips,
    )
    return alt.layer(
        base.mark_line().encode(detail="series:N", **style),
        base.mark_point(filled=True, size=45).encode(color=style["color"]),
    ).properties(title=_title("Matrix multiply: TFLOP/s", machine))


def duel_bars(frame: pd.DataFrame, what: str) -> alt.LayerChart:
    """One bar per backend with its median time written on it: the quick duel."""
    data = _ok(frame)
    unit, factor = charts.time_unit(data["median_s"])
    data["time"] = _numbers(data["median_s"]) * factor
    data["label"] = [results.format_seconds(s) for s in _numbers(data["median_s"])]
    data = data[["backend", "time", "label"]].reset_index(drop=True)
    base = alt.Chart(data).encode(
        y=alt.Y("backend:N", title=None, sort=None),
        x=alt.X("time:Q", title=f"median time ({unit}), shorter is faster"),
    )
    return alt.layer(
        base.mark_bar().encode(color=alt.Color("backend:N", legend=None)),
        base.mark_text(align="left", dx=4).encode(text="label:N"),
    ).properties(title=what, height=alt.Step(28))


def speedup_text(frame: pd.DataFrame) -> str:
    """'cpu (2 threads) is 1.8× faster than cpu (1 thread)' for a one-point duel."""
    baseline = results.baseline_of(frame)
    if "speedup" not in frame:
        frame = results.add_speedup(frame, baseline)
    others = _ok(frame)
    others = others[others["backend"] != baseline]
    parts = []
    for backend, speedup in zip(others["backend"], _numbers(others["speedup"]), strict=True):
        if not math.isfinite(speedup):
            continue
        if speedup >= 1:
            parts.append(f"{backend} is {charts.speedup_label(speedup)} faster than {baseline}")
        else:
            slower = charts.speedup_label(1 / speedup)
            parts.append(f"{backend} is {slower} slower than {baseline}")
    return "; ".join(parts)
