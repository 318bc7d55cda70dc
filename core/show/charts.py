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
import zlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import altair as alt
import numpy as np
import pandas as pd

from core import units
from core.keep import reference, results
from core.measure import workloads
from core.show.crossover import against_baseline

_METRIC_TITLES = {
    "gb_per_s": "achieved bandwidth (GB/s)",
    "gflops_per_s": "achieved GFLOP/s",
    "tflops_per_s": "achieved TFLOP/s",
    "images_per_s": "images per second",
    "images_per_j": "images per joule",
}
_BAD_STATUSES = ("failed", "refused")
# Distinct hues for backends, machines and series, each with a WCAG contrast of at least
# 3 against both Streamlit backgrounds (white, and the dark theme's near-black), so a
# line or a legend swatch reads in either theme. Tableau's orange, cyan and olive do not.
PALETTE = (
    "#1f77b4",  # blue
    "#e8710a",  # orange
    "#2ca02c",  # green
    "#d62728",  # red
    "#9467bd",  # purple
    "#0f8f9c",  # teal
    "#d6459e",  # pink
    "#8c564b",  # brown
    "#7a7a00",  # olive
    "#b8860b",  # gold
)
_BLUE, _ORANGE, _GREEN, _RED, _PURPLE, _TEAL, _PINK, _BROWN, _OLIVE, _GOLD = PALETTE
# Symbols of legends that carry no colour (op shapes, dashes): Vega's mid grey, which reads
# on white and on the dark theme alike (Vega-Lite's default there is black).
NEUTRAL = "gray"
# The labels every page and the post's figures use get a fixed colour, so a backend or a
# machine looks the same on every chart of every page whatever else that chart shows.
_KNOWN_COLOURS: dict[str, dict[str, str]] = {
    "backend": {
        "cpu (1 thread)": _BLUE,
        "cpu (2 threads)": _TEAL,
        "cuda": _ORANGE,
        "mps": _RED,
        "cpu (post default, 2 threads)": _PURPLE,
        "cpu (post default threads)": _BROWN,
        "cuda (rocm)": _PINK,
    },
    "machine": {reference.NEO: _ORANGE, reference.RYZEN: _PINK},
    "op": dict(zip(workloads.OPS, PALETTE, strict=False)),
    "dtype": {"float32": _BLUE, "float16": _ORANGE, "bfloat16": _GREEN},
}

# Most serious first: a point with several flags is outlined in the colour of the first.
# Each flag: (what it means, outline colour, legend hint). The hint stays short so the
# legend does not squeeze the plot; captions say more.
_FLAG_STYLE = {
    "nonfinite": ("the output has NaN or inf", _RED, "NaN/inf"),
    "mismatch": ("the output differs from the CPU reference", "#8e44ad", "wrong output"),
    "suspect": (
        "faster than this device's measured ceilings allow (often a missing synchronize)",
        "#e6007e",
        "too fast",
    ),
    "busy": (
        "other programs took cores this point needed while it was timed: too slow, and "
        "no speedup is claimed from it",
        "#d35400",
        "busy machine",
    ),
    "cpu-fallback": ("an op ran on the CPU, not the device", "#c0392b", "fell back"),
    "noisy": ("the median is not known to a few percent", "#8c8c8c", "spread"),
    "host-bound": (
        "the CPU launching kernels sets this pace, not the device",
        "#2e86c1",
        "launch-bound",
    ),
}
FLAGS = tuple(_FLAG_STYLE)
FLAG_MEANINGS = {flag: meaning for flag, (meaning, _, _) in _FLAG_STYLE.items()}


def colour_of(field: str, label: object) -> str:
    """The one colour of ``label`` wherever ``field`` colours a chart: a fixed one for the
    labels every page uses, else a stable hash's pick among the colours no known label of
    that field has, so that this machine never takes the colour of one of the post's."""
    known, text = _KNOWN_COLOURS.get(field, {}), str(label)
    if text in known:
        return known[text]
    free = [c for c in PALETTE if c not in known.values()] or list(PALETTE)
    return free[zlib.crc32(text.encode()) % len(free)]


