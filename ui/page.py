"""What every page starts with and draws through, so that pages stay one screen long."""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import altair as alt
import pandas as pd
import streamlit as st

from core.measure import ceilings, locks, workloads
from core.measure.ceilings import Ceilings
from core.measure.sweep import Backend
from core.show import charts
from ui import query
from ui.sidebar import Settings

_LOG = logging.getLogger(__name__)


def header(workload_name: str, settings: Settings, title: str | None = None) -> None:
    """Title, the one question the page answers, and what is being compared where."""
    workload = workloads.get(workload_name)
    st.title(title or workload.title)
    st.markdown(f"**{workload.question}**")
    if settings.replay is not None:
        # A replay shows what was measured there, not what this sidebar would measure.
        rows = settings.replay.frame
        rows = rows[rows["workload"] == workload_name] if "workload" in rows else rows
        labels = list(dict.fromkeys(rows["backend"].dropna())) if "backend" in rows else []
        dtypes = ", ".join(dict.fromkeys(rows["dtype"].dropna())) if "dtype" in rows else ""
        st.caption(f"Replayed from {settings.machine}: {' vs '.join(labels)}, {dtypes}.")
        return
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
    """Crossover sentences from ``core.show.crossover`` as a short list."""
    if frame.empty:
        return
    st.markdown("\n".join(f"- {text}" for text in frame["sentence"]))


# ---------------------------------------------------------------- trust: ceilings and flags

FIDELITY_PATH = Path(__file__).resolve().parent.parent / "bench" / "results" / "fidelity.json"
_PEAK_DTYPES = ("float32", "tf32", "float16", "bfloat16")


def with_backends(settings: Settings, backends: Sequence[Backend]) -> Settings:
    """The sidebar's settings with other backends, e.g. one CPU backend per thread count."""
    return dataclasses.replace(settings, backends=tuple(backends))


def _where(backend: Backend) -> tuple[str, str, int | None]:
    """(label, device, threads): only the CPU's ceilings depend on its thread count."""
    cpu = backend.device == "cpu"
    return backend.label, backend.device, backend.resolved_threads if cpu else None


def _frame_backends(frame: pd.DataFrame) -> list[tuple[str, str, int | None]]:
    if frame.empty or "backend" not in frame:
        return []
    seen = frame[["backend", "device", "threads"]].drop_duplicates()
    found = []
    for label, device, threads in seen.itertuples(index=False):
        cpu = str(device) == "cpu" and pd.notna(threads)
        found.append((str(label), str(device), int(threads) if cpu else None))
    return found


def cached_ceilings(
    frame: pd.DataFrame | None = None, backends: Sequence[Backend] = ()
) -> dict[str, Ceilings | None]:
    """Each backend's ceilings as measured earlier on this machine, None where never measured;
    the backends of ``frame``'s rows first, then ``backends``."""
    wanted = _frame_backends(frame if frame is not None else pd.DataFrame())
    wanted += [_where(b) for b in backends]
    found: dict[str, Ceilings | None] = {}
    for label, device, threads in wanted:
        if label not in found:
            found[label] = ceilings.cached_only(device, threads)
    return found


def measure_ceilings(backends: Sequence[Backend]) -> None:
    """Measure every backend's ceilings again and cache them; one failure does not stop the rest."""
    for backend in dict.fromkeys(backends):
        label, device, threads = _where(backend)
        try:
            with (
                st.spinner(f"Measuring the ceilings of {label} (a few seconds)…"),
                locks.device_lock(device, on_wait=st.info),
            ):
                ceilings.cached(device, threads, refresh=True)
        except Exception as error:  # a device that cannot be measured keeps its old values
            _LOG.exception("ceilings of %s failed", label)
            st.warning(f"Could not measure {label}: {type(error).__name__}: {error}")


def ceilings_table(found: dict[str, Ceilings | None]) -> pd.DataFrame:
    """One row per backend: bandwidths in GB/s and matmul peaks in TFLOP/s per dtype."""
    rows = []
    for label, roofs in found.items():
        row = {"backend": label, "measured": roofs is not None}
        if roofs is not None:
            row["memory copy GB/s"] = roofs.bandwidth_bytes_per_s / 1e9
            row["cache-sized copy GB/s"] = roofs.cache_bandwidth_bytes_per_s / 1e9
            for dtype in _PEAK_DTYPES:
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


