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
_BAD_COLOR = "firebrick"

# Most serious first: a point with several flags is outlined in the colour of the first.
FLAGS = ("nonfinite", "mismatch", "suspect", "noisy")
FLAG_MEANINGS = {
    "nonfinite": "the output has NaN or inf",
    "mismatch": "the output differs from the CPU reference",
    "suspect": "faster than this device's measured ceilings allow (often a missing synchronize)",
    "noisy": "the median is not known to a few percent",
}
_FLAG_COLORS = {
    "nonfinite": "black",
    "mismatch": "#8e44ad",
    "suspect": "#e6007e",
    "noisy": "#8c8c8c",
}
# Legend labels stay short so the legend does not squeeze the plot; captions say more.
_FLAG_LABELS = {
    "nonfinite": "nonfinite (NaN/inf)",
    "mismatch": "mismatch (wrong output)",
    "suspect": "suspect (too fast)",
    "noisy": "noisy (spread)",
}


# ---------------------------------------------------------------- units and titles


# Distinct hues for backends and series: Streamlit's own theme shades one blue, which
# makes a CPU line and a GPU line hard to tell apart on a projector.
_CATEGORIES = alt.Scale(scheme="tableau10")


def _floats(series: pd.Series) -> np.ndarray:
    return pd.to_numeric(series, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)


def _title(frame: pd.DataFrame, what: str, machine: str, title: str | None) -> str:
    if title is None:
        names = frame["workload"].dropna().unique() if "workload" in frame else []
        name = ""
        if len(names) == 1:
            entry = _registry_entry(names[0])
            name = entry.title if entry else str(names[0])
        title = ": ".join(part for part in (name, what) if part) or "Results"
    return f"{title} on {machine}" if machine else title


def _x_title(frame: pd.DataFrame, x: str) -> str:
    """The registry's axis title for parameter ``x``: the frame's one workload's, or else the
    title all workloads with such a parameter agree on; else ``x`` itself."""
    names = frame["workload"].dropna().unique() if "workload" in frame else []
    entry = _registry_entry(names[0]) if len(names) == 1 else None
    entries = [entry] if entry else workloads.REGISTRY.values()
    titles = {w.param(x).axis_title for w in entries if x in w.param_names}
    return titles.pop() if len(titles) == 1 else x


def _registry_entry(name) -> workloads.Workload | None:
    return workloads.REGISTRY.get(str(name))


# ---------------------------------------------------------------- row selection


def _with_status(frame: pd.DataFrame, *statuses: str) -> pd.DataFrame:
    if "status" not in frame:
        return frame.iloc[0:0].copy()
    return frame[frame["status"].isin(statuses)].copy()


def _params(frame: pd.DataFrame) -> list[str]:
    return [c for c in results.param_columns(frame) if c != "speedup"]


def _with_time(frame: pd.DataFrame, factor: float) -> pd.DataFrame:
    """Median and quartiles in the display unit, as ``time``, ``time_p25``, ``time_p75``."""
    frame = frame.copy()
    for source, target in (("median_s", "time"), ("p25_s", "time_p25"), ("p75_s", "time_p75")):
        if source in frame:
            frame[target] = _floats(frame[source]) * factor
    return frame


def _positive(frame: pd.DataFrame, *fields: str) -> pd.DataFrame:
    """Rows whose fields are finite and > 0: anything else cannot sit on a log axis."""
    keep = np.ones(len(frame), dtype=bool)
    for field in fields:
        values = _floats(frame[field]) if field in frame else np.full(len(frame), np.nan)
        keep &= np.isfinite(values) & (values > 0)
    return frame[keep]


def _slim(frame: pd.DataFrame, fields: Iterable[str]) -> pd.DataFrame:
    """Only the columns a layer uses, so the chart JSON does not carry times_s and friends."""
    wanted = [f for f in dict.fromkeys(fields) if f in frame]
    return frame[wanted].reset_index(drop=True)


# ---------------------------------------------------------------- shared encodings


def _scale(log: bool, base: float | None = None) -> alt.Scale:
    if log:
        return alt.Scale(type="log", base=base) if base else alt.Scale(type="log")
    return alt.Scale(zero=False)


def _field_type(frame: pd.DataFrame, field: str) -> str:
    if field in frame and pd.api.types.is_numeric_dtype(frame[field]):
        return "quantitative"
    return "nominal"


def _tooltips(
    frame: pd.DataFrame, fields: Iterable[str], titles: Mapping[str, str] | None = None
) -> list[alt.Tooltip]:
    titles = titles or {}
    tips = []
    for field in dict.fromkeys(fields):
        if field not in frame:
            continue
        kind = _field_type(frame, field)
        if kind == "quantitative":
            integer = pd.api.types.is_integer_dtype(frame[field])
            fmt = ",d" if integer else ".4~g"
            tips.append(alt.Tooltip(f"{field}:Q", title=titles.get(field, field), format=fmt))
        else:
            tips.append(alt.Tooltip(f"{field}:N", title=titles.get(field, field)))
    return tips