def colour_scale(field: str, labels: Iterable) -> alt.Scale:
    """An explicit scale for the labels a chart shows: Streamlit's theme would otherwise
    colour them in order of appearance, differently on every chart."""
    domain = [units.plain(v) for v in dict.fromkeys(labels) if not units.missing(v)]
    chosen = distinct_colours(field, domain)
    return alt.Scale(domain=domain, range=[chosen[v] for v in domain])


def distinct_colours(field: str, labels: Sequence) -> dict:
    """Each label's ``colour_of``, except that two labels of one chart never share a colour
    (hashes collide: "cpu (1 thread) · eager" and "· channels_last" came out the same
    green). Labels with a fixed colour keep it; the others are settled in sorted order, so
    that the same labels get the same colours on every chart that shows them."""
    known = _KNOWN_COLOURS.get(field, {})
    fixed = [v for v in labels if str(v) in known]
    others = sorted((v for v in labels if str(v) not in known), key=str)
    chosen: dict = {v: known[str(v)] for v in fixed}
    for label in others:
        wanted = colour_of(field, label)
        start = PALETTE.index(wanted) if wanted in PALETTE else 0
        turn = [PALETTE[(start + i) % len(PALETTE)] for i in range(len(PALETTE))]
        free = [c for c in turn if c not in chosen.values()]
        chosen[label] = free[0] if free else wanted  # more labels than colours: repeat
    return chosen


def colour(field: str, labels: Iterable, title: str | None = None, legend: bool = True):
    """Colour by ``field`` with ``colour_scale``; its legend uncut, its swatches solid
    (the IQR band's faint fill would otherwise be the swatch)."""
    shown = alt.Legend(
        title=title or field, labelLimit=0, symbolOpacity=1, symbolSize=160, symbolStrokeWidth=3
    )
    return alt.Color(
        f"{field}:N", scale=colour_scale(field, labels), legend=shown if legend else None
    )


def _grey_legend(title: str) -> alt.Legend:
    """A legend of shapes or dashes in ``NEUTRAL``, uncut."""
    return alt.Legend(
        title=title, labelLimit=0, symbolFillColor=NEUTRAL, symbolStrokeColor=NEUTRAL,
        symbolOpacity=1,
    )  # fmt: skip


def _views(chart: Any) -> Iterable[Any]:
    """Every single view of a chart: layers, concatenated and faceted panels flattened."""
    if not isinstance(chart, alt.SchemaBase):
        return
    if chart._get("encoding", alt.Undefined) is not alt.Undefined:
        yield chart
    for key in ("layer", "concat", "hconcat", "vconcat"):
        children = chart._get(key, alt.Undefined)
        for child in children if isinstance(children, list) else []:
            yield from _views(child)
    yield from _views(chart._get("spec", alt.Undefined))


def _stable_colour(view: Any) -> tuple[str | None, Any]:
    """(field, encoding) of a view coloured through ``colour_scale``, else (None, None)."""
    enc = view.encoding._get("color", alt.Undefined)
    scale = enc._get("scale", alt.Undefined) if isinstance(enc, alt.SchemaBase) else alt.Undefined
    if not isinstance(scale, alt.SchemaBase) or not isinstance(scale._get("domain"), list):
        return None, None
    field = enc.to_dict(validate=False).get("field")
    theirs = [colour_of(field, v) for v in scale["domain"]]
    return (field, enc) if field and list(scale._get("range") or []) == theirs else (None, None)


def same_colours(chart: alt.TopLevelMixin, copy: bool = True) -> alt.TopLevelMixin:
    """The chart with every view's stable colour scale over the labels of all its views.
    Vega-Lite unites the domains of a shared scale but keeps one view's range, which would
    give a label another label's colour wherever two views show different labels.
    ``copy=False`` changes a chart its caller just built, sparing a deep copy (a third of
    the time a page takes to draw)."""
    chart = chart.copy(deep=True) if copy else chart
    found: dict[str, list] = {}
    for view in _views(chart):
        field, enc = _stable_colour(view)
        if field:
            found.setdefault(field, []).extend(enc["scale"]["domain"])
    for view in _views(chart):
        field, enc = _stable_colour(view)
        if field:
            enc["scale"] = colour_scale(field, found[field])
    return chart


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
    return [c for c in results.param_columns(frame) if c not in results.SPEEDUP_COLUMNS]


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
    """A log scale spans the data alone (a nice one ran 1 to 1000 for channels 8 to 64),
    with a few pixels' padding so that the end points are not cut in half."""
    if not log:
        return alt.Scale(zero=False)
    return alt.Scale(type="log", base=base or alt.Undefined, nice=False, padding=_LOG_PAD_PX)


