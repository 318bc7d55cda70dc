"""The one call a page makes: ``run_grid(workload, grid, settings, draw, key=...)``.

Points already measured in this server process are drawn at once from a cache; only
the missing ones are measured, each drawn as it arrives. A Stop button, or any widget
change, interrupts the script at its next ``st.*`` call (Streamlit does this itself);
every finished row is already cached and saved to the store by then, so nothing is
lost. When the sidebar replays a saved run, its rows are drawn and nothing is measured.
Nothing here shows a traceback: bad input and failures become one-line messages.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pandas as pd
import streamlit as st

from core.errors import BadInput
from core.keep import files, recorder, results
from core.measure import sweep, workloads
from core.measure.suites import SuitePart
from core.measure.sweep import Backend
from core.show import report
from ui import query, sidebar
from ui.sidebar import Settings

AUTO_RUN_LIMIT_S = 3.0
# Building and sending a page's charts takes up to half a second on a small CPU, and it
# competes with the timing for that CPU: redraw at most once a second, and never spend
# more than a quarter of the time drawing.
REDRAW_EVERY_S = 1.0
REDRAW_SHARE = 0.25
# How often a long point gives Streamlit a chance to act on Stop or a widget change.
HEARTBEAT_S = 0.5
MAX_WARNINGS = 6
_CACHE_MAX_ROWS = 20_000

_LOG = logging.getLogger(__name__)
_cache: OrderedDict[tuple, dict] = OrderedDict()
_cache_lock = threading.Lock()


# ---------------------------------------------------------------- the cache


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()


def measured_frame(workload_name: str) -> pd.DataFrame:
    """Every row of one workload measured in this server process, as the tidy table.

    The Trust page puts all of them on one roofline, whichever page measured them.
    """
    workload = workloads.get(workload_name)
    with _cache_lock:
        rows = [dict(row) for row in _cache.values() if row.get("workload") == workload.name]
    return results.to_frame(rows, workload.param_names)


def _cache_get(key: tuple) -> dict | None:
    with _cache_lock:
        row = _cache.get(key)
        if row is not None:
            _cache.move_to_end(key)
        return row


def _cache_put(key: tuple, row: dict) -> None:
    with _cache_lock:
        _cache[key] = row
        _cache.move_to_end(key)
        while len(_cache) > _CACHE_MAX_ROWS:
            _cache.popitem(last=False)


@dataclass(frozen=True)
class _Task:
    params: dict
    backend: Backend
    dtype: str
    key: tuple


def _task_key(
    settings: Settings, workload: str, params: dict, backend: Backend, dtype: str
) -> tuple:
    # The CPU is never flushed nor pipelined, so those switches must not re-measure it.
    on_gpu = not backend.label.startswith("cpu")
    return (
        settings.machine,
        workload,
        tuple(sorted(params.items())),
        backend.label,
        dtype,
        settings.point_budget_s,
        settings.cold_cache and on_gpu,
        settings.pipelined and on_gpu,
        settings.memory_budget_bytes,
    )


# ---------------------------------------------------------------- saving to the store


@functools.cache
def machine_fingerprint() -> dict:
    """This machine as runs record it; asked once, like the sidebar's machine name."""
    return recorder.machine_fingerprint()


class _Saver:
    """Writes each finished row to the store as it arrives; one saver is one run.

    A store that fails costs one warning, in ``note`` if given; measuring goes on and
    the rows stay in this server's cache.
    """

    def __init__(self, settings: Settings, label: str, dtypes: Sequence[str] | None = None):
        self.label = label
        self.run_settings = {
            **settings.sweep_settings().as_dict(),
            "dtypes": list(dtypes or [settings.dtype]),
            "backends": settings.labels,
            "source": "app",
        }
        self.record: Callable[[dict], None] | None = None
        self.failed = False
        self.note = None

    def __call__(self, row: dict) -> None:
        if self.failed:
            return
        try:
            if self.record is None:
                self.record = recorder.recorder(
                    sidebar.open_store(), machine_fingerprint(), self.run_settings, self.label
                )
            self.record(row)
        except Exception as error:  # the store is a convenience; measuring must go on
            self.failed = True
            _LOG.warning("saving to the store failed: %s", error)
            (self.note or st).warning(
                f"Results are not being saved to the store: {_one_line(error)}. "
                "Measuring goes on; this page keeps what it measures until the server stops."
            )


