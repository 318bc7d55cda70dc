"""Runs side by side: the post's charts, time ratios against the post, and an offline report.

Pure: tidy result frames in; Altair charts, tables and HTML text out. No Streamlit and
no torch, so the pages, the CLI and tests share it. The HTML report embeds every chart
as SVG drawn here (vl-convert), so it opens on a machine without a network.
"""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timezone

import altair as alt
import pandas as pd

from core import stats, units
from core.keep import reference, results
from core.measure import machine_state, workloads
from core.measure.suites import SuitePart
from core.show import charts

POST_DTYPE = "float32"  # every figure in the post is float32
MAX_PANELS = 12
RATIO_COLUMN = "time ratio (here / reference)"
# Each point's verdict, from the 95% intervals of both medians (core.stats); the column
# name carries the threshold, as a legend would.
VERDICT_COLUMN = f"verdict (same: within ±{stats.SAME_WITHIN:.0%}, 95% sure)"


def _key(value: object) -> object:
    """A cell as points are matched: 1e6, 1000000 and '1000000' are the same size."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return number if math.isfinite(number) else None


def rows_in_grid(frame: pd.DataFrame, grid: Mapping[str, Iterable]) -> pd.DataFrame:
    """The rows whose every grid parameter (that the frame has) takes one of the grid's values."""
    keep = pd.Series(True, index=frame.index)
    for name, values in ((n, v) for n, v in grid.items() if n in frame):
        keep &= frame[name].map(_key).isin({_key(v) for v in values})
    return frame[keep]


def select_rows(
    frame: pd.DataFrame,
    workload: str,
    param_names: Sequence[str],
    grid: Mapping[str, Iterable],
    dtypes: Sequence[str] | None = None,
    fall_back: bool = True,
) -> tuple[pd.DataFrame, bool]:
    """A workload's rows of a saved run, as a page that asked for ``grid`` would draw them.

    Returns the rows and whether they match the grid; with ``fall_back``, a run that
    shares no point with the grid gives all its rows of the workload instead.
    """
    if frame.empty or "workload" not in frame:
        return results.empty_frame(param_names), False
    mine = frame[frame["workload"].astype("string") == workload]
    matched = rows_in_grid(mine, {**grid, "dtype": list(dtypes)} if dtypes else grid)
    if matched.empty and fall_back:
        return _tidy(mine, param_names), False
    return _tidy(matched, param_names), not matched.empty


def _tidy(frame: pd.DataFrame, param_names: Sequence[str]) -> pd.DataFrame:
    """Only this workload's parameters, so charts and speedups ignore other workloads' columns."""
    extra = [c for c in ("machine", "source") if c in frame]
    keep = [*results.LEADING_COLUMNS, *param_names, *results.MEASUREMENT_COLUMNS, *extra]
    rows = frame[[c for c in keep if c in frame]].to_dict(orient="records")
    return results.to_frame(rows, list(param_names))


def post_reference(part: SuitePart, machines: Sequence[str] | None = None) -> pd.DataFrame:
    """The post's figures for one part of its grid, from the chosen reference machines."""
    frame = reference.reference_frame(part.workload)
    if machines is not None:
        frame = frame[frame["machine"].isin(list(machines))]
    return rows_in_grid(frame, part.grid).reset_index(drop=True)


def combine(*frames: pd.DataFrame) -> pd.DataFrame:
    """Stack result tables of different origins; a derived speedup would mix baselines."""
    parts = [
        f.drop(columns=list(results.SPEEDUP_COLUMNS), errors="ignore") for f in frames if len(f)
    ]
    if not parts:
        return frames[0].iloc[0:0] if frames else results.empty_frame()
    return pd.concat(parts, ignore_index=True)


def _params(frame: pd.DataFrame, workload: str | None) -> list[str]:
    if workload in workloads.REGISTRY:
        return [p for p in workloads.param_names(workload) if p in frame]
    return results.param_columns(frame, derived=False)


def view_of(
    frame: pd.DataFrame, workload: str | None = None, x: str | None = None
) -> tuple[str | None, list[str]]:
    """(x, panels): the numeric parameter with most values on the x axis, the others that
    vary as small multiples. ``x`` forces the axis."""
    params = _params(frame, workload)
    ok = frame[frame["status"] == "ok"] if "status" in frame else frame
    ok = ok if len(ok) else frame  # a run that only failed still has its shape
    counts = {p: ok[p].map(_key).nunique() for p in params}
    numeric = [p for p in params if pd.to_numeric(ok[p], errors="coerce").notna().all()]
    if x is None or x not in params:
        x = max(numeric or params, key=lambda p: counts[p], default=None)
    return x, [p for p in params if p != x and counts[p] > 1]


