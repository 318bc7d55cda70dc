"""What every page starts with and draws through, so that pages stay one screen long."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Sequence

import altair as alt
import pandas as pd
import streamlit as st

from core import workloads
from ui.sidebar import Settings

_LOG = logging.getLogger(__name__)


def header(workload_name: str, settings: Settings, title: str | None = None) -> None:
    """Title, the one question the page answers, and what is being compared where."""
    workload = workloads.get(workload_name)
    st.title(title or workload.title)
    st.markdown(f"**{workload.question}**")
    st.caption(
        f"On {settings.machine}: {' vs '.join(settings.labels)}, {settings.dtype}, "
        f"{settings.point_budget_s:g} s per point."
    )


def chart(build: Callable[..., alt.TopLevelMixin], *args, **kwargs) -> None:
    """Build and show one chart; a chart that cannot be drawn says so and the page goes on."""
    try:
        made = build(*args, **kwargs)
    except Exception as error:  # one broken chart must not take the page down
        _LOG.exception("chart %s failed", getattr(build, "__name__", build))
        name = getattr(build, "__name__", "chart").replace("_", " ")
        st.warning(f"The {name} chart could not be drawn: {type(error).__name__}: {error}")
        return
    wide = not isinstance(made, (alt.FacetChart, alt.HConcatChart, alt.ConcatChart))
    st.altair_chart(made, width="stretch" if wide else "content")


def sizes_that_fit(
    workload_name: str,
    sizes: Sequence[int],
    others: dict[str, Sequence],
    settings: Settings,
    size_param: str = "size",
) -> list[int]:
    """The sizes whose every combination with ``others`` fits the smallest memory budget.

    Keeps at least the smallest size, so that a tiny budget shows a refusal rather
    than an empty page.
    """
    budget = settings.smallest_budget_bytes()
    if budget is None:
        return list(sizes)
    workload = workloads.get(workload_name)
    dtype = workloads.parse_dtype(settings.dtype)
    combos = [dict(zip(others, c, strict=True)) for c in itertools.product(*others.values())]
    fits = []
    for size in sizes:
        needs = []
        for combo in combos:
            params = workload.validate({**combo, size_param: size})
            needs.append(workload.cost(params, dtype).memory_bytes)
        if max(needs, default=0) <= budget:
            fits.append(size)
    return fits or list(sizes[:1])


def sentences(frame: pd.DataFrame) -> None:
    """Crossover sentences from ``core.crossover`` as a short list."""
    if frame.empty:
        return
    st.markdown("\n".join(f"- {text}" for text in frame["sentence"]))