# ---------------------------------------------------------------- the public call


def run_grid(
    workload_name: str,
    grid: dict[str, list],
    settings: Settings,
    draw: Callable[[pd.DataFrame], None],
    *,
    key: str,
    dtypes: Sequence[str] | None = None,
    table: bool = True,
    label: str = "",
) -> pd.DataFrame:
    """Draw ``grid`` on every backend, measuring what is not cached; returns the tidy frame.

    ``draw(frame)`` puts the page's charts on screen; it is called again as rows arrive,
    each time replacing what it drew before. ``key`` names this call's widgets and must
    be unique on the page. ``dtypes`` runs the grid once per dtype (default: the
    sidebar's). The frame has a ``speedup`` column against the first CPU backend.
    What is measured is saved as one run of the store, named ``label``. When the
    sidebar replays a run, its rows for this workload are drawn instead.
    """
    try:
        if settings.replay is not None:
            return _replay(workload_name, grid, settings, draw, key, dtypes, table)
        return _run_grid(workload_name, grid, settings, draw, key, dtypes, table, label)
    except BadInput as error:
        st.error(str(error))
    except Exception as error:  # the page must keep working; the log keeps the traceback
        _LOG.exception("run_grid(%s) failed", workload_name)
        st.error(f"{workload_name}: could not measure: {type(error).__name__}: {_one_line(error)}")
    return results.empty_frame()


def _run_grid(workload_name, grid, settings, draw, key, dtypes, table, label) -> pd.DataFrame:
    workload = workloads.get(workload_name)
    empty = [name for name, values in grid.items() if not list(values)]
    if empty:
        st.info(f"Choose at least one value of {', '.join(empty)} to measure.")
        return results.empty_frame(workload.param_names)
    points = sweep.expand_grid(workload, grid)
    dtypes = list(dict.fromkeys(dtypes or [settings.dtype]))
    for dtype in dtypes:
        workloads.parse_dtype(dtype)
    tasks = _tasks(workload, points, settings, dtypes)
    rows = {t.key: row for t in tasks if (row := _cache_get(t.key)) is not None}
    missing = [t for t in tasks if t.key not in rows]

    controls = st.container()
    slot = st.empty()
    below = st.container()

    def redraw(measuring: bool = False) -> None:
        frame = _frame([rows[t.key] for t in tasks if t.key in rows], workload)
        if frame.empty and measuring:
            slot.empty()
            return
        with slot.container():
            if frame.empty:
                st.info("Nothing measured yet for these settings.")
                return
            try:
                draw(frame)
            except Exception as error:  # a drawing bug must not stop the measuring
                _LOG.exception("drawing %s failed", workload.name)
                st.warning(f"The charts could not be drawn: {type(error).__name__}: {error}")

    signature = _signature(tasks)
    st.session_state[f"{key}.signature"] = signature  # what a Stop pressed now would name
    with controls:
        if missing and _should_run(missing, tasks, workload, settings, key, signature):
            redraw(measuring=True)
            saver = _Saver(settings, label or f"{workload.title} (app)", dtypes)
            _measure(workload, missing, settings, rows, redraw, key, len(tasks), signature, saver)
        elif not missing and tasks:
            st.caption(f"All {len(tasks)} points from the cache: measured earlier on this server.")
    redraw()
    frame = _frame([rows[t.key] for t in tasks if t.key in rows], workload)
    with below:
        _report(frame, workload, settings, key, table)
    return frame


def _tasks(workload, points: list[dict], settings: Settings, dtypes: list[str]) -> list[_Task]:
    """Backends alternate order from point to point, as in ``run_sweep``."""
    tasks = []
    for dtype in dtypes:
        for index, params in enumerate(points):
            order = settings.backends if index % 2 == 0 else tuple(reversed(settings.backends))
            for backend in order:
                task_key = _task_key(settings, workload.name, params, backend, dtype)
                tasks.append(_Task(params, backend, dtype, task_key))
    return tasks