def numeric_params(frame: pd.DataFrame, workload: str | None = None) -> list[str]:
    params = _params(frame, workload)
    return [p for p in params if pd.to_numeric(frame[p], errors="coerce").notna().any()]


def _point(row: Mapping, params: Sequence[str]) -> str:
    """'op=add size=1e6': a point as a person would say it, every value named."""
    shown = workloads.said(row.get("workload"), {p: row.get(p) for p in params})
    return units.point_label(None, shown, all_named=True)


def overlay_chart(
    frame: pd.DataFrame, x: str, panels: Sequence[str] = (), title: str | None = None
) -> alt.TopLevelMixin:
    """``charts.overlay`` (colour by machine, dash by backend), one panel per value of the
    other varying parameters so that no line joins points of different shapes."""
    panels = [p for p in panels if p in frame]
    if not panels:
        return charts.overlay(frame, x, by="machine", title=title)
    parts = {}
    if len(frame):
        parts = dict(list(frame.groupby(frame.apply(lambda row: _point(row, panels), axis=1))))
    order = sorted(parts, key=lambda s: [_sort_key(v) for v in s.split(" ")])
    views = [charts.overlay(parts[key], x, by="machine", title=key) for key in order[:MAX_PANELS]]
    views = [view.properties(width=220, height=180) for view in views]
    what = title or "across machines"
    if len(order) > MAX_PANELS:
        what += f" (first {MAX_PANELS} of {len(order)} panels)"
    chart = alt.concat(*views, columns=min(3, len(views))).resolve_scale(color="shared")
    # Below the panels: at the side, three panels and a legend overflow a page's width.
    return chart.properties(title=what).configure_legend(orient="bottom", direction="vertical")


def _sort_key(text: str) -> tuple:
    name, _, value = text.partition("=")
    number = _key(value)
    return (name, 0, number, "") if isinstance(number, float) else (name, 1, 0.0, value)


def part_chart(part: SuitePart, frame: pd.DataFrame) -> alt.TopLevelMixin:
    """One of the post's charts: this machine's rows and the post's, on the explorer's
    builder, each label in its one colour in every panel (the offline report too)."""
    x, panels = view_of(pd.DataFrame(_grid_columns(part)))
    return charts.same_colours(overlay_chart(frame, x, panels, title=part.chart))


def grid_points(part: SuitePart) -> int:
    return math.prod(len(values) for values in part.grid.values())


def _grid_columns(part: SuitePart) -> dict[str, list]:
    # The axis is decided by the grid, not by what was reached before the budget ran out.
    longest = max(len(v) for v in part.grid.values())
    return {k: [*v, *[v[-1]] * (longest - len(v))] for k, v in part.grid.items()}


def side_of(device: object) -> str:
    return "CPU" if str(device).lower().startswith("cpu") else "accelerator"


def ratio_table(mine: pd.DataFrame, against: pd.DataFrame, params: Sequence[str]) -> pd.DataFrame:
    """Per matching point and side (CPU with CPU, accelerator with accelerator): this
    median time over the reference's. Below 1 means less time here."""
    theirs = {"machine": "reference", "backend": "reference backend", "median_s": "reference_s",
              "median_low_s": "_ref_low_s", "median_high_s": "_ref_high_s"}  # fmt: skip
    columns = ["machine", "point", *params, "dtype", "side", "backend", "reference"]
    columns += ["reference backend", "median_s", "reference_s", RATIO_COLUMN, VERDICT_COLUMN]
    ok, ref = (results.with_median_intervals(_measured(f)) for f in (mine, against))
    if ok.empty or ref.empty:
        return pd.DataFrame(columns=columns)
    keys = [p for p in params if p in ok and p in ref]
    on = [*keys, "dtype"]
    left, right = (
        f.assign(side=f["device"].map(side_of), **{f"_k_{k}": f[k].map(_key) for k in on})
        for f in (ok, ref)
    )
    joins = [*(f"_k_{k}" for k in on), "side"]
    right = right[[*joins, *theirs]].rename(columns=theirs)
    if "machine" not in left:
        left["machine"] = ""
    merged = left.merge(right, on=joins, how="inner")
    merged[RATIO_COLUMN] = merged["median_s"].astype(float) / merged["reference_s"].astype(float)
    merged[VERDICT_COLUMN] = [_verdict(row) for row in merged.to_dict(orient="records")]
    merged["point"] = [_point(row, keys) for row in merged.to_dict(orient="records")]
    merged = merged.assign(**{name: None for name in params if name not in merged})
    return merged[columns].reset_index(drop=True)


