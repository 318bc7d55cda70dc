"""Chart builders: result table in, Altair chart out.

Pure functions with no Streamlit import, so pages, the CLI and tests share them.
Only ``ok`` rows count as measurements; where a failed or refused point matters
(training, inference, memory) it is drawn as a red cross carrying its message, so
a missing bar is never mistaken for a fast one. A measured point that carries a sanity
flag (``FLAGS``) gets a coloured outline, so a number not to trust is seen on the chart
and not only in the table.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import altair as alt
import numpy as np
import pandas as pd

from core import units
from core.keep import results
from core.measure import workloads
from core.show.crossover import against_baseline

_METRIC_TITLES = {
    "gb_per_s": "achieved bandwidth (GB/s)",
    "gflops_per_s": "achieved GFLOP/s",
    "tflops_per_s": "achieved TFLOP/s",
    "images_per_s": "images per second",
}
_BAD_STATUSES = ("failed", "refused")
# Distinct hues for backends and series: Streamlit's own theme shades one blue, which
# makes a CPU line and a GPU line hard to tell apart on a projector.
_CATEGORIES = alt.Scale(scheme="tableau10")
_BACKEND_COLOUR = alt.Color("backend:N", scale=_CATEGORIES)

# Most serious first: a point with several flags is outlined in the colour of the first.
# Each flag: (what it means, outline colour, legend hint). The hint stays short so the
# legend does not squeeze the plot; captions say more.
_FLAG_STYLE = {
    "nonfinite": ("the output has NaN or inf", "black", "NaN/inf"),
    "mismatch": ("the output differs from the CPU reference", "#8e44ad", "wrong output"),
    "suspect": (
        "faster than this device's measured ceilings allow (often a missing synchronize)",
        "#e6007e",
        "too fast",
    ),
    "noisy": ("the median is not known to a few percent", "#8c8c8c", "spread"),
}
FLAGS = tuple(_FLAG_STYLE)
FLAG_MEANINGS = {flag: meaning for flag, (meaning, _, _) in _FLAG_STYLE.items()}


def _floats(series: pd.Series) -> np.ndarray:
    return pd.to_numeric(series, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)


def _workload(frame: pd.DataFrame) -> str | None:
    """The frame's one workload, or None when it has none or several."""
    names = frame["workload"].dropna().unique() if "workload" in frame else []
    return str(names[0]) if len(names) == 1 else None


def _title(frame: pd.DataFrame, what: str, machine: str, title: str | None) -> str:
    if title is None:
        name = _workload(frame)
        name = workloads.REGISTRY[name].title if name in workloads.REGISTRY else name
        title = ": ".join(part for part in (name, what) if part) or "Results"
    return f"{title} on {machine}" if machine else title


def _x_title(frame: pd.DataFrame, x: str) -> str:
    """The registry's axis title for ``x``: the frame's one workload's, else the one all
    workloads with such a parameter agree on, else ``x``."""
    name, known = _workload(frame), workloads.REGISTRY
    entries = [known[name]] if name in known else known.values()
    titles = {w.param(x).axis_title for w in entries if x in w.param_names}
    return titles.pop() if len(titles) == 1 else x


def _with_status(frame: pd.DataFrame, *statuses: str) -> pd.DataFrame:
    keep = frame["status"].isin(statuses) if "status" in frame else np.zeros(len(frame), bool)
    return frame[keep].copy()


def _params(frame: pd.DataFrame) -> list[str]:
    return [c for c in results.param_columns(frame) if c != "speedup"]


def _timed(frame: pd.DataFrame) -> tuple[pd.DataFrame, str, float, dict[str, str]]:
    """Median and quartiles in one display unit as ``time``, ``time_p25``, ``time_p75``; the
    unit, its factor and their tooltip titles."""
    unit, factor = units.time_unit(frame.get("median_s", []))
    pairs = {"time": "median_s", "time_p25": "p25_s", "time_p75": "p75_s"}
    timed = frame.assign(**{t: _floats(frame[s]) * factor for t, s in pairs.items() if s in frame})
    titles = {t: f"{s[:-2]} ({unit})" for t, s in pairs.items()} | {"n": "repeats"}
    return timed, unit, factor, titles


def _positive(frame: pd.DataFrame, *fields: str) -> pd.DataFrame:
    """Rows whose fields are finite and > 0: anything else cannot sit on a log axis."""
    keep = np.ones(len(frame), dtype=bool)
    for values in (_floats(frame[f]) if f in frame else np.zeros(len(frame)) for f in fields):
        keep &= np.isfinite(values) & (values > 0)
    return frame[keep]


def _slim(frame: pd.DataFrame, fields: Iterable[str]) -> pd.DataFrame:
    """Only the columns a layer uses, so the chart JSON does not carry times_s and friends."""
    return frame[[f for f in dict.fromkeys(fields) if f in frame]].reset_index(drop=True)