def _frame(rows: list[dict], workload) -> pd.DataFrame:
    return results.add_speedup(results.to_frame(rows, workload.param_names))


# ---------------------------------------------------------------- deciding to run


def _estimate_s(workload, task: _Task, settings: Settings) -> float:
    return sweep.estimate_point_seconds(
        workload, task.params, task.backend, settings.sweep_settings(task.dtype)
    )


def _signature(tasks: list[_Task]) -> str:
    digest = hashlib.sha1(repr([t.key for t in tasks]).encode(), usedforsecurity=False)
    return digest.hexdigest()[:16]


def _stop(key: str, signature: str) -> None:
    st.session_state[f"{key}.stopped"] = signature


def _should_run(missing, tasks, workload, settings: Settings, key: str, signature: str) -> bool:
    # Model costs come from tracing the model on the meta device: a second or two, once.
    with st.spinner("Estimating what these points cost…"):
        total_s = sum(_estimate_s(workload, t, settings) for t in missing)
    stopped = st.session_state.get(f"{key}.stopped") == signature
    cost = f"{len(missing)} of {len(tasks)} points to measure: {_duration(total_s)}."
    if settings.auto_run and total_s <= AUTO_RUN_LIMIT_S and not stopped:
        return True
    if stopped:
        reason = "Stopped. Points measured so far are shown."
    elif not settings.auto_run:
        reason = "Run on every change is off."
    else:
        reason = f"Over the {AUTO_RUN_LIMIT_S:g} s limit for running on every change."
    offer = st.empty()
    with offer.container():
        left, right = st.columns([1, 5], vertical_alignment="center")
        clicked = left.button("Run", key=f"{key}.run", type="primary")
        right.caption(f"{reason} {cost}")
    if clicked:
        offer.empty()
        st.session_state.pop(f"{key}.stopped", None)
    return clicked


def _duration(seconds: float) -> str:
    if seconds < 1:
        return "under a second"
    if seconds < 90:
        return f"about {seconds:.0f} s"
    return f"about {seconds / 60:.0f} min"


# ---------------------------------------------------------------- measuring


def _measure(
    workload, missing, settings: Settings, rows, redraw, key, total, signature, saver
) -> None:
    started = time.perf_counter()
    saver.note = st.empty()  # outside the status box, which folds away when done
    backends = " and ".join(dict.fromkeys(t.backend.label for t in missing))
    status = st.status(f"Measuring {len(missing)} points on {backends}…", expanded=True)
    with status:
        bar = st.progress(0.0, text="starting…")
        waiting = st.empty()
        stop_slot = st.empty()
    stop_slot.button("Stop", key=f"{key}.stop", on_click=_stop, args=(key, signature))
    state = {"done": 0, "drawn_at": started, "draw_s": 0.0, "beat_at": started, "point": []}
    by_point: OrderedDict[tuple, list[_Task]] = OrderedDict()
    for task in missing:
        by_point.setdefault((task.dtype, tuple(task.params.items())), []).append(task)

    def on_row(row: dict, _index: int, _total: int) -> None:
        task = next(t for t in state["point"] if t.backend.label == row["backend"])
        _cache_put(task.key, row)
        saver(row)
        rows[task.key] = row
        state["done"] += 1
        waiting.empty()
        median = results.format_seconds(row.get("median_s"))
        bar.progress(
            state["done"] / len(missing),
            text=f"{state['done']}/{len(missing)} · {point_label(workload, task.params)} on "
            f"{task.backend.label}: {median if row['status'] == 'ok' else row['status']}",
        )
        wait_s = max(REDRAW_EVERY_S, state["draw_s"] * (1 - REDRAW_SHARE) / REDRAW_SHARE)
        if time.perf_counter() - state["drawn_at"] >= wait_s:
            begun = time.perf_counter()
            redraw(measuring=True)
            state["drawn_at"] = time.perf_counter()
            state["draw_s"] = state["drawn_at"] - begun

    def heartbeat() -> bool:
        # Any st.* call lets Streamlit stop this script for Stop or a widget change.
        now = time.perf_counter()
        if now - state["beat_at"] >= HEARTBEAT_S:
            state["beat_at"] = now
            bar.progress(
                state["done"] / len(missing),
                text=f"{state['done']}/{len(missing)} · measuring… {now - started:.0f} s",
            )
        return False

    run_id = sweep.new_run_id()
    for (dtype, _), point_tasks in by_point.items():
        state["point"] = point_tasks
        params = point_tasks[0].params
        _measure_one_point(workload, params, point_tasks, settings, dtype, run_id, on_row,
                           heartbeat, waiting)  # fmt: skip
    stop_slot.empty()
    waiting.empty()
    status.update(
        label=f"Measured {len(missing)} points in {time.perf_counter() - started:.1f} s "
        f"({total - len(missing)} from cache).",
        state="complete",
        expanded=False,
    )


