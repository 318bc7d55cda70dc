"""What every page starts with and draws through, so that pages stay one screen long."""

from __future__ import annotations

import contextlib
import contextvars
import logging
import threading
from collections.abc import Callable, Iterator, Sequence

import altair as alt
import pandas as pd
import streamlit as st

from core import units
from core.keep import results
from core.measure import ceilings, locks, sweep, workloads
from core.measure.sweep import Backend
from core.show import charts, trust
from ui import query, sidebar
from ui.sidebar import Settings

_LOG = logging.getLogger(__name__)
# The builders in core.show are tested against the Vega-Lite schema (tests/show), and
# Streamlit validates each whole spec again; validating every object as it is made as
# well cost a quarter of a page's drawing time, which a slider move waits for.
alt.utils.schemapi.disable_debug_mode()
# Stage mode's chart fonts, in px: read from the back of a room. They are the chart's own
# config, which Streamlit's theme keeps over its own (colours still follow the theme).
STAGE_FONTS = {
    "axis": {"labelFontSize": 18, "titleFontSize": 20},
    "legend": {"labelFontSize": 18, "titleFontSize": 18, "symbolSize": 260},
    "header": {"labelFontSize": 18, "titleFontSize": 20},
    "title": {"fontSize": 26},
}


def on_stage() -> bool:
    """Whether the sidebar's stage switch is on."""
    return sidebar.current().stage


def _staged(made: alt.TopLevelMixin) -> alt.TopLevelMixin:
    """The chart with stage fonts over whatever config it has (a legend placed below,
    say): Altair's configure_* would replace that config, not add to it."""
    config = made.config.to_dict() if isinstance(made.config, alt.SchemaBase) else {}
    for part, sizes in STAGE_FONTS.items():
        config[part] = {**config.get(part, {}), **sizes}
    made = made.copy(deep=False)
    made.config = alt.Config.from_dict(config)
    return made


def header(workload_name: str, settings: Settings, title: str | None = None) -> None:
    """Title, the one question the page answers, and what is being compared where."""
    workload = workloads.get(workload_name)
    st.title(title or workload.title)
    st.markdown(f"**{workload.question}**")
    one_backend(settings)
    if settings.stage:  # the question is enough; the sidebar says what is compared
        return
    if settings.replay is not None:
        # A replay shows what was measured there, not what this sidebar would measure.
        rows = settings.replay.frame
        rows = rows[rows["workload"] == workload_name] if "workload" in rows else rows
        labels = list(dict.fromkeys(rows["backend"].dropna())) if "backend" in rows else []
        dtypes = ", ".join(dict.fromkeys(rows["dtype"].dropna())) if "dtype" in rows else ""
        what = ", ".join(part for part in (" vs ".join(labels), dtypes) if part)
        if what:  # a run without this page's rows gets its note under the title instead
            st.caption(f"Replayed from {settings.machine}: {what}.")
        return
    st.caption(
        f"On {settings.machine}: {' vs '.join(settings.labels)}, {settings.dtype}, "
        f"{settings.point_budget_s:g} s per point."
    )


def one_backend(settings: Settings) -> None:
    """Say in one line when only one backend is chosen to measure: the charts that compare
    backends are left out (``chart``) and the time chart is drawn alone."""
    if settings.replay is None and len(set(settings.labels)) == 1:
        st.info(
            f"Only one backend is chosen ({settings.labels[0]}): nothing to compare it with. "
            "Choose more CPU threads in the sidebar, or name more backends under Other backends."
        )


def _compares_one(build: Callable, frame: pd.DataFrame) -> bool:
    """Whether ``build`` compares backends and only one is chosen (or replayed): its chart
    would be empty."""
    if build not in (charts.speedup_heatmap, charts.speedup_vs_x):
        return False
    settings = sidebar.current()
    chosen = settings.labels if settings.replay is None else frame["backend"].dropna().unique()
    return len(set(chosen)) < 2


# Run once after the next chart is sent (set by the runner while it measures): on a small
# CPU the browser drawing that chart and the page building its others compete, and the
# first new point after a slider move waited for the page's last chart to be built.
_after_chart: contextvars.ContextVar[Callable[[], object] | None] = contextvars.ContextVar(
    "after_chart", default=None
)


@contextlib.contextmanager
def after_first_chart(then: Callable[[], object] | None) -> Iterator[None]:
    """Within this block, ``then()`` runs once, after the first chart is sent."""
    token = _after_chart.set(then)
    try:
        yield
    finally:
        _after_chart.reset(token)