def _scale(log: bool, base: float | None = None) -> alt.Scale:
    return alt.Scale(type="log", base=base or alt.Undefined) if log else alt.Scale(zero=False)


def _field_type(frame: pd.DataFrame, field: str) -> str:
    numeric = field in frame and pd.api.types.is_numeric_dtype(frame[field])
    return "quantitative" if numeric else "nominal"


def _tooltips(
    frame: pd.DataFrame, fields: Iterable[str], titles: Mapping[str, str] | None = None
) -> list[alt.Tooltip]:
    tips = []
    for field in (f for f in dict.fromkeys(fields) if f in frame):
        title = (titles or {}).get(field, field)
        if _field_type(frame, field) == "nominal":
            tips.append(alt.Tooltip(f"{field}:N", title=title))
        else:
            fmt = ",d" if pd.api.types.is_integer_dtype(frame[field]) else ".4~g"
            tips.append(alt.Tooltip(f"{field}:Q", title=title, format=fmt))
    return tips


def _series(frame: pd.DataFrame, color: str, dash: str | None) -> pd.DataFrame:
    """Add ``series``, one value per drawn line, so lines never join across groups."""
    label = pd.Series("?", index=frame.index, dtype="string")
    if color in frame:
        label = frame[color].astype("string").fillna("?")
    if dash and dash in frame:
        label = label + " · " + frame[dash].astype("string").fillna("?")
    return frame.assign(series=label.astype("object"))


def _axes(
    x: str,
    y: str,
    log: tuple[bool, bool],
    titles: tuple[str, str] = (alt.Undefined, alt.Undefined),
    x_base: float | None = None,
    x_ticks: Sequence[float] | None = None,
) -> tuple[alt.X, alt.Y]:
    """Quantitative X and Y. A layer leaves the titles out so the host layer's titles win.
    ``x_ticks`` puts the x ticks at those values only (whole thread counts, say)."""
    axis = alt.Axis(values=list(x_ticks), format="~g") if x_ticks is not None else alt.Undefined
    x_enc = alt.X(f"{x}:Q", scale=_scale(log[0], x_base), title=titles[0], axis=axis)
    return x_enc, alt.Y(f"{y}:Q", scale=_scale(log[1]), title=titles[1])


class _Look(NamedTuple):
    """A line chart's colour and dash fields, and the options every line builder takes."""

    color: str
    dash: str | None
    log_x: bool = True
    log_y: bool = True
    machine: str = ""
    x_title: str | None = None
    title: str | None = None


def _line_chart(
    frame: pd.DataFrame,
    data: pd.DataFrame,
    x: str,
    y: str,
    y_title: str,
    what: str,
    look: _Look,
    tips: list[str],
    tip_titles: Mapping[str, str] | None = None,
    *,
    band: bool = False,
    rings: bool = False,
    extra: Sequence[alt.Chart] = (),
    x_base: float | None = None,
    x_ticks: Sequence[float] | None = None,
) -> alt.LayerChart:
    """Lines and tooltip points, one line per ``series``, titled from ``frame``; with ``band``
    the p25–p75 band behind them, with ``rings`` flagged points outlined; ``extra`` on top."""
    log, keys = (look.log_x, look.log_y), [look.color, *([look.dash] if look.dash else [])]
    colour = alt.Color(f"{look.color}:N", title=look.color, scale=_CATEGORIES)
    layers = []
    if band:
        lo, hi = "time_p25", "time_p75"
        quartiles = _slim(_positive(data, lo, hi), [x, lo, hi, *keys, "series", *tips])
        area = alt.Chart(quartiles).mark_area(opacity=0.18).encode(color=colour, detail="series:N")
        tooltip = _tooltips(quartiles, [*keys, x, lo, hi], tip_titles)
        layers.append(
            area.encode(*_axes(x, lo, log, x_base=x_base), y2=alt.Y2(hi), tooltip=tooltip)
        )
    lines = _slim(data, [x, y, *keys, "series", *tips])
    titles = (look.x_title or _x_title(frame, x), y_title)
    base = alt.Chart(lines).encode(*_axes(x, y, log, titles, x_base, x_ticks), color=colour)
    line = base.mark_line().encode(detail="series:N", tooltip=_tooltips(lines, keys, tip_titles))
    point = base.mark_point(filled=True, size=45)
    point = point.encode(tooltip=_tooltips(lines, [*keys, x, y, *tips], tip_titles))
    if look.dash and look.dash in data:
        line = line.encode(strokeDash=alt.StrokeDash(f"{look.dash}:N", title=look.dash))
        point = point.encode(shape=alt.Shape(f"{look.dash}:N", title=look.dash))
    layers += [line, point]
    if rings:
        at = _axes(x, y, log, x_base=x_base)  # untitled: the line's titles win
        layers += _flag_rings(data, x, y, at, [*keys, *tips], tip_titles)
    layers += extra
    return alt.layer(*layers).properties(title=_title(frame, what, look.machine, look.title))