_LOG_PAD_PX = 10


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
    hue = colour(look.color, _labels(data, look.color))
    layers = []
    if band:
        lo, hi = "time_p25", "time_p75"
        quartiles = _slim(_positive(data, lo, hi), [x, lo, hi, *keys, "series", *tips])
        # Channels are given as objects, not shorthand text, here and below: Altair reads
        # its schema to turn text into one, 4 ms a time, on every redraw.
        area = (
            alt.Chart(quartiles)
            .mark_area(opacity=0.18)
            .encode(color=hue, detail=alt.Detail("series:N"))
        )
        tooltip = _tooltips(quartiles, [*keys, x, lo, hi], tip_titles)
        layers.append(
            area.encode(*_axes(x, lo, log, x_base=x_base), y2=alt.Y2(hi), tooltip=tooltip)
        )
    lines = _slim(data, [x, y, *keys, "series", *tips])
    titles = (look.x_title or _x_title(frame, x), y_title)
    # Lines and points take their table from the layer, as in crossover_rules.
    base = alt.Chart().encode(*_axes(x, y, log, titles, x_base, x_ticks), color=hue)
    line = base.mark_line().encode(
        detail=alt.Detail("series:N"), tooltip=_tooltips(lines, keys, tip_titles)
    )
    point = base.mark_point(filled=True, size=45)
    point = point.encode(tooltip=_tooltips(lines, [*keys, x, y, *tips], tip_titles))
    if look.dash and look.dash in data:
        dashes = alt.StrokeDash(f"{look.dash}:N", legend=_grey_legend(look.dash))
        line = line.encode(strokeDash=dashes)
        point = point.encode(shape=alt.Shape(f"{look.dash}:N", legend=_grey_legend(look.dash)))
    layers += [line, point]
    if rings:
        at = _axes(x, y, log, x_base=x_base)  # untitled: the line's titles win
        layers += _flag_rings(data, x, y, at, [*keys, *tips], tip_titles)
    layers += extra
    chart = alt.layer(*layers, data=lines, title=_title(frame, what, look.machine, look.title))
    return same_colours(chart, copy=False)


def _labels(frame: pd.DataFrame, field: str) -> Iterable:
    return frame.get(field, [])


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
    hue = colour("backend", _labels(data, "backend"))
    return bars.encode(color=hue, tooltip=_tooltips(data, tips, titles))


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
            title="flagged",
            # Below the plot: stacked under backend and op legends it ran past the chart's
            # height and was cut on a page with five ops.
            orient="bottom",
            labelExpr=label,
            labelLimit=0,
            symbolFillColor="transparent",
            symbolStrokeWidth=2.5,
            symbolOpacity=1,
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
        hue = {"color": colour("backend", floor_s)} if color == "backend" else {}
        extra.append(floors.encode(alt.Y("time:Q", scale=_scale(look.log_y)), **hue))
    # Failed/refused points as red crosses along the bottom edge: they have no time to plot.
    bad = _positive(_with_status(frame, *_BAD_STATUSES), x)
    bad = _slim(bad, ["backend", *_params(frame), "status", "message"])
    bottom = {"y": alt.YValue("height"), "yOffset": alt.YOffsetValue(-8)}
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
    if "batch" in frame and "energy_j" in frame:
        frame["images_per_j"] = _floats(frame["batch"]) / _floats(frame["energy_j"])
    if "gflops_per_s" in frame:
        frame["tflops_per_s"] = _floats(frame["gflops_per_s"]) / 1000
    return frame