def _verdict(row: Mapping) -> str:
    """faster / slower / same / unsure here against the reference. A reference without raw
    times (the post's printed means) counts as exact: only this side's interval is used."""

    def ends(low, high, median) -> tuple[float, float]:
        known = pd.notna(low) and pd.notna(high)
        return (float(low), float(high)) if known else (float(median), float(median))

    ref_low, ref_high = ends(row["_ref_low_s"], row["_ref_high_s"], row["reference_s"])
    low, high = ends(row["median_low_s"], row["median_high_s"], row["median_s"])
    if low == high and ref_low == ref_high:
        return "unsure"  # two bare figures: no interval to judge by
    return stats.verdict(*stats.ratio_interval(ref_low, ref_high, low, high))


def _measured(frame: pd.DataFrame) -> pd.DataFrame:
    if frame.empty:
        return frame
    return frame[(frame["status"] == "ok") & (pd.to_numeric(frame["median_s"]) > 0)]


def ratio_summary(table: pd.DataFrame, by: Sequence[str] = ()) -> pd.DataFrame:
    """One line per (``by``..., machine, backend, reference backend): the median ratio
    over its points."""
    keys = [*by, "machine", "side", "backend", "reference", "reference backend"]
    aggregates = {"points": "size", "median ratio": "median", "lowest": "min", "highest": "max"}
    columns = [*keys, *aggregates, "reading"]
    if table.empty:
        return pd.DataFrame(columns=columns)
    ratios = table.assign(_r=table[RATIO_COLUMN].astype(float)).groupby(keys, sort=False)["_r"]
    summary = ratios.agg(**aggregates).reset_index()
    summary["reading"] = [_reading(row) for row in summary.to_dict(orient="records")]
    if VERDICT_COLUMN in table:
        counts = table.groupby(keys, sort=False)[VERDICT_COLUMN].agg(_counted).reset_index()
        summary = summary.merge(counts, on=keys, how="left")
        columns = [*columns, VERDICT_COLUMN]
    return summary[columns]


def _counted(verdicts: pd.Series) -> str:
    """'12 faster, 3 same, 1 unsure': a group's verdicts, most common first."""
    return ", ".join(f"{count} {verdict}" for verdict, count in verdicts.value_counts().items())


def _reading(row: Mapping) -> str:
    ratio = float(row["median ratio"])
    who = f"{row['backend']} on {row['machine']}" if row["machine"] else str(row["backend"])
    theirs = f"{row['reference backend']} on {row['reference']}"
    if 0.95 <= ratio <= 1.05:
        return f"{who} takes about the time of {theirs}"
    faster = f" ({units.ratio(1 / ratio)} as fast)" if ratio < 1 else ""
    return f"{who} takes {units.ratio(ratio)} the time of {theirs}{faster}"


def readable(table: pd.DataFrame, drop: Sequence[str] = ()) -> pd.DataFrame:
    """Times as '1.2 ms' and ratios as '0.53×', for screens and the report."""
    out = table.drop(columns=[c for c in drop if c in table])
    ratios = dict.fromkeys([RATIO_COLUMN, "median ratio", "lowest", "highest"], units.ratio)
    shown = {"median_s": units.seconds, "reference_s": units.seconds} | ratios
    out = out.assign(**{name: out[name].map(how) for name, how in shown.items() if name in out})
    return out.rename(columns={"median_s": "median here", "reference_s": "reference median"})