def _rules(values: Mapping, raw: str, shown: str, factor: float, tip: str, **mark) -> alt.Chart:
    """A horizontal rule per backend at its value (a dispatch floor, a memory budget), kept
    as given (``raw``) and in the chart's unit (``shown``); None, NaN and <= 0 are left out."""
    given = [(backend, float(v)) for backend, v in values.items() if v is not None]
    data = _positive(pd.DataFrame(given, columns=["backend", raw]), raw)
    data = data.assign(**{shown: data[raw] * factor})
    tips = [alt.Tooltip("backend:N"), alt.Tooltip(f"{shown}:Q", title=tip, format=".4~g")]
    return alt.Chart(data).mark_rule(**mark).encode(tooltip=tips)


def _crosses(bad: pd.DataFrame, size: int, tips: Iterable[str], *at: Any, **more: Any) -> alt.Chart:
    """Red crosses for failed/refused rows, carrying status and message in the tooltip."""
    cross = alt.Chart(bad).mark_point(shape="cross", filled=True, size=size, color="firebrick")
    return cross.encode(*at, tooltip=_tooltips(bad, tips), **more)


def _bars(frame: pd.DataFrame, data: pd.DataFrame, x: str, y: str, y_title: str, tips, titles):
    """Bars per ``x``, side by side per backend and coloured by it."""
    at = (alt.X(f"{x}:O", title=_x_title(frame, x)), alt.XOffset("backend:N"))
    bars = alt.Chart(data).mark_bar().encode(*at, alt.Y(f"{y}:Q", title=y_title))
    return bars.encode(color=_BACKEND_COLOUR, tooltip=_tooltips(data, tips, titles))


def _bad_bars(frame: pd.DataFrame, x: str, y: str) -> alt.Chart:
    """Crosses in a bar chart's place for its failed/refused rows, at their ``y`` or else 0."""
    bad = _with_status(frame, *_BAD_STATUSES)
    bad = bad.assign(**{y: np.nan_to_num(_floats(bad[y]), nan=0.0) if y in bad else 0.0})
    bad = _slim(bad, [x, "backend", y, "status", "message"])
    at = (alt.X(f"{x}:O"), alt.XOffset("backend:N"), alt.Y(f"{y}:Q"))
    return _crosses(bad, 140, ["backend", x, "status", "message"], *at)


def worst_flag(flags: object) -> str:
    """The most serious of a row's comma-separated flags, or '' for none."""
    present = {f.strip() for f in str(flags or "").split(",")} if pd.notna(flags) else set()
    return next((f for f in FLAGS if f in present), "")