def has_energy(frame: pd.DataFrame) -> bool:
    """Whether any ok row has its energy per call (only where a meter could read it)."""
    ok = _with_status(frame, "ok")
    return "energy_j" in ok and bool(np.isfinite(_floats(ok["energy_j"])).any())


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
        units.point_label(
            row.get("workload"), workloads.said(row.get("workload"), {p: row[p] for p in params})
        )
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
    ideal_line = ideal_line.encode(
        color=colour("point", ideal["point"]), detail=alt.Detail("series:N")
    )
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
        columns = [*keys, "speedup", "median_s", "points", "label", "interval"]
        cells = pd.DataFrame(columns=columns)
    else:
        ok = ok.assign(_log_s=np.log(_floats(ok["speedup"])), median_s=_floats(ok["median_s"]))
        ok["interval"] = [units.speedup_range(*v) for v in ok[list(results.SPEEDUP_COLUMNS)].values]
        aggs = {"_log_s": ("_log_s", "mean"), "median_s": ("median_s", "median")}
        aggs |= {"claim": ("claim", "all"), "interval": ("interval", "first")}
        cells = ok.groupby(keys, dropna=False).agg(**aggs, points=("_log_s", "size")).reset_index()
        cells["speedup"] = np.exp(cells.pop("_log_s"))
        # ≈: no clear winner (the interval holds 1×) or timed on a busy machine.
        close = ~cells.pop("claim").astype(bool)
        cells["label"] = np.where(close, "≈ ", "") + cells["speedup"].map(units.speedup)
        cells["interval"] = cells["interval"].where(cells["points"] == 1, "")
    unit, factor = units.time_unit(cells["median_s"])
    cells = cells.assign(time=_floats(cells.pop("median_s")) * factor)
    tip_titles = {
        "time": f"accelerator median ({unit})",
        "points": "points pooled",
        "interval": "speedup (95% interval)",
    }
    # Numbers grow upwards like a y axis; names read top to bottom.
    y_order = "descending" if _field_type(ok, y) == "quantitative" else "ascending"
    base = alt.Chart().encode(  # its table goes on the layer, as in crossover_rules
        alt.X(f"{x}:O", title=_x_title(frame, x)),
        alt.Y(f"{y}:O", title=_x_title(frame, y), sort=y_order),
        tooltip=_tooltips(
            cells, ["backend", y, x, "speedup", "interval", "time", "points"], tip_titles
        ),
    )
    shade = alt.Color(
        "speedup:Q",
        scale=alt.Scale(type="log", scheme="redyellowgreen", domainMid=1),
        legend=alt.Legend(title=f"speedup vs {baseline}", format=".2~g"),
    )
    text = base.mark_text(fontSize=11, color="black").encode(text=alt.Text("label:N"))
    chart = alt.layer(base.mark_rect().encode(color=shade), text, data=cells)
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
    what = "step time" if metric == "median" else _METRIC_TITLES.get(metric, metric)
    if "model" in frame and frame["model"].nunique() > 1:
        groups = frame.groupby("model", sort=False)
        panels = [bar_by_batch(part, metric, x, title=str(model)) for model, part in groups]
        chart = alt.hconcat(*panels).properties(title=_title(frame, what, machine, title))
        return same_colours(chart, copy=False)
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
        whisker = alt.Chart(whiskers).mark_rule(color=NEUTRAL, opacity=0.8)
        layers.append(whisker.encode(*at, alt.Y("time_p25:Q"), alt.Y2("time_p75"), tooltip=tips))
    layers.append(_bad_bars(frame, x, value))
    return same_colours(alt.layer(*layers, title=_title(frame, what, machine, title)), copy=False)