# ---------------------------------------------------------------- replaying a saved run


def _grid_values(workload, grid: dict[str, list]) -> dict[str, list]:
    """The grid's values as the workload parses them (1e6 -> 1000000)."""
    values = {}
    for name, chosen in grid.items():
        param = workload.param(name)
        parsed = []
        for value in chosen:
            try:
                parsed.append(param.parse(value))
            except BadInput:
                parsed.append(value)
        if parsed:
            values[name] = parsed
    return values


def _replay(workload_name, grid, settings: Settings, draw, key, dtypes, table) -> pd.DataFrame:
    workload = workloads.get(workload_name)
    replay = settings.replay
    if replay.frame.empty:
        st.info(
            "Replay is on, but there is nothing to replay: choose a saved run or upload a "
            "results file in the sidebar. Nothing is measured."
        )
        return results.empty_frame(workload.param_names)
    frame, matched = report.select_rows(
        replay.frame,
        workload.name,
        workload.param_names,
        _grid_values(workload, grid),
        dtypes or [settings.dtype],
    )
    note = f"Replaying run {replay.run_id} from machine {replay.machine}: nothing is measured."
    if frame.empty:
        st.info(f"{note} It has no {workload.title.lower()} rows to show on this page.")
        return frame
    if not matched:
        note += (
            f" None of its points match this page's choices, so all its {len(frame)} "
            f"{workload.name} rows are shown."
        )
    st.info(note)
    frame = results.add_speedup(frame)
    try:
        draw(frame)
    except Exception as error:  # a replayed file may lack what a chart needs
        _LOG.exception("drawing replayed %s failed", workload.name)
        st.warning(f"The charts could not be drawn: {type(error).__name__}: {error}")
    _report(frame, workload, settings, key, table)
    return frame


# ---------------------------------------------------------------- a whole suite in a budget


@dataclass
class SuiteOutcome:
    """What ``run_suite`` did: rows measured now, rows already cached, points not reached."""

    measured: int = 0
    from_cache: int = 0
    skipped: list[dict] = field(default_factory=list)


@dataclass
class _PartPlan:
    part: SuitePart
    workload: object
    points: list[tuple[dict, list[_Task], float]]  # cheapest first
    cached: int


def suite_frame(part: SuitePart, settings: Settings, dtype: str) -> pd.DataFrame:
    """A part's rows measured so far on this server (or, when replaying, the replayed run's)."""
    workload = workloads.get(part.workload)
    if settings.replay is not None:
        grid = _grid_values(workload, part.grid)
        frame, _ = report.select_rows(
            settings.replay.frame, workload.name, workload.param_names, grid, [dtype], False
        )
        return results.add_speedup(frame)
    tasks = _tasks(workload, sweep.expand_grid(workload, part.grid), settings, [dtype])
    return _frame([row for t in tasks if (row := _cache_get(t.key)) is not None], workload)