def _flagged(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows that carry a sanity flag, with ``flag`` the most serious one."""
    if "flags" not in frame or frame.empty:
        return frame.iloc[0:0].assign(flag=pd.Series(dtype="object"))
    worst = frame["flags"].map(worst_flag).astype("object")
    return frame[worst != ""].assign(flag=worst[worst != ""])


def _flag_stroke(flagged: pd.DataFrame) -> alt.Stroke:
    """Outline colour by flag, the legend naming only the flags present."""
    present = [f for f in FLAGS if f in set(flagged["flag"])]
    label = "datum.label"
    for flag in reversed(present):
        label = f"datum.label == '{flag}' ? '{flag} ({_FLAG_STYLE[flag][2]})' : ({label})"
    return alt.Stroke(
        "flag:N",
        scale=alt.Scale(domain=present, range=[_FLAG_STYLE[f][1] for f in present]),
        legend=alt.Legend(
            title="flagged", labelExpr=label, symbolFillColor="transparent", symbolStrokeWidth=2.5
        ),
    )


def _flag_rings(
    data: pd.DataFrame, x: str, y: str, at: tuple, tips: Iterable[str], titles: Mapping | None
) -> list[alt.Chart]:
    """Hollow diamonds around flagged points, placed by ``at`` (x and y encodings); none when
    nothing is flagged, so an unflagged chart has no empty 'flagged' legend."""
    flagged = _positive(_flagged(data), x, y)
    if flagged.empty:
        return []
    fields = ["flags", *tips, x, y, "message"]
    rings = _slim(flagged, ["flag", *fields])
    ring = alt.Chart(rings).mark_point(shape="diamond", filled=False, size=320, strokeWidth=2.5)
    return [ring.encode(*at, stroke=_flag_stroke(rings), tooltip=_tooltips(rings, fields, titles))]


def time_vs_x(
    frame: pd.DataFrame,
    x: str,
    color: str = "backend",
    detail: str | None = None,
    *,
    floor_s: Mapping[str, float] | None = None,
    **options: Any,
) -> alt.LayerChart:
    """Median time against ``x`` with its IQR band; one line per ``color`` × ``detail``.

    ``detail`` (e.g. "op") is drawn as the dash pattern. ``floor_s`` maps a backend to
    its dispatch floor in seconds, drawn as a dashed horizontal rule: points near it
    are measuring launch overhead, not work. ``options`` are ``_Look``'s.
    """
    look = _Look(color, detail, **options)
    data, unit, factor, titles = _timed(_with_status(frame, "ok"))
    data = _series(_positive(data, "time"), color, detail)
    extra = []
    if floor_s:
        tip = f"dispatch floor ({unit})"
        floors = _rules(floor_s, "floor_s", "time", factor, tip, strokeDash=[4, 4], opacity=0.7)
        colour = {"color": _BACKEND_COLOUR} if color == "backend" else {}
        extra.append(floors.encode(alt.Y("time:Q", scale=_scale(look.log_y)), **colour))
    # Failed/refused points as red crosses along the bottom edge: they have no time to plot.
    bad = _positive(_with_status(frame, *_BAD_STATUSES), x)
    bad = _slim(bad, ["backend", *_params(frame), "status", "message"])
    bottom = {"y": alt.value("height"), "yOffset": alt.value(-8)}
    extra.append(_crosses(bad, 120, bad.columns, _axes(x, x, (look.log_x, False))[0], **bottom))
    tips = ["backend", *_params(frame), "dtype", "time_p25", "time_p75", "n", "flags"]
    more, y_title = {"band": True, "rings": True, "extra": extra}, f"median time ({unit})"
    return _line_chart(frame, data, x, "time", y_title, "", look, tips, titles, **more)


def overlay(frame: pd.DataFrame, x: str, by: str | None = None, **options: Any) -> alt.LayerChart:
    """Runs of several machines on one time chart: colour by machine, dash by backend.

    ``by`` defaults to a ``machine`` column, else ``source``, else ``run_id``; ``options``
    as for ``time_vs_x``.
    """
    if by is None:
        by = next((c for c in ("machine", "source", "run_id") if c in frame), "run_id")
    what = options.pop("title", None) or f"{_title(frame, '', '', None)} across machines"
    return time_vs_x(frame, x, by, "backend", title=what, **options)


def first_call_vs_median(frame: pd.DataFrame, x: str, **options: Any) -> alt.LayerChart:
    """Cold first call (compilation, allocation, lazy init) against the warm median;
    ``options`` as for ``time_vs_x``."""
    ok = _with_status(frame, "ok")
    kinds = {"first call (cold)": "first_call_s", "median (warm)": "median_s"}
    parts = [ok.assign(call=kind, seconds=_floats(ok[c])) for kind, c in kinds.items() if c in ok]
    data = pd.concat(parts, ignore_index=True) if parts else ok.assign(call=[], seconds=[])
    unit, factor = units.time_unit(data["seconds"])
    data = data.assign(time=_floats(data["seconds"]) * factor)
    data = _series(_positive(data, "time"), "backend", "call")
    look = _Look("backend", "call", **options)
    tips, y_title = ["backend", *_params(frame), "dtype"], f"time per call ({unit})"
    what, titles = "first call vs warm median", {"time": f"time ({unit})"}
    return _line_chart(frame, data, x, "time", y_title, what, look, tips, titles)


def throughput_vs_x(
    frame: pd.DataFrame,
    x: str,
    metric: str = "gb_per_s",
    color: str = "backend",
    detail: str | None = None,
    **options: Any,
) -> alt.LayerChart:
    """Achieved GB/s, GFLOP/s, TFLOP/s or images/s against ``x``; ``options`` as for
    ``time_vs_x``."""
    ok = _with_derived_rates(_with_status(frame, "ok"))
    data = _series(_positive(ok, metric), color, detail)
    tips = ["backend", *_params(frame), "dtype", "median_s", "pct_of_ceiling", "flags"]
    y_title = _METRIC_TITLES.get(metric, metric)
    what = y_title.replace("achieved ", "")
    look = _Look(color, detail, **options)
    return _line_chart(frame, data, x, metric, y_title, what, look, tips, rings=True)


def _with_derived_rates(frame: pd.DataFrame) -> pd.DataFrame:
    """Images/s for the model pages and TFLOP/s for the matmul page, from the stored rates."""
    frame = frame.copy()
    if "batch" in frame and "median_s" in frame:
        frame["images_per_s"] = _floats(frame["batch"]) / _floats(frame["median_s"])
    if "gflops_per_s" in frame:
        frame["tflops_per_s"] = _floats(frame["gflops_per_s"]) / 1000
    return frame


def threads_chart(frame: pd.DataFrame, machine: str = "") -> alt.LayerChart:
    """Median time against CPU thread count, one line per workload point.

    The faint dashed lines are ideal scaling from each point's fewest-thread time, so
    the gap to them is the parallel inefficiency.
    """
    params = _params(frame)
    ok = _with_status(frame, "ok")
    ok = ok[ok["threads"].notna()] if "threads" in ok else ok.iloc[0:0]
    if "backend" in ok:
        # GPU rows record the host's thread count too, but only CPU rows sweep it.
        ok = ok[ok["backend"].astype("string").str.startswith("cpu").fillna(False)]
    data, unit, _, titles = _timed(ok)
    data = _positive(data, "time", "threads")
    data["point"] = [
        units.point_label(row.get("workload"), {p: row[p] for p in params})
        for row in data.to_dict(orient="records")
    ]
    data["threads"] = _floats(data["threads"])
    fewest = data.sort_values("threads", kind="stable").groupby("point").first()
    data["ideal"] = data["point"].map(fewest["time"] * fewest["threads"]) / data["threads"]
    data = _series(data, "point", None)
    titles |= {"ideal": f"ideal scaling ({unit})"}
    ideal = _slim(data, ["threads", "ideal", "point", "series"])
    at = _axes("threads", "ideal", (True, True), x_base=2)
    tip = _tooltips(ideal, ["point", "threads", "ideal"], titles)
    ideal_line = alt.Chart(ideal).mark_line(strokeDash=[2, 3], opacity=0.5).encode(*at, tooltip=tip)
    ideal_line = ideal_line.encode(color=alt.Color("point:N", scale=_CATEGORIES), detail="series:N")
    look = _Look("point", None, machine=machine, x_title="threads")
    tips = ["backend", "time_p25", "time_p75", "ideal"]
    # A log axis over 1..2 threads would otherwise tick at 1.1, 1.2, ...
    ticks = sorted(set(data["threads"])) or None
    more = {"band": True, "extra": [ideal_line], "x_base": 2, "x_ticks": ticks}
    y_title, what = f"median time ({unit})", "thread scaling"
    return _line_chart(frame, data, "threads", "time", y_title, what, look, tips, titles, **more)


def speedup_heatmap(
    frame: pd.DataFrame, x: str, y: str, machine: str = ""
) -> alt.LayerChart | alt.FacetChart:
    """Speedup over the baseline for each (x, y) cell, green where the accelerator wins.

    Cells pool rows that differ in other parameters by geometric mean; the tooltip says
    how many. Several accelerator backends become side-by-side facets.
    """
    ok, baseline = against_baseline(frame)
    ok = _positive(ok, "speedup")
    keys = ["backend", y, x]
    if ok.empty or any(k not in ok for k in keys):
        cells = pd.DataFrame(columns=[*keys, "speedup", "median_s", "points", "label"])
    else:
        ok = ok.assign(_log_s=np.log(_floats(ok["speedup"])), median_s=_floats(ok["median_s"]))
        aggs = {"_log_s": ("_log_s", "mean"), "median_s": ("median_s", "median")}
        cells = ok.groupby(keys, dropna=False).agg(**aggs, points=("_log_s", "size")).reset_index()
        cells["speedup"] = np.exp(cells.pop("_log_s"))
        cells["label"] = cells["speedup"].map(units.speedup)
    unit, factor = units.time_unit(cells["median_s"])
    cells = cells.assign(time=_floats(cells.pop("median_s")) * factor)
    tip_titles = {"time": f"accelerator median ({unit})", "points": "points pooled"}
    # Numbers grow upwards like a y axis; names read top to bottom.
    y_order = "descending" if _field_type(ok, y) == "quantitative" else "ascending"
    base = alt.Chart(cells).encode(
        alt.X(f"{x}:O", title=_x_title(frame, x)),
        alt.Y(f"{y}:O", title=_x_title(frame, y), sort=y_order),
        tooltip=_tooltips(cells, ["backend", y, x, "speedup", "time", "points"], tip_titles),
    )
    colour = alt.Color(
        "speedup:Q",
        scale=alt.Scale(type="log", scheme="redyellowgreen", domainMid=1),
        legend=alt.Legend(title=f"speedup vs {baseline}"),
    )
    text = base.mark_text(fontSize=11, color="black").encode(text="label:N")
    chart = alt.layer(base.mark_rect().encode(color=colour), text)
    if cells["backend"].nunique() > 1:
        chart = chart.facet(column=alt.Column("backend:N", title=None))
    what = f"speedup over {baseline}" if baseline else "speedup"
    return chart.properties(title=_title(frame, what, machine, None))


def bar_by_batch(
    frame: pd.DataFrame,
    metric: str = "median",
    x: str = "batch",
    machine: str = "",
    title: str | None = None,
) -> alt.LayerChart | alt.HConcatChart:
    """Step time (``metric="median"``, with p25–p75 whiskers) or images/s per batch, bars
    grouped by backend; several models in one table become side-by-side panels."""
    what = "step time" if metric == "median" else "images per second"
    if "model" in frame and frame["model"].nunique() > 1:
        groups = frame.groupby("model", sort=False)
        panels = [bar_by_batch(part, metric, x, title=str(model)) for model, part in groups]
        return alt.hconcat(*panels).properties(title=_title(frame, what, machine, title))
    ok = _with_derived_rates(_with_status(frame, "ok"))
    value, y_title, titles = metric, _METRIC_TITLES.get(metric, metric), {}
    if metric == "median":
        ok, unit, _, titles = _timed(ok)
        value, y_title = "time", f"median step time ({unit})"
    fields = ["backend", *_params(frame), "dtype", value, "time_p25", "time_p75", "flags"]
    bars = _slim(ok, [x, *fields, "median_s"])
    at = (alt.X(f"{x}:O"), alt.XOffset("backend:N"))  # every layer's place: batch, then backend
    layers = [_bars(frame, bars, x, value, y_title, fields, titles)]
    flagged = _positive(_flagged(_slim(ok, [x, *fields, "median_s", "message"])), value)
    if not flagged.empty:
        # A transparent bar drawn over the real one, so only its outline shows.
        outline = alt.Chart(flagged).mark_bar(fill="transparent", fillOpacity=0, strokeWidth=2.5)
        outline = outline.encode(*at, alt.Y(f"{value}:Q"), stroke=_flag_stroke(flagged))
        layers.append(outline.encode(tooltip=_tooltips(flagged, [*fields, "message"], titles)))
    if metric == "median":
        whiskers = _positive(bars, "time_p25", "time_p75")
        tips = _tooltips(whiskers, ["backend", x, "time_p25", "time_p75"], titles)
        whisker = alt.Chart(whiskers).mark_rule(color="black", opacity=0.6)
        layers.append(whisker.encode(*at, alt.Y("time_p25:Q"), alt.Y2("time_p75"), tooltip=tips))
    layers.append(_bad_bars(frame, x, value))
    return alt.layer(*layers).properties(title=_title(frame, what, machine, title))


def memory_vs_budget(
    frame: pd.DataFrame,
    budget_bytes: Mapping[str, float],
    x: str = "batch",
    machine: str = "",
    title: str | None = None,
) -> alt.LayerChart:
    """Measured peak memory (bars) and the pre-run estimate (black ticks) per batch.

    Dashed rules are each backend's budget; a red cross marks a point that was refused
    or failed, placed at its estimate so it is clear why.
    """
    raw = {"peak": "peak_memory_bytes", "estimate": "memory_estimate_bytes"}
    every = frame.assign(**{c: _floats(frame[c]) if c in frame else np.nan for c in raw.values()})
    budgets = {b: float(v) for b, v in budget_bytes.items() if v and math.isfinite(float(v))}
    sizes = [*every["peak_memory_bytes"], *every["memory_estimate_bytes"], *budgets.values()]
    unit, factor = units.bytes_unit(sizes)
    every = every.assign(**{short: every[column] * factor for short, column in raw.items()})
    titles = {"peak": f"peak ({unit})", "estimate": f"estimate ({unit})", "budget": "budget"}
    columns = [x, "backend", "peak", "estimate", "status", "dtype", *_params(frame)]
    peaks = _slim(_positive(_with_status(every, "ok"), "peak"), columns)
    estimates = _slim(_positive(every, "estimate"), columns)
    at = (alt.X(f"{x}:O", title=_x_title(frame, x)), alt.XOffset("backend:N"))
    rules = _rules(budgets, "budget_bytes", "budget", factor, f"budget ({unit})", strokeDash=[6, 3])
    ticks = alt.Chart(estimates).mark_tick(color="black", thickness=2)
    return alt.layer(
        _bars(frame, peaks, x, "peak", f"memory ({unit})", columns, titles),
        ticks.encode(*at, alt.Y("estimate:Q"), tooltip=_tooltips(estimates, columns, titles)),
        rules.encode(alt.Y("budget:Q"), color=_BACKEND_COLOUR),
        _bad_bars(every, x, "estimate"),
    ).properties(title=_title(frame, "memory", machine, title))


def crossover_rules(crossover_df: pd.DataFrame, x: str, color: str = "backend") -> alt.LayerChart:
    """Vertical dashed rules at each crossover, for layering on a chart with ``x`` on X."""
    data = crossover_df.assign(**{x: _floats(crossover_df.get("crossover_x", np.nan))})
    data = _positive(data, x).assign(label=lambda d: [units.about(v) for v in _floats(d[x])])
    shown = ["backend", x, "direction", "sentence"]
    group = [c for c in data.columns if c not in (*shown, "crossover_x", "label")]
    data = _slim(data, [*group, *shown[:2], "label", *shown[2:]])
    tips = _tooltips(data, [*group, *shown], {x: "crossover"})
    style = {"color": alt.Color(f"{color}:N", scale=_CATEGORIES)} if color in data else {}
    base = alt.Chart(data).encode(_axes(x, x, (True, False))[0], tooltip=tips, **style)
    rule = base.mark_rule(strokeDash=[6, 3], strokeWidth=1.5)
    text = base.mark_text(align="left", baseline="top", dx=3, fontSize=10)
    return alt.layer(rule, text.encode(y=alt.value(4), text="label:N"))


def roofline(
    frame: pd.DataFrame, ceilings: Mapping[str, Mapping[str, float]], machine: str = ""
) -> alt.LayerChart:
    """Achieved GFLOP/s against arithmetic intensity under each backend's roof.

    ``ceilings`` maps a backend to ``bandwidth_bytes_per_s`` and ``peak_flops_per_s``.
    The roof min(peak, bandwidth × intensity) is straight in log-log space apart from
    its ridge, so it is drawn exactly through three points.
    """
    ok = _positive(_with_status(frame, "ok"), "flops", "bytes")
    ok["intensity"] = _floats(ok["flops"]) / _floats(ok["bytes"])
    achieved = _floats(ok["gflops_per_s"]) if "gflops_per_s" in ok else np.full(len(ok), np.nan)
    computed = _floats(ok["flops"]) / _floats(ok["median_s"]) / 1e9
    ok["gflops_per_s"] = np.where(np.isfinite(achieved), achieved, computed)
    ok = _positive(ok, "gflops_per_s")

    # Per backend: bandwidth (bytes/s) and peak (FLOP/s), a ceiling not given as inf.
    given = pd.DataFrame(ceilings, ["bandwidth_bytes_per_s", "peak_flops_per_s"], dtype=float).T
    roofs = given.where(given > 0, np.inf).set_axis(["bandwidth", "peak"], axis=1)
    roofs = roofs[np.isfinite(roofs).any(axis=1)]
    ridges = roofs["peak"] / roofs["bandwidth"]
    spots = [*ok["intensity"], *ridges[np.isfinite(ridges) & (ridges > 0)]]
    lo, hi = (min(spots) / 4, max(spots) * 4) if spots else (0.01, 100.0)
    rows = [
        (backend, at, min(peak, bandwidth * at) / 1e9, bandwidth / 1e9, peak / 1e9)
        for backend, bandwidth, peak in roofs.itertuples()
        for at in [lo, *([peak / bandwidth] if lo < peak / bandwidth < hi else []), hi]
    ]
    columns = ["backend", "intensity", "roof_gflops_per_s", "bandwidth_gb_per_s"]
    roof = pd.DataFrame(rows, columns=[*columns, "peak_gflops_per_s"])
    # A ceiling not given is inf in the arithmetic; JSON has no inf, so the tooltip shows blank.
    roof = roof.replace([math.inf, -math.inf], math.nan)
    bandwidth, peak = (ok["backend"].map(roofs[c]).to_numpy(dtype=float) for c in roofs)
    at_roof = np.minimum(peak, bandwidth * ok["intensity"].to_numpy())
    ok["pct_of_roof"] = 100 * ok["gflops_per_s"].to_numpy() / (at_roof / 1e9)
    fields = ["backend", "intensity", "gflops_per_s", "pct_of_roof", "median_s"]
    points = _slim(ok, [*fields, *_params(frame), "dtype", "flags"])
    titles = {
        "bandwidth_gb_per_s": "bandwidth (GB/s)",
        "peak_gflops_per_s": "peak GFLOP/s",
        "roof_gflops_per_s": "roof GFLOP/s",
        "pct_of_roof": "% of roof",
    }
    roof_tips = ["backend", "bandwidth_gb_per_s", "peak_gflops_per_s", "roof_gflops_per_s"]
    axis_titles = ("arithmetic intensity (FLOP/byte)", "achieved GFLOP/s")
    ring_tips = [f for f in points.columns if f not in ("intensity", "gflops_per_s")]
    roof_line = alt.Chart(roof).mark_line(strokeDash=[5, 3]).encode(color=_BACKEND_COLOUR)
    roof_line = roof_line.encode(*_axes("intensity", "roof_gflops_per_s", (True, True)))
    dots = alt.Chart(points).mark_point(filled=True, size=55).encode(color=_BACKEND_COLOUR)
    dots = dots.encode(*_axes("intensity", "gflops_per_s", (True, True), axis_titles))
    plain = _axes("intensity", "gflops_per_s", (True, True))  # rings keep the dots' titles
    return alt.layer(
        roof_line.encode(tooltip=_tooltips(roof, roof_tips, titles)),
        dots.encode(tooltip=_tooltips(points, points.columns, titles)),
        *_flag_rings(ok, "intensity", "gflops_per_s", plain, ring_tips, titles),
    ).properties(title=_title(frame, "roofline", machine, None))


def speedup_vs_x(
    frame: pd.DataFrame,
    x: str,
    crossovers: pd.DataFrame | None = None,
    color: str = "op",
    machine: str = "",
) -> alt.LayerChart:
    """Speedup over the baseline against ``x`` (log-log), with 1× drawn as the even line and
    each crossover from ``core.show.crossover`` as a dashed rule."""
    data, baseline = against_baseline(frame)
    data = _positive(data, x, "speedup")  # both axes are logarithmic
    color = color if color in data else "backend"
    data["label"] = data["speedup"].map(units.speedup)
    data["series"] = data[color].astype(str) + " · " + data["backend"].astype(str)
    colours = list(dict.fromkeys([color, "backend"]))
    data = _slim(data, [x, "speedup", "label", "series", *colours[::-1]])
    tips = [alt.Tooltip(f"{f}:N") for f in colours]
    tips += [alt.Tooltip(f"{x}:Q", format=",.0f"), alt.Tooltip("label:N", title="speedup")]
    titles = (_x_title(frame, x), f"speedup over {baseline}")
    base = alt.Chart(data).encode(*_axes(x, "speedup", (True, True), titles))
    base = base.encode(color=alt.Color(f"{color}:N", title=color, scale=_CATEGORIES), tooltip=tips)
    even = alt.Chart(pd.DataFrame({"even": [1.0]})).mark_rule(color="gray", strokeDash=[2, 2])
    layers = [base.mark_line().encode(detail="series:N"), base.mark_point(filled=True, size=45)]
    layers.append(even.encode(y=alt.Y("even:Q", scale=_scale(True))))
    if crossovers is not None and not crossovers.empty:
        layers.append(crossover_rules(crossovers, x, color=color))
    what = f"Speedup over {baseline}"
    return alt.layer(*layers).properties(title=_title(frame, what, machine, what))


def with_speedup_labels(chart: alt.LayerChart, frame: pd.DataFrame, x: str) -> alt.LayerChart:
    """Write each non-baseline point's speedup (e.g. '3.2×') above it on a ``time_vs_x``
    chart, in the same time unit that chart chose."""
    _, factor = units.time_unit(_with_status(frame, "ok")["median_s"])
    data, _ = against_baseline(frame)
    data["time"] = _floats(data["median_s"]) * factor
    data = data[np.isfinite(data["speedup"]) & (data["time"] > 0)]
    data = data.assign(label=data["speedup"].map(units.speedup), **{x: _floats(data[x])})
    text = alt.Chart(_slim(data, [x, "time", "label", "backend"]))
    text = text.mark_text(dy=-12, fontSize=11, fontWeight="bold")
    axes = _axes(x, "time", (True, True))
    return chart.add_layers(text.encode(*axes, text="label:N", color=_BACKEND_COLOUR))


def duel_bars(frame: pd.DataFrame, what: str) -> alt.LayerChart:
    """One bar per backend with its median time written on it: the Overview's quick duel."""
    data = _with_status(frame, "ok")
    unit, factor = units.time_unit(data["median_s"])
    data["time"] = _floats(data["median_s"]) * factor
    data["label"] = data["median_s"].map(units.seconds)
    base = alt.Chart(data[["backend", "time", "label"]].reset_index(drop=True)).encode(
        y=alt.Y("backend:N", title=None, sort=None),
        x=alt.X("time:Q", title=f"median time ({unit}), shorter is faster"),
    )
    return alt.layer(
        base.mark_bar().encode(color=alt.Color("backend:N", legend=None, scale=_CATEGORIES)),
        base.mark_text(align="left", dx=4).encode(text="label:N"),
    ).properties(title=what, height=alt.Step(28))


def speedup_text(frame: pd.DataFrame) -> str:
    """'cpu (2 threads) is 1.8× faster than cpu (1 thread)' for a one-point duel."""
    others, baseline = against_baseline(frame)
    return "; ".join(
        f"{backend} is {units.speedup(max(s, 1 / s))} {'faster' if s >= 1 else 'slower'} "
        f"than {baseline}"
        for backend, s in zip(others["backend"], others["speedup"], strict=True)
        if math.isfinite(s)
    )