@dataclass
class PostView:
    """One of the post's charts as measured here: rows, the post's rows, the ratios."""

    part: SuitePart
    mine: pd.DataFrame
    combined: pd.DataFrame
    ratios: pd.DataFrame

    def chart(self) -> alt.TopLevelMixin:
        return part_chart(self.part, self.combined)

    @property
    def reached(self) -> int:
        """Grid points drawn on each backend, each once: a file may hold a point twice
        (the post itself timed one convolution in two notebooks)."""
        keys = [*workloads.param_names(self.part.workload), "backend", "dtype"]
        return len(self.mine.drop_duplicates(subset=[k for k in keys if k in self.mine]))

    def ratio_rows(self) -> pd.DataFrame:
        """The ratios as read on screen: the point in words, formatted times."""
        params = workloads.param_names(self.part.workload)
        return readable(self.ratios, drop=[*params, "chart", "machine", "dtype"])


def post_views(
    parts: Sequence[SuitePart], frames: Sequence[pd.DataFrame], machine: str, against: str
) -> list[PostView]:
    """Each part's rows from here with the post's figures, and ratios against ``against``."""
    views = []
    for part, frame in zip(parts, frames, strict=True):
        # Rows with no machine yet are this machine's fresh measurements.
        known = frame["machine"].astype("object") if "machine" in frame else None
        mine = frame.assign(machine=machine if known is None else known.fillna(machine))
        post = post_reference(part)
        params = list(workloads.param_names(part.workload))
        ratios = ratio_table(mine, post[post["machine"] == against], params)
        ratios.insert(0, "chart", part.chart)
        views.append(PostView(part, mine, combine(mine, post), ratios))
    return views


def post_method(
    run_settings: Mapping, backends: Sequence[str], budget_s: float, charts_count: int
) -> list[tuple[str, str]]:
    """How the numbers here and in the post were made, in words, for the report."""
    point_s = run_settings.get("budget_s", "?")
    precision = run_settings.get("target_precision")
    precise = f"to {precision:.0%}" if isinstance(precision, (int, float)) else "precisely"
    return [
        ("Grid", f"The post's grid: {charts_count} charts (core.measure.suites.POST), float32."),
        (
            "Timing here",
            f"{', '.join(backends)}. Per point and backend: the first call timed apart, "
            f"at least {run_settings.get('min_warmup', 2)} warm-up calls, then repeats until "
            f"the median is known {precise} or {point_s} s is spent; the median is reported. "
            "Accelerators are synchronized before the clock is read.",
        ),
        (
            "The post's timing",
            "perf_counter around each of 10 iterations (training: 20) after one warm-up "
            "call, the accelerator synchronized; only the mean was printed. The CPU thread "
            "count was never set (2 on the A18 Pro's performance cores).",
        ),
        (
            "Ratios",
            "Time here over time in the post, per matching point, CPU with CPU and "
            "accelerator with accelerator; a summary line is the median over a chart's "
            "points. Below 1×: less time here.",
        ),
        ("Budget", f"{budget_s:g} s for the whole grid; points skipped for time are listed."),
    ]


def post_summary(views: Sequence[PostView]) -> pd.DataFrame:
    """Per chart and backend pair, the median ratio: the report's first table."""
    summary = ratio_summary(combine(*(v.ratios for v in views)), by=["chart"])
    return readable(summary, drop=["machine"])


def measured_rows(views: Sequence[PostView]) -> pd.DataFrame:
    """Every row measured here for the post's grid, one table (for the CSV)."""
    return combine(*(v.mine for v in views if len(v.mine)))


def post_report(
    views: Sequence[PostView],
    machine: Mapping,
    method: Sequence[tuple[str, str]],
    skipped: Sequence[Mapping] = (),
    state: Mapping | None = None,
) -> str:
    """The whole reproduction as one offline HTML file; ``state`` is the machine's state
    when it was measured (``core.measure.machine_state``), shown on the machine card."""
    sections = []
    for view in views:
        reached = view.mine["status"].eq("ok").sum() if len(view.mine) else 0
        note = f"{reached} points measured here; ratios against the post where points match."
        chart = view.chart()
        if isinstance(chart, alt.LayerChart):  # a page stretches it; a file needs a size
            chart = chart.properties(width=560, height=340)
        sections.append(ReportSection(view.part.chart, chart, view.ratio_rows(), note))
    appendix = [("Skipped for time", pd.DataFrame(list(skipped)))] if skipped else []
    rows = measured_rows(views)
    if len(rows):
        params = [p for p in workloads.param_names() if p in rows]
        point = [_point(row, params) for row in rows.to_dict(orient="records")]
        rows = rows.fillna({"flags": "", "message": ""})
        rows = rows.assign(point=point, median=rows["median_s"].map(units.seconds))
        columns = ["workload", "point", "backend", "median", "n", "status", "flags", "message"]
        appendix.append(("Every row measured here", rows[columns]))
    title, summary = "Reproducing “" + reference.POST_TITLE + "”", post_summary(views)
    state = dict(state) if state else None
    made = Report(title, dict(machine), list(method), summary, sections, appendix, state)
    return html_report(made)