def _plan(parts: Sequence[SuitePart], settings: Settings, dtype: str) -> list[_PartPlan]:
    plans = []
    for part in parts:
        workload = workloads.get(part.workload)
        tasks = _tasks(workload, sweep.expand_grid(workload, part.grid), settings, [dtype])
        missing = [t for t in tasks if _cache_get(t.key) is None]
        by_point: OrderedDict[tuple, list[_Task]] = OrderedDict()
        for task in missing:
            by_point.setdefault(tuple(task.params.items()), []).append(task)
        points = [
            (group[0].params, group, sum(_estimate_s(workload, t, settings)
                                         for t in group))
            for group in by_point.values()
        ]  # fmt: skip
        points.sort(key=lambda point: point[2])
        plans.append(_PartPlan(part, workload, points, len(tasks) - len(missing)))
    return plans


def _stop_suite(key: str) -> None:
    st.session_state[f"{key}.stopped"] = True


def run_suite(
    parts: Sequence[SuitePart],
    settings: Settings,
    *,
    budget_s: float,
    key: str,
    label: str,
    dtype: str = report.POST_DTYPE,
) -> SuiteOutcome:
    """Measure every part's grid within ``budget_s`` seconds; one stored run per part.

    Each part gets an even share of the time left when it starts, so a slow part cannot
    starve the ones after it; within a part the cheapest points go first. A point whose
    estimate does not fit its share is skipped for time (and listed); the first point of
    a part may use what is left of the whole budget. Cached points are not measured
    again, so pressing Run after a Stop goes on where it stopped.
    """
    st.session_state.pop(f"{key}.stopped", None)
    with st.spinner("Estimating what the points cost…"):
        plans = _plan(parts, settings, dtype)
    started = time.perf_counter()
    deadline = started + budget_s
    outcome = SuiteOutcome(from_cache=sum(p.cached for p in plans))
    total = sum(len(p.points) for p in plans)
    note = st.empty()
    status = st.status(f"Measuring {total} points for up to {budget_s:.0f} s…", expanded=True)
    with status:
        bar = st.progress(0.0, text="starting…")
        waiting = st.empty()
        stop_slot = st.empty()
    stop_slot.button("Stop", key=f"{key}.stop", on_click=_stop_suite, args=(key,))
    state = {"points": 0, "beat_at": started, "where": "", "point": []}

    def done() -> float:
        return min((state["points"] + len(outcome.skipped)) / max(total, 1), 1.0)

    def on_row(row: dict, _index: int, _total: int) -> None:
        task = next(t for t in state["point"] if t.backend.label == row["backend"])
        _cache_put(task.key, row)
        saver(row)
        outcome.measured += 1
        waiting.empty()
        median = results.format_seconds(row.get("median_s"))
        bar.progress(
            done(),
            text=f"{state['where']} on {row['backend']}: "
            f"{median if row['status'] == 'ok' else row['status']}",
        )

    def heartbeat() -> bool:
        now = time.perf_counter()
        if now - state["beat_at"] >= HEARTBEAT_S:
            state["beat_at"] = now
            bar.progress(done(), text=f"{state['where']} · {now - started:.0f} of {budget_s:.0f} s")
        return False

    for index, plan in enumerate(plans):
        now = time.perf_counter()
        part_deadline = now + max(deadline - now, 0.0) / (len(plans) - index)
        saver = _Saver(settings, f"{label}: {plan.part.chart}", [dtype])
        saver.note = note
        run_id = sweep.new_run_id()
        measured_here = 0
        for params, point_tasks, cost_s in plan.points:
            now = time.perf_counter()
            first_fits = measured_here == 0 and now + cost_s <= deadline
            if now + cost_s > part_deadline and not first_fits:
                outcome.skipped.append(
                    {
                        "chart": plan.part.chart,
                        "point": point_label(plan.workload, params),
                        "backends": ", ".join(t.backend.label for t in point_tasks),
                        "estimated": _duration(cost_s),
                    }
                )
                continue
            state["point"] = point_tasks
            state["where"] = (
                f"{state['points'] + 1}/{total} · {plan.part.chart} · "
                f"{point_label(plan.workload, params)}"
            )
            _measure_one_point(plan.workload, params, point_tasks, settings, dtype, run_id,
                               on_row, heartbeat, waiting)  # fmt: skip
            measured_here += 1
            state["points"] += 1
    stop_slot.empty()
    waiting.empty()
    skipped = f"; {len(outcome.skipped)} points skipped for time" if outcome.skipped else ""
    status.update(
        label=f"Measured {outcome.measured} rows in {time.perf_counter() - started:.0f} s "
        f"({outcome.from_cache} from cache){skipped}.",
        state="complete",
        expanded=False,
    )
    return outcome