def _series(frame: pd.DataFrame, color: str, dash: str | None) -> pd.DataFrame:
    """Add ``series``, one value per drawn line, so lines never join across groups."""
    frame = frame.copy()
    label = pd.Series("?", index=frame.index, dtype="string")
    if color in frame:
        label = frame[color].astype("string").fillna("?")
    if dash and dash in frame:
        label = label + " · " + frame[dash].astype("string").fillna("?")
    frame["series"] = label.astype("object")
    return frame


def _axes(
    x: str,
    y: str,
    log_x: bool,
    log_y: bool,
    x_title: str | None,
    y_title: str | None,
    x_base: float | None = None,
    x_ticks: Sequence[float] | None = None,
) -> tuple[alt.X, alt.Y]:
    """Quantitative X and Y. A layer passes None titles so the host layer's titles win.
    ``x_ticks`` puts the x ticks at those values only (whole thread counts, say)."""
    titled = {"title": x_title} if x_title is not None else {}
    if x_ticks is not None:
        titled["axis"] = alt.Axis(values=list(x_ticks), format="~g")
    x_enc = alt.X(f"{x}:Q", scale=_scale(log_x, x_base), **titled)
    titled = {"title": y_title} if y_title is not None else {}
    return x_enc, alt.Y(f"{y}:Q", scale=_scale(log_y), **titled)


def _line_layers(
    data: pd.DataFrame,
    x: str,
    y: str,
    *,
    log: tuple[bool, bool],
    titles: tuple[str, str],
    color: str,
    dash: str | None,
    tips: list[str],
    tip_titles: Mapping[str, str] | None = None,
    band: tuple[str, str] | None = None,
    x_base: float | None = None,
    rings: bool = False,
    x_ticks: Sequence[float] | None = None,
) -> list[alt.Chart]:
    """Optional IQR band, lines and tooltip points, one line per ``series``; with
    ``rings``, flagged points are outlined (see ``_flag_rings``)."""
    x_enc, y_enc = _axes(x, y, *log, *titles, x_base=x_base, x_ticks=x_ticks)
    style = {"color": alt.Color(f"{color}:N", title=color, scale=_CATEGORIES)}
    if dash and dash in data:
        style["strokeDash"] = alt.StrokeDash(f"{dash}:N", title=dash)
    keys = [color, *([dash] if dash else [])]
    layers = []
    if band is not None:
        lo, hi = band
        band_data = _slim(_positive(data, lo, hi), [x, lo, hi, *keys, "series", *tips])
        band_x, band_y = _axes(x, lo, *log, None, None, x_base=x_base)
        layers.append(
            alt.Chart(band_data)
            .mark_area(opacity=0.18)
            .encode(
                x=band_x,
                y=band_y,
                y2=alt.Y2(f"{hi}"),
                color=style["color"],
                detail="series:N",
                tooltip=_tooltips(band_data, [*keys, x, lo, hi], tip_titles),
            )
        )
    lines = _slim(data, [x, y, *keys, "series", *tips])
    layers.append(
        alt.Chart(lines)
        .mark_line()
        .encode(
            x=x_enc,
            y=y_enc,
            detail="series:N",
            tooltip=_tooltips(lines, keys, tip_titles),
            **style,
        )
    )
    point_style = {"color": style["color"]}
    if "strokeDash" in style:
        point_style["shape"] = alt.Shape(f"{dash}:N", title=dash)
    layers.append(
        alt.Chart(lines)
        .mark_point(filled=True, size=45)
        .encode(
            x=x_enc,
            y=y_enc,
            tooltip=_tooltips(lines, [*keys, x, y, *tips], tip_titles),
            **point_style,
        )
    )
    if rings:
        ring = _flag_rings(
            data, x, y, log=log, tips=[*keys, *tips], tip_titles=tip_titles, x_base=x_base
        )
        if ring is not None:
            layers.append(ring)
    return layers


def _bad_marks(
    frame: pd.DataFrame, x: str, y_field: str, y_values: np.ndarray, offset: str = "backend"
) -> alt.Chart:
    """Red crosses for failed/refused rows, carrying status and message in the tooltip."""
    bad = frame.copy()
    bad[y_field] = y_values
    bad = _slim(bad, [x, offset, y_field, "status", "message"])
    return (
        alt.Chart(bad)
        .mark_point(shape="cross", filled=True, size=140, color=_BAD_COLOR)
        .encode(
            x=alt.X(f"{x}:O"),
            xOffset=alt.XOffset(f"{offset}:N"),
            y=alt.Y(f"{y_field}:Q"),
            tooltip=_tooltips(bad, [offset, x, "status", "message"]),
        )
    )


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
        label = f"datum.label == '{flag}' ? '{_FLAG_LABELS[flag]}' : ({label})"
    return alt.Stroke(
        "flag:N",
        scale=alt.Scale(domain=present, range=[_FLAG_COLORS[f] for f in present]),
        legend=alt.Legend(
            title="flagged", labelExpr=label, symbolFillColor="transparent", symbolStrokeWidth=2.5
        ),
    )