def chart(build: Callable[..., alt.TopLevelMixin], *args, **kwargs) -> None:
    """Build and show one chart; a chart that cannot be drawn says so and the page goes on.
    A chart that compares backends is left out when there is one backend to compare."""
    if args and _compares_one(build, args[0]):
        return
    try:
        made = build(*args, **kwargs)
    except Exception as error:  # one broken chart must not take the page down
        name = getattr(build, "__name__", "chart")
        _LOG.exception("chart %s failed", name)
        st.warning(f"The {name.replace('_', ' ')} chart could not be drawn: "
                   f"{units.one_line(error, typed=True)}")  # fmt: skip
        return
    wide = not isinstance(made, (alt.FacetChart, alt.HConcatChart, alt.ConcatChart))
    made = charts.same_colours(made, copy=False)  # panels put together elsewhere, too
    spec = _spec(_staged(made) if on_stage() else made)
    st.vega_lite_chart(spec, width="stretch" if wide else "content")
    if (then := _after_chart.get()) is not None:
        _after_chart.set(None)
        then()


# Altair's theme and data transformer are settings of the whole process: one chart is
# turned into a spec at a time.
_SPEC_LOCK = threading.Lock()


def _spec(made: alt.TopLevelMixin) -> dict:
    """The chart's Vega-Lite spec, as ``st.altair_chart`` would send it but not validated
    against the schema again: that took a third of a page's drawing (0.35 of 1.2 s for
    four charts), which a slider move waits for. tests/show validate every builder's
    spec. Each table stays a DataFrame under a name in ``datasets``, which Streamlit
    sends to the browser as Arrow, as it does for Altair charts."""
    datasets: dict[str, pd.DataFrame] = {}
    names: dict[int, str] = {}  # marks that share a table send it once

    def by_name(data):
        if (name := names.get(id(data))) is None:
            names[id(data)] = name = f"data-{len(datasets)}"
            datasets[name] = data
        return {"name": name}

    with _SPEC_LOCK:  # the transformer is registered by name: one chart at a time
        alt.data_transformers.register("speedup_by_name", by_name)
        with alt.theme.enable("none"), alt.data_transformers.enable("speedup_by_name"):
            spec = made.to_dict(validate=False)
    return {**spec, "datasets": {**spec.get("datasets", {}), **datasets}}


def note(text: str) -> None:
    """An explanatory caption under a chart; left out on stage, where the chart speaks."""
    if not on_stage():
        st.caption(text)


def folded(label: str, heading: bool = False):
    """Where a table or a note goes: in place (under ``label`` as a heading, with
    ``heading``), or on stage in a closed expander named ``label``."""
    if on_stage():
        return st.expander(label, expanded=False)
    place = st.container()
    if heading:
        place.subheader(label)
    return place


def sizes_that_fit(
    workload_name: str, sizes: Sequence[int], others: dict[str, Sequence], settings: Settings
) -> list[int]:
    """The sizes whose every combination with ``others`` fits the smallest memory budget."""
    budget = min((b for b in settings.budgets().values() if b is not None), default=None)
    return sweep.sizes_that_fit(workloads.get(workload_name), sizes, others, budget, settings.dtype)


def sentences(frame: pd.DataFrame) -> None:
    """Crossover sentences from ``core.show.crossover`` as a short list."""
    if frame.empty:
        return
    st.markdown("\n".join(f"- {text}" for text in frame["sentence"]))


def measure_ceilings(backends: Sequence[Backend]) -> None:
    """Measure every backend's ceilings again and cache them; one failure does not stop the rest."""
    for backend in dict.fromkeys(backends):
        label, device = backend.label, backend.device
        threads = backend.resolved_threads if device == "cpu" else None
        try:
            with (
                st.spinner(f"Measuring the ceilings of {label} (a few seconds)…"),
                locks.machine_lock(on_wait=st.info),
            ):
                roofs = ceilings.cached(device, threads, refresh=True)
            if roofs.busy:
                st.warning(
                    f"{label}: other programs kept the machine busy in all "
                    f"{ceilings.QUIET_TRIES} tries, so these ceilings were not kept (busy "
                    "roofs are too low and would flag honest rows). Close them and measure again."
                )
        except Exception as error:  # a device that cannot be measured keeps its old values
            _LOG.exception("ceilings of %s failed", label)
            st.warning(f"Could not measure {label}: {units.one_line(error, typed=True)}")