def memory_vs_budget(
    frame: pd.DataFrame,
    budget_bytes: Mapping[str, float],
    x: str = "batch",
    machine: str = "",
    title: str | None = None,
) -> alt.LayerChart:
    """Measured peak memory (bars) and the pre-run estimate (grey ticks) per batch.

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
    ticks = alt.Chart(estimates).mark_tick(color=NEUTRAL, thickness=2)
    return same_colours(
        alt.layer(
            _bars(frame, peaks, x, "peak", f"memory ({unit})", columns, titles),
            ticks.encode(*at, alt.Y("estimate:Q"), tooltip=_tooltips(estimates, columns, titles)),
            rules.encode(alt.Y("budget:Q"), color=colour("backend", budgets)),
            _bad_bars(every, x, "estimate"),
        ).properties(title=_title(frame, "memory", machine, title)),
        copy=False,
    )


# Crossovers closer than this factor share one rule and one label: apart, their labels
# would overlap on a log axis a few decades wide.
_FOLD_FACTOR = 1.3
_LABEL_STEP_PX = 14  # labels step down in turn so that neighbours do not overlap
_LABEL_ROWS = 3


def crossover_rules(crossover_df: pd.DataFrame, x: str, color: str = "backend") -> alt.LayerChart:
    """A dashed rule and a label ("size ≈ 2.2e4") at each crossover, for layering on a chart
    with ``x`` on X. Crossovers within ``_FOLD_FACTOR`` of each other fold into one rule
    whose label names them all ("size ≈ 2e4 to 2.5e4 (add, mul)"), in ``color``'s colour
    when they share one, else grey."""
    data = crossover_df.assign(**{x: _floats(crossover_df.get("crossover_x", np.nan))})
    data = _positive(data, x).sort_values(x, kind="stable")
    # What tells the crossovers apart: the group (op, dtype), and the backend if several.
    keys = [c for c in data.columns if c not in ("backend", x, "crossover_x", "direction")]
    keys = [c for c in keys if c != "sentence"]
    keys += ["backend"] if "backend" in data and data["backend"].nunique() > 1 else []
    names = [
        " · ".join(str(row[k]) for k in keys if not units.missing(row[k]))
        for row in data.to_dict(orient="records")
    ]
    data = data.assign(name=names)
    at = data[x].to_numpy()
    data["cluster"] = np.cumsum(np.r_[True, at[1:] > at[:-1] * _FOLD_FACTOR])[: len(data)]
    several = data["name"].nunique() > 1
    rows = []
    for rank, (_, part) in enumerate(data.groupby("cluster", sort=True)):
        low, high = units.about(part[x].min()), units.about(part[x].max())
        shown = list(dict.fromkeys(n for n in part["name"] if n))
        label = f"{x} ≈ {low}" + (f" to {high}" if high != low else "")
        label += f" ({', '.join(shown)})" if several and shown else ""
        hues = part[color].unique() if color in part else []
        rows.append(
            {
                x: float(np.exp(np.log(part[x]).mean())),
                "label": label,
                "sentence": "; ".join(part["sentence"].astype(str)) if "sentence" in part else "",
                "hue": colour_of(color, hues[0]) if len(hues) == 1 else NEUTRAL,
                "label_y": 4 + _LABEL_STEP_PX * (rank % _LABEL_ROWS),
            }
        )
    marks = pd.DataFrame(rows, columns=[x, "label", "sentence", "hue", "label_y"])
    tips = _tooltips(marks, [x, "label", "sentence"], {x: "crossover", "label": "where"})
    # hue and label_y are drawn as they are (scale None): no legend entry for a fold.
    # The table goes on the layer, not on its marks: Altair would hash a table the marks
    # share, as text, to move it there (a third of this chart's time).
    base = alt.Chart().encode(_axes(x, x, (True, False))[0], tooltip=tips)
    base = base.encode(color=alt.Color("hue:N", scale=None))
    rule = base.mark_rule(strokeDash=[6, 3], strokeWidth=1.5)
    text = base.mark_text(align="left", baseline="top", dx=3, fontSize=11)
    text = text.encode(y=alt.Y("label_y:Q", scale=None), text=alt.Text("label:N"))
    return alt.layer(rule, text, data=marks)


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
    hue = colour("backend", [*roof["backend"], *points["backend"]])
    roof_line = alt.Chart(roof).mark_line(strokeDash=[5, 3]).encode(color=hue)
    roof_line = roof_line.encode(*_axes("intensity", "roof_gflops_per_s", (True, True)))
    dots = alt.Chart(points).mark_point(filled=True, size=55).encode(color=hue)
    dots = dots.encode(*_axes("intensity", "gflops_per_s", (True, True), axis_titles))
    plain = _axes("intensity", "gflops_per_s", (True, True))  # rings keep the dots' titles
    return same_colours(
        alt.layer(
            roof_line.encode(tooltip=_tooltips(roof, roof_tips, titles)),
            dots.encode(tooltip=_tooltips(points, points.columns, titles)),
            *_flag_rings(ok, "intensity", "gflops_per_s", plain, ring_tips, titles),
        ).properties(title=_title(frame, "roofline", machine, None)),
        copy=False,
    )


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
    data["label"] = [units.speedup_range(*v) for v in data[list(results.SPEEDUP_COLUMNS)].values]
    data["series"] = data[color].astype(str) + " · " + data["backend"].astype(str)
    colours = list(dict.fromkeys([color, "backend"]))
    data = _slim(data, [x, "speedup", "label", "series", *colours[::-1]])
    tips = [alt.Tooltip(f"{f}:N") for f in colours]
    tips += [alt.Tooltip(f"{x}:Q", format=",.0f")]
    tips += [alt.Tooltip("label:N", title="speedup (95% interval)")]
    titles = (_x_title(frame, x), f"speedup over {baseline}")
    base = alt.Chart(data).encode(*_axes(x, "speedup", (True, True), titles))
    base = base.encode(color=colour(color, data[color]), tooltip=tips)
    even = alt.Chart(pd.DataFrame({"even": [1.0]})).mark_rule(color="gray", strokeDash=[2, 2])
    layers = [
        base.mark_line().encode(detail=alt.Detail("series:N")),
        base.mark_point(filled=True, size=45),
    ]
    layers.append(even.encode(y=alt.Y("even:Q", scale=_scale(True))))
    if crossovers is not None and not crossovers.empty:
        layers.append(crossover_rules(crossovers, x, color=color))
    what = f"Speedup over {baseline}"
    return same_colours(alt.layer(*layers, title=_title(frame, what, machine, what)), copy=False)


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
    labels = text.encode(*axes, text=alt.Text("label:N"), color=colour("backend", data["backend"]))
    return same_colours(chart.add_layers(labels), copy=False)


def duel_bars(frame: pd.DataFrame, what: str) -> alt.LayerChart:
    """One bar per backend with its median time written on it: the Overview's quick duel."""
    data = _with_status(frame, "ok")
    unit, factor = units.time_unit(data["median_s"])
    data["time"] = _floats(data["median_s"]) * factor
    data["label"] = data["median_s"].map(units.seconds)
    base = alt.Chart().encode(  # its table goes on the layer, as in crossover_rules
        y=alt.Y("backend:N", title=None, sort=None),
        x=alt.X("time:Q", title=f"median time ({unit}), shorter is faster"),
    )
    return alt.layer(
        base.mark_bar().encode(color=colour("backend", data["backend"], legend=False)),
        base.mark_text(align="left", dx=4).encode(text=alt.Text("label:N")),
        data=data[["backend", "time", "label"]].reset_index(drop=True),
        title=what,
        height=alt.Step(28),
    )


def speedup_text(frame: pd.DataFrame) -> str:
    """'cpu (2 threads) is 1.8× (1.7–1.9×) faster than cpu (1 thread)' for a one-point duel;
    "too close to call" when the interval holds 1×, and no claim from a busy machine."""
    others, baseline = against_baseline(frame)
    busy = frame["flags"].fillna("").str.contains(r"\bbusy\b").any() if "flags" in frame else False
    lines = []
    for row in others[np.isfinite(others["speedup"])].to_dict("records"):
        s, low, high = (row[c] for c in results.SPEEDUP_COLUMNS)
        if row["claim"]:
            faster = s >= 1
            shown = units.speedup_range(*((s, low, high) if faster else (1 / s, 1 / high, 1 / low)))
            lines.append(
                f"{row['backend']} is {shown} {'faster' if faster else 'slower'} than {baseline}"
            )
        elif busy:
            lines.append(f"{row['backend']} against {baseline}: not claimed, the machine was busy")
        else:
            shown = units.speedup_range(s, low, high)
            lines.append(f"{row['backend']} against {baseline}: too close to call ({shown})")
    return "; ".join(lines)