def _flag_rings(
    data: pd.DataFrame,
    x: str,
    y: str,
    *,
    log: tuple[bool, bool],
    tips: Iterable[str],
    tip_titles: Mapping[str, str] | None = None,
    x_base: float | None = None,
) -> alt.Chart | None:
    """Hollow diamonds around flagged points; None when nothing is flagged, so an
    unflagged chart has no empty 'flagged' legend."""
    flagged = _positive(_flagged(data), x, y)
    if flagged.empty:
        return None
    fields = ["flags", *tips, x, y, "message"]
    rings = _slim(flagged, ["flag", *fields])
    x_enc, y_enc = _axes(x, y, *log, None, None, x_base=x_base)
    return (
        alt.Chart(rings)
        .mark_point(shape="diamond", filled=False, size=320, strokeWidth=2.5)
        .encode(
            x=x_enc,
            y=y_enc,
            stroke=_flag_stroke(rings),
            tooltip=_tooltips(rings, fields, tip_titles),
        )
    )


# ---------------------------------------------------------------- builders


def time_vs_x(
    frame: pd.DataFrame,
    x: str,
    color: str = "backend",
    detail: str | None = None,
    log_x: bool = True,
    log_y: bool = True,
    machine: str = "",
    floor_s: Mapping[str, float] | None = None,
    x_title: str | None = None,
    title: str | None = None,
) -> alt.LayerChart:
    """Median time against ``x`` with its IQR band; one line per ``color`` × ``detail``.

    ``detail`` (e.g. "op") is drawn as the dash pattern. ``floor_s`` maps a backend to
    its dispatch floor in seconds, drawn as a dashed horizontal rule: points near it
    are measuring launch overhead, not work. Flagged points are outlined by flag.
    """
    ok = _with_status(frame, "ok")
    unit, factor = units.time_unit(ok.get("median_s", []))
    data = _series(_positive(_with_time(ok, factor), "time"), color, detail)
    titles = _time_titles(unit)
    tips = ["backend", *_params(frame), "dtype", "time_p25", "time_p75", "n", "flags"]
    layers = _line_layers(
        data,
        x,
        "time",
        log=(log_x, log_y),
        titles=(x_title or _x_title(frame, x), f"median time ({unit})"),
        color=color,
        dash=detail,
        tips=tips,
        tip_titles=titles,
        band=("time_p25", "time_p75"),
        rings=True,
    )
    if floor_s:
        floors = pd.DataFrame(
            [
                {"backend": b, "floor_s": float(s), "time": float(s) * factor}
                for b, s in floor_s.items()
                if s is not None and math.isfinite(float(s)) and float(s) > 0
            ],
            columns=["backend", "floor_s", "time"],
        )
        rule = alt.Chart(floors).mark_rule(strokeDash=[4, 4], opacity=0.7)
        rule_style = (
            {"color": alt.Color("backend:N", scale=_CATEGORIES)} if color == "backend" else {}
        )
        layers.append(
            rule.encode(
                y=alt.Y("time:Q", scale=_scale(log_y)),
                tooltip=[
                    alt.Tooltip("backend:N"),
                    alt.Tooltip("time:Q", title=f"dispatch floor ({unit})", format=".4~g"),
                ],
                **rule_style,
            )
        )
    layers.append(_bad_strip(frame, x, log_x))
    return alt.layer(*layers).properties(title=_title(frame, "", machine, title))


def _bad_strip(frame: pd.DataFrame, x: str, log_x: bool) -> alt.Chart:
    """Failed/refused points as red crosses along the bottom edge: they have no time to plot."""
    bad = _positive(_with_status(frame, *_BAD_STATUSES), x)
    bad = _slim(bad, ["backend", *_params(frame), "status", "message"])
    x_enc, _ = _axes(x, x, log_x, False, None, None)
    return (
        alt.Chart(bad)
        .mark_point(shape="cross", filled=True, size=120, color=_BAD_COLOR)
        .encode(
            x=x_enc,
            y=alt.value("height"),
            yOffset=alt.value(-8),
            tooltip=_tooltips(bad, bad.columns),
        )
    )