def filter_runs(
    runs: pd.DataFrame,
    workload: str | None = None,
    machine: str | None = None,
    dates: Sequence[date] = (),
) -> pd.DataFrame:
    """The history narrowed by workload, machine and an inclusive range of UTC dates."""
    keep = pd.Series(True, index=runs.index)
    if workload:
        keep &= runs["workload"].astype(str).str.split(",").map(lambda names: workload in names)
    if machine:
        keep &= runs["machine"] == machine
    days = runs["created_at"].dt.date if len(runs) else runs["created_at"]
    if len(dates) >= 1 and dates[0] is not None:
        keep &= days >= dates[0]
    if len(dates) >= 2 and dates[1] is not None:
        keep &= days <= dates[1]
    return runs[keep]


def describe_run(run: Mapping) -> str:
    """'2026-11-27 14:03 · matmul · AMD EPYC · 12 rows · Matmul (app)', and what held the
    machine back when it ran ('· on battery (40%), Low Power Mode')."""
    created = pd.Timestamp(run["created_at"]).strftime("%Y-%m-%d %H:%M")
    label = run.get("label") or run.get("source") or ""
    said = f"{created} · {run['workload']} · {run['machine']} · {run['rows']} rows · {label}"
    settings = run.get("settings")
    held = machine_state.marks(
        settings.get("machine_state") if isinstance(settings, dict) else None
    )
    return f"{said} · {', '.join(held)}" if held else said


@dataclass
class ReportSection:
    """One chart of the report with the table and note that explain it."""

    title: str
    chart: alt.TopLevelMixin | None = None
    table: pd.DataFrame | None = None
    note: str = ""


@dataclass
class Report:
    title: str
    machine: dict
    method: list[tuple[str, str]] = field(default_factory=list)
    summary: pd.DataFrame | None = None
    sections: list[ReportSection] = field(default_factory=list)
    appendix: list[tuple[str, pd.DataFrame]] = field(default_factory=list)
    state: dict | None = None  # power, heat, versions when measured


_MACHINE_FIELDS = {
    "machine": "Machine",
    "cpu_model": "CPU",
    "cpu_cores_physical": "Physical cores",
    "cpu_cores_logical": "Logical cores",
    "ram_bytes": "Memory",
    "accelerator": "Accelerator",
    "accelerator_memory_bytes": "Accelerator memory",
    "os": "OS",
    "python": "Python",
    "torch": "PyTorch",
    "torch_threads": "PyTorch CPU threads",
}


def machine_card(machine: Mapping, state: Mapping | None = None) -> list[tuple[str, str]]:
    """The fingerprint as (what, value) lines, known fields first, in words and GiB; then
    the machine's state (power, heat...) where one was recorded."""
    lines = _fingerprint_lines(machine)
    shown = {what for what, _ in lines}
    more = machine_state.describe(dict(state)) if state else []
    return lines + [(what, value) for what, value in more if what not in shown]


def _fingerprint_lines(machine: Mapping) -> list[tuple[str, str]]:
    card = {**dict.fromkeys(_MACHINE_FIELDS), **machine}
    card["accelerator"] = card["accelerator"] or "none found: the CPU side only"
    sizes = [k for k in _MACHINE_FIELDS if k.endswith("_bytes")]
    return [
        (_MACHINE_FIELDS.get(k, k), units.bytes_(v) if k in sizes else str(v))
        for k, v in card.items()
        if v is not None and v != ""
    ]


def chart_svg(chart: alt.TopLevelMixin | dict) -> str:
    """The chart (or its Vega-Lite spec) drawn as SVG text, offline; raises if vl-convert
    is missing or cannot draw it."""
    import vl_convert

    spec = chart if isinstance(chart, dict) else chart.to_dict(validate=False)
    version = alt.SCHEMA_VERSION.lstrip("v").rsplit(".", 1)[0]
    kwargs = {"vl_version": version} if version in vl_convert.get_vegalite_versions() else {}
    # No base URLs allowed: nothing may be fetched while drawing.
    return vl_convert.vegalite_to_svg(spec, allowed_base_urls=[], **kwargs)