def roofline(frame: pd.DataFrame, settings: Settings, backends: Sequence[Backend] = ()) -> None:
    """``frame``'s points under the cached roofs of their backends (and ``backends``'s); where
    no roof is known, a caption says where to measure one."""
    found = cached_ceilings(frame, backends)
    dtypes = list(dict.fromkeys(frame["dtype"].dropna().astype(str))) if len(frame) else []
    specs = roof_specs(found, dtypes or [settings.dtype])
    if specs:
        chart(charts.roofline, frame, specs, machine=settings.machine)
        if len(dtypes) > 1:
            st.caption(f"Each roof is the device's highest peak among {', '.join(dtypes)}.")
    missing = [label for label, roofs in found.items() if roofs is None]
    if missing:
        st.caption(
            f"No ceilings measured yet for {', '.join(missing)}: press *Measure ceilings* on "
            "the **Trust the numbers** page"
            + (", and the roofline appears here." if not specs else " to add their roofs.")
        )


def judged(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows measured before the ceilings were judged against nothing; judge them now."""
    try:
        return ceilings.apply_cached(frame)
    except Exception:  # judging is a bonus; the rows as measured still draw
        _LOG.exception("judging %d rows against the ceilings failed", len(frame))
        return frame


def flags_caption(frame: pd.DataFrame) -> None:
    """Say what the outlines on this page's charts mean, for the flags present."""
    if frame.empty or "flags" not in frame:
        return
    ok = frame[frame["status"] == "ok"]
    present = {f.strip() for text in ok["flags"].dropna() for f in str(text).split(",")}
    if present & set(charts.FLAGS):
        meanings = "; ".join(
            f"*{flag}*: {charts.FLAG_MEANINGS[flag]}" for flag in charts.FLAGS if flag in present
        )
        st.caption(
            f"Outlined points are flagged ({meanings}). The outline shows the most serious "
            "flag; hover a point for all of them."
        )


def checks(frame: pd.DataFrame, settings: Settings) -> None:
    """What an explorer page adds under its charts: the roofline and what the flags mean."""
    frame = judged(frame)
    roofline(frame, settings)
    flags_caption(frame)


# ---------------------------------------------------------------- trust: cold calls, fidelity


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
    part = groups.get_group(values)
    what = ", ".join(
        f"{n}={query.to_text(v)}" if n != "dtype" else str(v)
        for n, v in zip(others, values, strict=True)
    )
    return x, part, what


def fidelity() -> None:
    """The committed GPU run that checks this engine's times against two independent timers."""
    try:
        stored = json.loads(FIDELITY_PATH.read_text())
    except (OSError, ValueError):
        st.caption(
            "No fidelity run in this checkout yet: `python bench/fidelity.py --out bench/results` "
            "makes one on an NVIDIA GPU."
        )
        return
    st.markdown(
        f"Measured on **{stored.get('card', '?')}** (host CPU {stored.get('cpu', '?')}): the "
        "engine's median against `triton.testing.do_bench` (median, L2 flushed between calls) "
        "and `torch.utils.benchmark.Timer`. A ratio near 1 means the timers agree; "
        "BENCHMARKS.md explains each column and the points that differ."
    )
    table = pd.DataFrame(stored.get("rows", []))
    columns = {
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
    }
    table = table[[c for c in columns if c in table]].rename(columns=columns)
    number = st.column_config.NumberColumn(format="%.4g")
    st.dataframe(
        table,
        hide_index=True,
        column_config={c: number for c in table.columns if c not in ("point", "repeats")},
    )
    roofs = stored.get("ceilings") or {}
    if roofs.get("bandwidth_bytes_per_s"):
        peaks = roofs.get("peak_flops_per_s") or {}
        shown = ", ".join(f"{d} {peaks[d] / 1e12:.3g} TFLOP/s" for d in _PEAK_DTYPES if d in peaks)
        st.caption(
            f"Ceilings of that card: copy {roofs['bandwidth_bytes_per_s'] / 1e12:.3g} TB/s; "
            f"matmul {shown}."
        )


# The model pages offer the same stops, so a link moves between them unchanged.
BATCHES = [1, 2, 4, 8, 16, 32, 64, 128]
IMAGE_SIZES = [32, 64, 96, 128, 160, 192, 224, 256]


def image_size_picker(q: query.Binder, where) -> int:
    """The model pages' image size, shared so training and inference offer the same stops."""
    return q.choice(
        "Image size (px)", "image_size", IMAGE_SIZES, 64, widget="select_slider", where=where,
        help="224 is what ImageNet models are trained at; smaller answers faster.",
    )  # fmt: skip


def budgets_by_backend(settings: Settings) -> dict[str, int | None]:
    """Each backend's memory budget, for the memory-against-budget chart."""
    return {b.label: settings.budget_bytes(b) for b in settings.backends}