def overlay(
    frame: pd.DataFrame,
    x: str,
    by: str | None = None,
    log_x: bool = True,
    log_y: bool = True,
    machine: str = "",
    x_title: str | None = None,
    title: str | None = None,
) -> alt.LayerChart:
    """Runs of several machines on one time chart: colour by machine, dash by backend.

    ``by`` defaults to a ``machine`` column, else ``source``, else ``run_id``.
    """
    if by is None:
        by = next((c for c in ("machine", "source", "run_id") if c in frame), "run_id")
    what = title or f"{_title(frame, '', '', None)} across machines"
    return time_vs_x(frame, x, by, "backend", log_x, log_y, machine, x_title=x_title, title=what)


def first_call_vs_median(
    frame: pd.DataFrame,
    x: str,
    log_x: bool = True,
    log_y: bool = True,
    machine: str = "",
    x_title: str | None = None,
    title: str | None = None,
) -> alt.LayerChart:
    """Cold first call (compilation, allocation, lazy init) against the warm median."""
    ok = _with_status(frame, "ok")
    kinds = {"first call (cold)": "first_call_s", "median (warm)": "median_s"}
    parts = [ok.assign(call=kind, seconds=_floats(ok[c])) for kind, c in kinds.items() if c in ok]
    data = pd.concat(parts, ignore_index=True) if parts else ok.assign(call=[], seconds=[])
    unit, factor = units.time_unit(data["seconds"])
    data["time"] = _floats(data["seconds"]) * factor
    data = _series(_positive(data, "time"), "backend", "call")
    layers = _line_layers(
        data,
        x,
        "time",
        log=(log_x, log_y),
        titles=(x_title or _x_title(frame, x), f"time per call ({unit})"),
        color="backend",
        dash="call",
        tips=["backend", *_params(frame), "dtype"],
        tip_titles={"time": f"time ({unit})"},
    )
    return alt.layer(*layers).properties(
        title=_title(frame, "first call vs warm median", machine, title)
    )


def throughput_vs_x(
    frame: pd.DataFrame,
    x: str,
    metric: str = "gb_per_s",
    color: str = "backend",
    detail: str | None = None,
    log_x: bool = True,
    log_y: bool = True,
    machine: str = "",
    x_title: str | None = None,
    title: str | None = None,
) -> alt.LayerChart:
    """Achieved GB/s, GFLOP/s, TFLOP/s or images/s against ``x``."""
    ok = _with_derived_rates(_with_status(frame, "ok"))
    data = _series(_positive(ok, metric), color, detail)
    tips = ["backend", *_params(frame), "dtype", "median_s", "pct_of_ceiling", "flags"]
    layers = _line_layers(
        data,
        x,
        metric,
        log=(log_x, log_y),
        titles=(x_title or _x_title(frame, x), _METRIC_TITLES.get(metric, metric)),
        color=color,
        dash=detail,
        tips=tips,
        rings=True,
    )
    what = _METRIC_TITLES.get(metric, metric).replace("achieved ", "")
    return alt.layer(*layers).properties(title=_title(frame, what, machine, title))


def _with_derived_rates(frame: pd.DataFrame) -> pd.DataFrame:
    """Images/s for the model pages and TFLOP/s for the matmul page, from the stored rates."""
    frame = frame.copy()
    if "batch" in frame and "median_s" in frame:
        frame["images_per_s"] = _floats(frame["batch"]) / _floats(frame["median_s"])
    if "gflops_per_s" in frame:
        frame["tflops_per_s"] = _floats(frame["gflops_per_s"]) / 1000
    return frame


def threads_chart(
    frame: pd.DataFrame,
    machine: str = "",
    log_y: bool = True,
    title: str | None = None,
) -> alt.LayerChart:
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
    unit, factor = units.time_unit(ok.get("median_s", []))
    data = _positive(_with_time(ok, factor), "time", "threads")
    data["point"] = [
        units.point_label(row.get("workload"), {p: row[p] for p in params})
        for row in data.to_dict(orient="records")
    ]
    data["threads"] = _floats(data["threads"])
    fewest = data.loc[data.groupby("point")["threads"].idxmin()] if len(data) else data
    base = dict(zip(fewest["point"], fewest["time"] * fewest["threads"], strict=True))
    data["ideal"] = data["point"].map(base) / data["threads"]
    data = _series(data, "point", None)
    titles = _time_titles(unit) | {"ideal": f"ideal scaling ({unit})"}
    layers = _line_layers(
        data,
        "threads",
        "time",
        log=(True, log_y),
        titles=("threads", f"median time ({unit})"),
        color="point",
        dash=None,
        tips=["backend", "time_p25", "time_p75", "ideal"],
        tip_titles=titles,
        band=("time_p25", "time_p75"),
        x_base=2,
        # A log axis over 1..2 threads would otherwise tick at 1.1, 1.2, ...
        x_ticks=sorted(set(data["threads"])) or None,
    )
    ideal = _slim(data, ["threads", "ideal", "point", "series"])
    ideal_x, ideal_y = _axes("threads", "ideal", True, log_y, None, None, x_base=2)
    layers.append(
        alt.Chart(ideal)
        .mark_line(strokeDash=[2, 3], opacity=0.5)
        .encode(
            x=ideal_x,
            y=ideal_y,
            color=alt.Color("point:N", scale=_CATEGORIES),
            detail="series:N",
            tooltip=_tooltips(ideal, ["point", "threads", "ideal"], titles),
        )
    )
    return alt.layer(*layers).properties(title=_title(frame, "thread scaling", machine, title))