# ---------------------------------------------------------------- under the charts


def point_label(workload, params: dict) -> str:
    """'train resnet18 batch=64 image_size=64': the point as a person would say it."""
    parts = [workload.name]
    for name, value in params.items():
        parts.append(str(value) if isinstance(value, str) else f"{name}={query.compact(value)}")
    return " ".join(parts)


def _report(frame: pd.DataFrame, workload, settings: Settings, key: str, table: bool) -> None:
    if frame.empty:
        return
    names = [n for n in workload.param_names if n in frame]
    for row in _bad_rows(frame):
        params = {n: _plain(row[n]) for n in names}
        st.warning(
            f"{point_label(workload, params)} on {row['backend']}: {row['status']} — "
            f"{row['message'] or 'no reason given'}"
        )
    hidden = len(_bad_rows(frame, limit=None)) - MAX_WARNINGS
    if hidden > 0:
        st.warning(f"… and {hidden} more points not measured; see the status column below.")
    if not table:
        return
    st.dataframe(
        result_table(frame, names),
        hide_index=True,
        column_config={"speedup": st.column_config.NumberColumn(format="%.3g×")},
    )
    st.caption(
        "Flags: *noisy*, the median is not known to a few percent; *suspect*, faster than "
        "this device's measured limits allow (often a missing synchronize); *mismatch*, the "
        "output differs from the CPU reference."
    )
    st.download_button(
        "Download CSV",
        # Through core.keep.files: formula-like text is neutralised and the file imports back.
        files.export_bytes(frame.assign(machine=settings.machine), "csv", {}, {}),
        file_name=f"{workload.name}-{_slug(settings.machine)}.csv",
        mime="text/csv",
        key=f"{key}.csv",
        on_click="ignore",
    )


def _bad_rows(frame: pd.DataFrame, limit: int | None = MAX_WARNINGS) -> list[dict]:
    bad = frame["status"].isin(["refused", "failed", "skipped"])
    flags = frame["flags"].fillna("").str.contains("mismatch|nonfinite")
    found = frame[bad | flags].to_dict("records")
    for row in found:
        if row["status"] == "ok":
            row["status"] = "output check failed"
    return found if limit is None else found[:limit]


def result_table(frame: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """The tidy frame as a person reads it: formatted times, one row per point and backend."""
    table = frame[[*names, "backend", "dtype"]].copy()
    table["median"] = frame["median_s"].map(results.format_seconds)
    table["IQR"] = [
        f"{results.format_seconds(lo)} – {results.format_seconds(hi)}" if _finite(lo) else "-"
        for lo, hi in zip(frame["p25_s"], frame["p75_s"], strict=True)
    ]
    table["n"] = frame["n"]
    table["first call"] = frame["first_call_s"].map(results.format_seconds)
    table["threads"] = frame["threads"]
    table["speedup"] = frame["speedup"]
    table["status"] = frame["status"]
    table["flags"] = frame["flags"].fillna("")
    table["message"] = frame["message"].fillna("")
    return table.sort_values([*names, "dtype"], kind="stable").reset_index(drop=True)


def _finite(value) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _plain(value):
    return value.item() if hasattr(value, "item") else value


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")[:40] or "machine"


def _one_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0][:300] if lines else ""


def _measure_one_point(workload, params, point_tasks, settings, dtype, run_id, on_row, beat, wait):
    """One point on the backends it still lacks; rows arrive through ``on_row``."""
    sweep.run_sweep(
        workload,
        {name: [value] for name, value in params.items()},
        backends=[t.backend for t in point_tasks],
        settings=settings.sweep_settings(dtype),
        on_row=on_row,
        should_stop=beat,
        on_wait=wait.info,
        run_id=run_id,
    )