_ID = re.compile(r'\bid="([^"]+)"')
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")


def _scoped(svg: str, prefix: str) -> str:
    """Give an SVG's ids a prefix: inline SVGs share one id space, and vega numbers its
    clip paths from 1 in every chart, so the second chart would clip with the first's."""
    for name in sorted(set(_ID.findall(svg)), key=len, reverse=True):
        new = f"{prefix}-{name}"
        svg = svg.replace(f'id="{name}"', f'id="{new}"')
        svg = svg.replace(f"url(#{name})", f"url(#{new})")
        svg = svg.replace(f'href="#{name}"', f'href="#{new}"')
    return _XML_DECLARATION.sub("", svg, count=1)


def _spec_json(spec: dict) -> str:
    spec = {k: v for k, v in spec.items() if k != "$schema"}  # a URL nothing needs to load
    text = json.dumps(spec, default=str, separators=(",", ":"))
    # No "<" at all: text in a <script> element could otherwise close or re-open it.
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _table_html(frame: pd.DataFrame) -> str:
    if frame is None or frame.empty:
        return "<p class='muted'>Nothing to show.</p>"
    shown = frame.astype(object).where(frame.notna(), "")
    return shown.to_html(index=False, escape=True, border=0, classes="table")


_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:1200px;
padding:0 1rem;color:#222}
h1{margin-bottom:.2rem}.muted{color:#666}.card{border:1px solid #ddd;border-radius:8px;
padding:.5rem 1rem;display:inline-block}.card th{text-align:left;padding-right:1rem;color:#555}
table.table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0 1rem}
table.table th,table.table td{border-bottom:1px solid #e5e5e5;padding:.2rem .6rem;text-align:left}
figure{margin:1rem 0;overflow-x:auto}figure svg{max-width:100%;height:auto}
section{border-top:1px solid #eee;margin-top:1.5rem}
"""


def html_report(report: Report) -> str:
    """A single HTML file: machine card, method, every chart as inline SVG, the tables. No
    script or style sources; each chart's Vega-Lite spec rides along as inert JSON, all there
    is (with a note) where the SVG could not be drawn."""
    esc = html.escape
    made = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(report.title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{esc(report.title)}</h1><p class='muted'>Made {made} by Speedup Explorer.</p>",
        "<h2>Machine</h2><table class='card' id='machine-card'>",
        *(
            f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>"
            for k, v in machine_card(report.machine, report.state)
        ),
        "</table>",
    ]
    if report.method:
        parts.append("<h2>Method</h2><dl id='method'>")
        parts += [f"<dt><b>{esc(k)}</b></dt><dd>{esc(v)}</dd>" for k, v in report.method]
        parts.append("</dl>")
    if report.summary is not None:
        parts += ["<h2>Summary</h2>", _table_html(report.summary)]
    for index, section in enumerate(report.sections, start=1):
        parts.append(f"<section id='chart-{index}'><h2>{esc(section.title)}</h2>")
        if section.chart is not None:
            parts.append(_figure(section.chart, f"c{index}"))
        if section.note:
            parts.append(f"<p class='muted'>{esc(section.note)}</p>")
        if section.table is not None:
            parts.append(_table_html(section.table))
        parts.append("</section>")
    for title, table in report.appendix:
        parts += [f"<section><h2>{esc(title)}</h2>", _table_html(table), "</section>"]
    parts.append("</body></html>")
    return "\n".join(parts)


def _figure(chart: alt.TopLevelMixin, prefix: str) -> str:
    spec = chart.to_dict(validate=False)
    try:
        drawn = _scoped(chart_svg(spec), prefix)
    except Exception as error:  # a missing vl-convert or a bad spec costs one picture only
        why = html.escape(units.one_line(error, typed=True, limit=200))
        drawn = (
            f"<p class='muted'>This chart could not be drawn here ({why}); "
            "its Vega-Lite spec is embedded below.</p>"
        )
    embedded = f'<script type="application/json" class="vega-lite-spec">{_spec_json(spec)}</script>'
    return f"<figure class='chart'>{drawn}{embedded}</figure>"