def speedup_heatmap(
    frame: pd.DataFrame,
    x: str,
    y: str,
    machine: str = "",
    title: str | None = None,
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
        cells = (
            ok.groupby(keys, dropna=False, sort=True)
            .agg(
                _log_s=("_log_s", "mean"),
                median_s=("median_s", "median"),
                points=("_log_s", "size"),
            )
            .reset_index()
        )
        cells["speedup"] = np.exp(cells.pop("_log_s"))
        cells["label"] = cells["speedup"].map(units.speedup)
    unit, factor = units.time_unit(cells["median_s"])
    cells["time"] = _floats(cells["median_s"]) * factor
    cells = cells.drop(columns="median_s")
    tips = _tooltips(
        cells,
        ["backend", y, x, "speedup", "time", "points"],
        {"time": f"accelerator median ({unit})", "points": "points pooled"},
    )
    # Numbers grow upwards like a y axis; names read top to bottom.
    y_order = "descending" if _field_type(ok, y) == "quantitative" else "ascending"
    encoding = {
        "x": alt.X(f"{x}:O", title=_x_title(frame, x)),
        "y": alt.Y(f"{y}:O", title=_x_title(frame, y), sort=y_order),
        "tooltip": tips,
    }
    colour = alt.Color(
        "speedup:Q",
        scale=alt.Scale(type="log", scheme="redyellowgreen", domainMid=1),
        legend=alt.Legend(title=f"speedup vs {baseline}"),
    )
    base = alt.Chart(cells).encode(**encoding)
    chart = alt.layer(
        base.mark_rect().encode(color=colour),
        base.mark_text(fontSize=11, color="black").encode(text="label:N"),
    )
    what = _title(frame, f"speedup over {baseline}" if baseline else "speedup", machine, title)
    if cells["backend"].nunique() > 1:
        chart = chart.facet(column=alt.Column("backend:N", title=None))
    return chart.properties(title=what)


def bar_by_batch(
    frame: pd.DataFrame,
    metric: str = "median",
    x: str = "batch",
    machine: str = "",
    title: str | None = None,
) -> alt.LayerChart | alt.HConcatChart:
    """Step time (``metric="median"``, with p25–p75 whiskers) or images/s per batch.

    Bars are grouped by backend; failed and refused points show as red crosses on the
    axis, and flagged bars get a coloured outline. Several models in one table become
    side-by-side panels.
    """
    if "model" in frame and frame["model"].nunique() > 1:
        panels = [
            bar_by_batch(part, metric, x, machine="", title=str(model))
            for model, part in frame.groupby("model", sort=False)
        ]
        what = "step time" if metric == "median" else "images per second"
        return alt.hconcat(*panels).properties(title=_title(frame, what, machine, title))
    ok = _with_derived_rates(_with_status(frame, "ok"))
    if metric == "median":
        unit, factor = units.time_unit(ok.get("median_s", []))
        ok = _with_time(ok, factor)
        value, y_title, titles = "time", f"median step time ({unit})", _time_titles(unit)
    else:
        value, y_title, titles = metric, _METRIC_TITLES.get(metric, metric), {}
    params = _params(frame)
    shown = [x, "backend", value, "time_p25", "time_p75", "median_s", *params, "dtype", "flags"]
    bars = _slim(ok, shown)
    base = alt.Chart(bars).encode(
        x=alt.X(f"{x}:O", title=_x_title(frame, x)),
        xOffset=alt.XOffset("backend:N"),
        color=alt.Color("backend:N", scale=_CATEGORIES),
    )
    fields = ["backend", *params, "dtype", value, "time_p25", "time_p75", "flags"]
    tips = _tooltips(bars, fields, titles)
    layers = [base.mark_bar().encode(y=alt.Y(f"{value}:Q", title=y_title), tooltip=tips)]
    flagged = _positive(_flagged(_slim(ok, [*shown, "message"])), value)
    if not flagged.empty:
        # A transparent bar drawn over the real one, so only its outline shows.
        layers.append(
            alt.Chart(flagged)
            .mark_bar(fill="transparent", fillOpacity=0, strokeWidth=2.5)
            .encode(
                x=alt.X(f"{x}:O"),
                xOffset=alt.XOffset("backend:N"),
                y=alt.Y(f"{value}:Q"),
                stroke=_flag_stroke(flagged),
                tooltip=_tooltips(flagged, [*fields, "message"], titles),
            )
        )
    if metric == "median":
        whiskers = _positive(bars, "time_p25", "time_p75")
        layers.append(
            alt.Chart(whiskers)
            .mark_rule(color="black", opacity=0.6)
            .encode(
                x=alt.X(f"{x}:O"),
                xOffset=alt.XOffset("backend:N"),
                y=alt.Y("time_p25:Q"),
                y2=alt.Y2("time_p75"),
                tooltip=_tooltips(whiskers, ["backend", x, "time_p25", "time_p75"], titles),
            )
        )
    bad = _with_status(frame, *_BAD_STATUSES)
    layers.append(_bad_marks(bad, x, value, np.zeros(len(bad))))
    what = "step time" if metric == "median" else "images per second"
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
    every = frame.copy()
    for column in ("peak_memory_bytes", "memory_estimate_bytes"):
        every[column] = _floats(every[column]) if column in every else np.nan
    budgets = {b: float(v) for b, v in budget_bytes.items() if v and math.isfinite(float(v))}
    unit, factor = units.bytes_unit(
        [*every["peak_memory_bytes"], *every["memory_estimate_bytes"], *budgets.values()]
    )
    every["peak"] = every["peak_memory_bytes"] * factor
    every["estimate"] = every["memory_estimate_bytes"] * factor
    titles = {"peak": f"peak ({unit})", "estimate": f"estimate ({unit})", "budget": "budget"}
    columns = [x, "backend", "peak", "estimate", "status", "dtype", *_params(frame)]
    peaks = _slim(_positive(_with_status(every, "ok"), "peak"), columns)
    estimates = _slim(_positive(every, "estimate"), columns)
    base_x = {"x": alt.X(f"{x}:O", title=_x_title(frame, x)), "xOffset": "backend:N"}
    layers = [
        alt.Chart(peaks)
        .mark_bar()
        .encode(
            y=alt.Y("peak:Q", title=f"memory ({unit})"),
            color=alt.Color("backend:N", scale=_CATEGORIES),
            tooltip=_tooltips(peaks, columns, titles),
            **base_x,
        ),
        alt.Chart(estimates)
        .mark_tick(color="black", thickness=2)
        .encode(y=alt.Y("estimate:Q"), tooltip=_tooltips(estimates, columns, titles), **base_x),
    ]
    rules = pd.DataFrame(
        [{"backend": b, "budget_bytes": v, "budget": v * factor} for b, v in budgets.items()],
        columns=["backend", "budget_bytes", "budget"],
    )
    layers.append(
        alt.Chart(rules)
        .mark_rule(strokeDash=[6, 3])
        .encode(
            y=alt.Y("budget:Q"),
            color=alt.Color("backend:N", scale=_CATEGORIES),
            tooltip=[
                alt.Tooltip("backend:N"),
                alt.Tooltip("budget:Q", title=f"budget ({unit})", format=".4~g"),
            ],
        )
    )
    bad = _with_status(every, *_BAD_STATUSES)
    at = np.nan_to_num(_floats(bad["estimate"]), nan=0.0)
    layers.append(_bad_marks(bad, x, "estimate", at))
    return alt.layer(*layers).properties(title=_title(frame, "memory", machine, title))


def crossover_rules(
    crossover_df: pd.DataFrame,
    x: str,
    log_x: bool = True,
    color: str = "backend",
) -> alt.LayerChart:
    """Vertical dashed rules at each crossover, for layering on a chart with ``x`` on X.

    The x title is left implicit so the host chart's explicit title wins when layered.
    """
    data = crossover_df.copy()
    data[x] = _floats(data["crossover_x"]) if "crossover_x" in data else np.nan
    data = _positive(data, x)
    data["label"] = [units.about(v) for v in _floats(data[x])]
    group = [
        c
        for c in data.columns
        if c not in (x, "crossover_x", "label", "backend", "direction", "sentence")
    ]
    data = _slim(data, [*group, "backend", x, "label", "direction", "sentence"])
    tips = _tooltips(data, [*group, "backend", x, "direction", "sentence"], {x: "crossover"})
    style = {"color": alt.Color(f"{color}:N", scale=_CATEGORIES)} if color in data else {}
    x_enc, _ = _axes(x, x, log_x, False, None, None)
    base = alt.Chart(data).encode(x=x_enc, tooltip=tips, **style)
    return alt.layer(
        base.mark_rule(strokeDash=[6, 3], strokeWidth=1.5),
        base.mark_text(align="left", baseline="top", dx=3, fontSize=10).encode(
            y=alt.value(4), text="label:N"
        ),
    )


def roofline(
    frame: pd.DataFrame,
    ceilings: Mapping[str, Mapping[str, float]],
    machine: str = "",
    title: str | None = None,
) -> alt.LayerChart:
    """Achieved GFLOP/s against arithmetic intensity under each backend's roof.

    ``ceilings`` maps a backend to ``bandwidth_bytes_per_s`` and ``peak_flops_per_s``.
    The roof min(peak, bandwidth × intensity) is straight in log-log space apart from
    its ridge, so it is drawn exactly through three points.
    """
    ok = _with_status(frame, "ok")
    ok = _positive(ok, "flops", "bytes")
    ok["intensity"] = _floats(ok["flops"]) / _floats(ok["bytes"])
    achieved = _floats(ok["gflops_per_s"]) if "gflops_per_s" in ok else np.full(len(ok), np.nan)
    computed = _floats(ok["flops"]) / _floats(ok["median_s"]) / 1e9
    ok["gflops_per_s"] = np.where(np.isfinite(achieved), achieved, computed)
    ok = _positive(ok, "gflops_per_s")

    roofs = {b: r for b, c in ceilings.items() if (r := _roof_of(c)) is not None}
    ridges = [peak / bandwidth for bandwidth, peak in roofs.values()]
    spots = [*ok["intensity"], *(r for r in ridges if math.isfinite(r) and r > 0)]
    span = (min(spots) / 4, max(spots) * 4) if spots else (0.01, 100.0)
    roof = _roof_lines(roofs, *span)
    unknown = (math.nan, math.nan)
    bandwidth = _floats(ok["backend"].map(lambda b: roofs.get(b, unknown)[0]))
    peak = _floats(ok["backend"].map(lambda b: roofs.get(b, unknown)[1]))
    under_gflops_per_s = np.minimum(peak, bandwidth * ok["intensity"].to_numpy()) / 1e9
    ok["pct_of_roof"] = 100 * ok["gflops_per_s"].to_numpy() / under_gflops_per_s
    fields = ["backend", "intensity", "gflops_per_s", "pct_of_roof", "median_s"]
    points = _slim(ok, [*fields, *_params(frame), "dtype", "flags"])
    x_enc, y_enc = _axes(
        "intensity",
        "gflops_per_s",
        True,
        True,
        "arithmetic intensity (FLOP/byte)",
        "achieved GFLOP/s",
    )
    roof_x, roof_y = _axes("intensity", "roof_gflops_per_s", True, True, None, None)
    roof_tips = ["backend", "bandwidth_gb_per_s", "peak_gflops_per_s", "roof_gflops_per_s"]
    titles = {
        "bandwidth_gb_per_s": "bandwidth (GB/s)",
        "peak_gflops_per_s": "peak GFLOP/s",
        "roof_gflops_per_s": "roof GFLOP/s",
        "pct_of_roof": "% of roof",
    }
    layers = [
        alt.Chart(roof)
        .mark_line(strokeDash=[5, 3])
        .encode(
            x=roof_x,
            y=roof_y,
            color=alt.Color("backend:N", scale=_CATEGORIES),
            tooltip=_tooltips(roof, roof_tips, titles),
        ),
        alt.Chart(points)
        .mark_point(filled=True, size=55)
        .encode(
            x=x_enc,
            y=y_enc,
            color=alt.Color("backend:N", scale=_CATEGORIES),
            tooltip=_tooltips(points, points.columns, titles),
        ),
    ]
    ring_tips = [f for f in points.columns if f not in ("intensity", "gflops_per_s")]
    ring = _flag_rings(
        ok, "intensity", "gflops_per_s", log=(True, True), tips=ring_tips, tip_titles=titles
    )
    if ring is not None:
        layers.append(ring)
    return alt.layer(*layers).properties(title=_title(frame, "roofline", machine, title))


def _roof_lines(roofs: Mapping[str, tuple[float, float]], lo: float, hi: float) -> pd.DataFrame:
    """Each backend's roof at both ends of the intensity span and at its ridge."""
    rows = []
    for backend, (bandwidth, peak) in roofs.items():
        ridge = peak / bandwidth
        for intensity in [lo, *([ridge] if lo < ridge < hi else []), hi]:
            rows.append(
                {
                    "backend": backend,
                    "intensity": intensity,
                    "roof_gflops_per_s": min(peak, bandwidth * intensity) / 1e9,
                    "bandwidth_gb_per_s": bandwidth / 1e9,
                    "peak_gflops_per_s": peak / 1e9,
                }
            )
    columns = ["backend", "intensity", "roof_gflops_per_s"]
    roof = pd.DataFrame(rows, columns=[*columns, "bandwidth_gb_per_s", "peak_gflops_per_s"])
    # A ceiling not given is inf in the arithmetic; JSON has no inf, so the tooltip shows blank.
    return roof.replace([math.inf, -math.inf], math.nan)


def _roof_of(ceiling: Mapping[str, float]) -> tuple[float, float] | None:
    """(bandwidth bytes/s, peak FLOP/s), a missing one as inf; None when both are missing."""

    def value(key: str) -> float:
        raw = ceiling.get(key)
        number = float(raw) if raw is not None else math.nan
        return number if math.isfinite(number) and number > 0 else math.inf

    bandwidth, peak = value("bandwidth_bytes_per_s"), value("peak_flops_per_s")
    if math.isinf(bandwidth) and math.isinf(peak):
        return None
    return bandwidth, peak


def _time_titles(unit: str) -> dict[str, str]:
    return {
        "time": f"median ({unit})",
        "time_p25": f"p25 ({unit})",
        "time_p75": f"p75 ({unit})",
        "n": "repeats",
    }


# ---------------------------------------------------------------- speedup views


def speedup_vs_x(
    frame: pd.DataFrame,
    x: str,
    crossovers: pd.DataFrame | None = None,
    color: str = "op",
    machine: str = "",
    x_title: str | None = None,
    title: str | None = None,
) -> alt.LayerChart:
    """Speedup over the baseline against ``x`` (log-log), with 1× drawn as the even line and
    each crossover from ``core.show.crossover`` as a dashed rule."""
    data, baseline = against_baseline(frame)
    data = _positive(data, x, "speedup")  # both axes are logarithmic
    if color not in data:
        color = "backend"
    data["label"] = data["speedup"].map(units.speedup)
    data["series"] = data[color].astype(str) + " · " + data["backend"].astype(str)
    fields = [x, "speedup", "label", "series", "backend", *([color] if color != "backend" else [])]
    data = data[list(dict.fromkeys(fields))].reset_index(drop=True)
    tips = [alt.Tooltip(f"{f}:N") for f in dict.fromkeys([color, "backend"])]
    tips += [alt.Tooltip(f"{x}:Q", format=",.0f"), alt.Tooltip("label:N", title="speedup")]
    base = alt.Chart(data).encode(
        x=alt.X(f"{x}:Q", scale=alt.Scale(type="log"), title=x_title or _x_title(frame, x)),
        y=alt.Y("speedup:Q", scale=alt.Scale(type="log"), title=f"speedup over {baseline}"),
        color=alt.Color(f"{color}:N", title=color, scale=_CATEGORIES),
        tooltip=tips,
    )
    layers = [
        base.mark_line().encode(detail="series:N"),
        base.mark_point(filled=True, size=45),
        alt.Chart(pd.DataFrame({"even": [1.0]}))
        .mark_rule(color="gray", strokeDash=[2, 2])
        .encode(y=alt.Y("even:Q", scale=alt.Scale(type="log"))),
    ]
    if crossovers is not None and not crossovers.empty:
        layers.append(crossover_rules(crossovers, x, color=color))
    what = title or f"Speedup over {baseline}"
    return alt.layer(*layers).properties(title=_title(frame, what, machine, what))


def with_speedup_labels(chart: alt.LayerChart, frame: pd.DataFrame, x: str) -> alt.LayerChart:
    """Write each non-baseline point's speedup (e.g. '3.2×') above it on a ``time_vs_x``
    chart, in the same time unit that chart chose."""
    _, factor = units.time_unit(_with_status(frame, "ok")["median_s"])
    data, _ = against_baseline(frame)
    data["time"] = _floats(data["median_s"]) * factor
    data = data[np.isfinite(data["speedup"]) & (data["time"] > 0)]
    data["label"] = data["speedup"].map(units.speedup)
    data[x] = _floats(data[x])
    data = data[[x, "time", "label", "backend"]].reset_index(drop=True)
    text = (
        alt.Chart(data)
        .mark_text(dy=-12, fontSize=11, fontWeight="bold")
        .encode(
            x=alt.X(f"{x}:Q", scale=alt.Scale(type="log")),
            y=alt.Y("time:Q", scale=alt.Scale(type="log")),
            text="label:N",
            color=alt.Color("backend:N", scale=_CATEGORIES),
        )
    )
    return chart.add_layers(text)


def duel_bars(frame: pd.DataFrame, what: str) -> alt.LayerChart:
    """One bar per backend with its median time written on it: the Overview's quick duel."""
    data = _with_status(frame, "ok")
    unit, factor = units.time_unit(data["median_s"])
    data["time"] = _floats(data["median_s"]) * factor
    data["label"] = data["median_s"].map(units.seconds)
    data = data[["backend", "time", "label"]].reset_index(drop=True)
    base = alt.Chart(data).encode(
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
    parts = []
    for backend, speedup in zip(others["backend"], others["speedup"], strict=True):
        if not math.isfinite(speedup):
            continue
        if speedup >= 1:
            parts.append(f"{backend} is {units.speedup(speedup)} faster than {baseline}")
        else:
            parts.append(f"{backend} is {units.speedup(1 / speedup)} slower than {baseline}")
    return "; ".join(parts)