def checks(frame: pd.DataFrame, settings: Settings, backends=()) -> pd.DataFrame:
    """Under an explorer page's charts, and on the Trust page: the rows judged against the
    cached ceilings, drawn under the roofs of their backends (and ``backends``'s), a caption
    on where to measure missing roofs, and what the outlined flags mean; on stage, folded
    away. Returns the rows."""
    with folded("Roofline and checks"):
        return _checks(frame, settings, backends)


def _checks(frame: pd.DataFrame, settings: Settings, backends) -> pd.DataFrame:
    try:  # rows measured before the ceilings were judged against nothing: judge them now
        frame = ceilings.apply_cached(frame)
    except Exception:  # judging is a bonus; the rows as measured still draw
        _LOG.exception("judging %d rows against the ceilings failed", len(frame))
    found = trust.cached_ceilings(frame, backends)
    dtypes = list(dict.fromkeys(frame["dtype"].dropna().astype(str))) if len(frame) else []
    specs = trust.roof_specs(found, dtypes or [settings.dtype])
    if specs:
        chart(charts.roofline, frame, specs, machine=settings.machine)
        if len(dtypes) > 1:
            st.caption(f"Each roof is the device's highest peak among {', '.join(dtypes)}.")
    if missing := [label for label, roofs in found.items() if roofs is None]:
        st.caption(
            f"No ceilings measured yet for {', '.join(missing)}: press *Measure ceilings* on "
            "the **Trust the numbers** page"
            + (", and the roofline appears here." if not specs else " to add their roofs.")
        )
    flags = frame["flags"][frame["status"] == "ok"] if len(frame) and "flags" in frame else []
    present = {f.strip() for text in flags if pd.notna(text) for f in str(text).split(",")}
    if flagged := [flag for flag in charts.FLAGS if flag in present]:
        meanings = "; ".join(f"*{flag}*: {charts.FLAG_MEANINGS[flag]}" for flag in flagged)
        st.caption(
            f"Outlined points are flagged ({meanings}). The outline shows the most serious "
            "flag; hover a point for all of them."
        )
    return frame


def fidelity() -> None:
    """The committed GPU run that checks this engine's times against two independent timers."""
    found = trust.fidelity()
    if found is None:
        st.caption(
            "No fidelity run in this checkout yet: `python bench/fidelity.py --out bench/results` "
            "makes one on an NVIDIA GPU."
        )
        return
    stored, table, ceilings_line = found
    st.markdown(
        f"Measured on **{stored.get('card', '?')}** (host CPU {stored.get('cpu', '?')}): the "
        "engine's median against `triton.testing.do_bench` (median, L2 flushed between calls) "
        "and `torch.utils.benchmark.Timer`. A ratio near 1 means the timers agree; "
        "BENCHMARKS.md explains each column and the points that differ."
    )
    number = st.column_config.NumberColumn(format="%.4g")
    numbers = {c: number for c in table.columns if c not in ("point", "repeats")}
    st.dataframe(table, hide_index=True, column_config=numbers)
    if ceilings_line:
        st.caption(ceilings_line)


# The model pages offer the same stops, so a link moves between them unchanged.
BATCHES = [1, 2, 4, 8, 16, 32, 64, 128]
IMAGE_SIZES = [32, 64, 96, 128, 160, 192, 224, 256]


def image_size_picker(q, where) -> int:
    """The model pages' image size, shared so training and inference offer the same stops."""
    return q.choice(
        "Image size (px)", "image_size", IMAGE_SIZES, 64, widget="select_slider", where=where,
        help="224 is what ImageNet models are trained at; smaller answers faster.",
    )  # fmt: skip


def variant_picker(q, settings: Settings, workload_name: str, where=st) -> tuple[list, str | None]:
    """The variants to time side by side, and the backend and variant that speedups are read
    against (None: the CPU, eagerly). Any variant but eager names itself in every label."""
    choices = workloads.get(workload_name).param("variant").choices
    left, right = where.columns([3, 2])
    chosen = q.many(
        "Variants", "variant", choices, ["eager"], where=left,
        help="The same work done another way: compile is torch.compile, which compiles "
        "each point first (seconds to minutes); autocast runs float32 work at half width "
        "(autocast alone: the device's default, bfloat16 on the CPU, float16 elsewhere).",
    )  # fmt: skip
    if not chosen or chosen == ["eager"]:
        return chosen, None
    labels = [f"{b}{results.VARIANT_SEPARATOR}{v}" for b in settings.labels for v in chosen]
    baseline = query.choice("Speedups against", "against", labels, labels[0], where=right)
    return chosen, baseline
