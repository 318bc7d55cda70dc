"""The one call a page makes: ``run_grid(workload, grid, settings, draw, key=...)``.

``core.measure.sweep`` plans the grid and measures it; this module keeps only what is
Streamlit's. Points already measured in this server process are drawn at once from a
cache; only the missing ones are measured, each drawn as it arrives. A Stop button, or
any widget change, interrupts the script at its next ``st.*`` call (Streamlit does
this itself); every finished row is already cached and saved to the store by then, so
nothing is lost. When the sidebar replays a saved run, its rows are drawn instead.
Nothing here shows a traceback: bad input and failures become one-line messages.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence

import pandas as pd
import streamlit as st

from core import units
from core.errors import BadInput
from core.keep import files, recorder, results
from core.measure import devices, sweep, workloads
from core.measure.suites import SuitePart
from core.show import report, tables
from ui import sidebar
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


def _known(task: sweep.Task, settings: Settings) -> dict | None:
    """The task's row without measuring: a verdict (skipped, refused…) or a cached row."""
    if task.verdict[0]:
        return sweep.base_row(task, settings.sweep_settings(task.dtype))
    with _cache_lock:
        row = _cache.get(task.key)
        if row is not None:
            _cache.move_to_end(task.key)
        return row


def _keep(task: sweep.Task, row: dict) -> None:
    with _cache_lock:
        _cache[task.key] = row
        _cache.move_to_end(task.key)
        while len(_cache) > _CACHE_MAX_ROWS:
            _cache.popitem(last=False)


def _rows(tasks: Sequence[sweep.Task], settings: Settings) -> dict[tuple, dict]:
    return {t.key: row for t in tasks if (row := _known(t, settings)) is not None}


def _frame(rows: list[dict], workload) -> pd.DataFrame:
    return results.add_speedup(results.to_frame(rows, workload.param_names))


# ---------------------------------------------------------------- saving to the store


@functools.cache
def machine_fingerprint() -> dict:
    """This machine as runs record it; asked once, like the sidebar's machine name."""
    return devices.machine_fingerprint()


# ---------------------------------------------------------------- progress, Stop, heartbeat


def _stop(key: str, signature: str) -> None:
    st.session_state[f"{key}.stopped"] = signature


def _signature(tasks: Sequence[sweep.Task]) -> str:
    digest = hashlib.sha1(repr([t.key for t in tasks]).encode(), usedforsecurity=False)
    return digest.hexdigest()[:16]


class _Progress:
    """One measuring call on screen: the status box, progress bar, Stop button and
    heartbeat; it also keeps each finished row (cache and store) as it arrives. A store
    that fails costs one warning; measuring goes on and the rows stay in the cache."""

    def __init__(self, key, signature, total, label, settings: Settings, dtypes):
        self.note = st.empty()  # outside the status box, which folds away when done
        self.status = st.status(label, expanded=True)
        with self.status:
            self.bar = st.progress(0.0, text="starting…")
            self.waiting = st.empty()
            self.stop_slot = st.empty()
        self.stop_slot.button("Stop", key=f"{key}.stop", on_click=_stop, args=(key, signature))
        self.total, self.done = max(total, 1), 0
        self.started = self.beat_at = time.perf_counter()
        self.run_settings = {**settings.sweep_settings().as_dict(), "dtypes": list(dtypes),
                             "backends": settings.labels, "source": "app"}  # fmt: skip
        self.records: dict[str, Callable[[dict], None]] | None = {}

    def row(self, task: sweep.Task, row: dict, run_label: str) -> None:
        _keep(task, row)
        self._save(row, run_label)
        self.done += 1
        self.waiting.empty()
        shown = units.seconds(row.get("median_s")) if row["status"] == "ok" else row["status"]
        self.bar.progress(
            min(self.done / self.total, 1.0),
            text=f"{self.done}/{self.total} · {task.group + ' · ' if task.group else ''}"
            f"{task.label} on {task.backend.label}: {shown}",
        )

    def _save(self, row: dict, run_label: str) -> None:
        if self.records is None:  # the store failed earlier in this call
            return
        try:
            if run_label not in self.records:
                self.records[run_label] = recorder.recorder(
                    sidebar.open_store(), machine_fingerprint(), self.run_settings, run_label
                )
            self.records[run_label](row)
        except Exception as error:  # the store is a convenience; measuring must go on
            self.records = None
            _LOG.warning("saving to the store failed: %s", error)
            self.note.warning(
                f"Results are not being saved to the store: {units.one_line(error)}. "
                "Measuring goes on; this page keeps what it measures until the server stops."
            )

    def beat(self) -> bool:
        """Any st.* call lets Streamlit stop this script for Stop or a widget change."""
        now = time.perf_counter()
        if now - self.beat_at >= HEARTBEAT_S:
            self.beat_at = now
            self.bar.progress(
                min(self.done / self.total, 1.0),
                text=f"{self.done}/{self.total} · measuring… {now - self.started:.0f} s",
            )
        return False

    def close(self, label: str) -> None:
        self.stop_slot.empty()
        self.waiting.empty()
        self.status.update(label=label, state="complete", expanded=False)

    def elapsed_s(self) -> float:
        return time.perf_counter() - self.started


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

    ``grid`` holds parsed values. ``draw(frame)`` puts the page's charts on screen; it is
    called again as rows arrive, each time replacing what it drew before. ``key`` names
    this call's widgets and must be unique on the page. ``dtypes`` runs the grid once
    per dtype (default: the sidebar's). The frame has a ``speedup`` column against the
    first CPU backend. What is measured is saved as one run of the store, named
    ``label``. When the sidebar replays a run, its rows for this workload are drawn.
    """
    try:
        workload = workloads.get(workload_name)
        dtypes = list(dict.fromkeys(dtypes or [settings.dtype]))
        if settings.replay is not None:
            return _replay(workload, grid, settings, draw, key, dtypes, table)
        return _run_grid(workload, grid, settings, draw, key, dtypes, table, label)
    except BadInput as error:
        st.error(str(error))
    except Exception as error:  # the page must keep working; the log keeps the traceback
        _LOG.exception("run_grid(%s) failed", workload_name)
        st.error(
            f"{workload_name}: could not measure: {type(error).__name__}: {units.one_line(error)}"
        )
    return results.empty_frame()


def _run_grid(workload, grid, settings, draw, key, dtypes, table, label) -> pd.DataFrame:
    empty = [name for name, values in grid.items() if not list(values)]
    if empty:
        st.info(f"Choose at least one value of {', '.join(empty)} to measure.")
        return results.empty_frame(workload.param_names)
    # Model costs come from tracing the model on the meta device: a second or two, once.
    with st.spinner("Estimating what these points cost…"):
        tasks = sweep.plan(workload, grid, settings.backends, settings.sweep_settings(), dtypes)
    rows = _rows(tasks, settings)
    missing = [t for t in tasks if t.key not in rows]

    def frame() -> pd.DataFrame:
        return _frame([rows[t.key] for t in tasks if t.key in rows], workload)

    controls, slot, below = st.container(), st.empty(), st.container()

    def redraw(measuring: bool = False) -> None:
        shown = frame()
        if shown.empty and measuring:
            slot.empty()
            return
        with slot.container():
            if shown.empty:
                st.info("Nothing measured yet for these settings.")
            else:
                _draw(draw, shown, workload)

    signature = _signature(tasks)
    st.session_state[f"{key}.signature"] = signature  # what a Stop pressed now would name
    with controls:
        if missing and _should_run(missing, tasks, settings, key, signature):
            redraw(measuring=True)
            backends = " and ".join(dict.fromkeys(t.backend.label for t in missing))
            what = f"Measuring {len(missing)} points on {backends}…"
            progress = _Progress(key, signature, len(missing), what, settings, dtypes)
            drawn = {"at": progress.started, "took_s": 0.0}

            def on_row(task: sweep.Task, row: dict) -> None:
                rows[task.key] = row
                progress.row(task, row, label or f"{workload.title} (app)")
                wait_s = max(REDRAW_EVERY_S, drawn["took_s"] * (1 - REDRAW_SHARE) / REDRAW_SHARE)
                if time.perf_counter() - drawn["at"] >= wait_s:
                    begun = time.perf_counter()
                    redraw(measuring=True)
                    drawn["at"] = time.perf_counter()
                    drawn["took_s"] = drawn["at"] - begun

            _measure(missing, settings, dtypes[0], on_row, progress)
            progress.close(
                f"Measured {len(missing)} points in {progress.elapsed_s():.1f} s "
                f"({len(tasks) - len(missing)} from cache)."
            )
        elif not missing and tasks:
            st.caption(f"All {len(tasks)} points from the cache: measured earlier on this server.")
    redraw()
    final = frame()
    with below:
        _report(final, workload, settings, key, table)
    return final


def _measure(tasks, settings: Settings, dtype: str, on_row, progress, budget_s=None):
    return sweep.measure(
        tasks,
        settings.sweep_settings(dtype),
        on_row=on_row,
        should_stop=progress.beat,
        on_wait=progress.waiting.info,
        budget_s=budget_s,
    )


def _draw(draw: Callable[[pd.DataFrame], None], frame: pd.DataFrame, workload) -> None:
    try:
        draw(frame)
    except Exception as error:  # a drawing bug, or a replayed file without what a chart needs
        _LOG.exception("drawing %s failed", workload.name)
        st.warning(f"The charts could not be drawn: {type(error).__name__}: {error}")


def _should_run(missing, tasks, settings: Settings, key: str, signature: str) -> bool:
    total_s = sum(t.estimate_s for t in missing)
    stopped = st.session_state.get(f"{key}.stopped") == signature
    cost = f"{len(missing)} of {len(tasks)} points to measure: {units.duration(total_s)}."
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


# ---------------------------------------------------------------- replaying a saved run


def _replay(workload, grid, settings: Settings, draw, key, dtypes, table) -> pd.DataFrame:
    replay = settings.replay
    if replay.frame.empty:
        st.info(
            "Replay is on, but there is nothing to replay: choose a saved run or upload a "
            "results file in the sidebar. Nothing is measured."
        )
        return results.empty_frame(workload.param_names)
    frame, matched = report.select_rows(
        replay.frame, workload.name, workload.param_names, grid, dtypes
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
    _draw(draw, frame, workload)
    _report(frame, workload, settings, key, table)
    return frame


# ---------------------------------------------------------------- a whole suite in a budget


def _suite_tasks(parts: Sequence[SuitePart], settings: Settings, dtype: str) -> list[sweep.Task]:
    tasks = []
    for part in parts:
        workload = workloads.get(part.workload)
        tasks += sweep.plan(
            workload, part.grid, settings.backends, settings.sweep_settings(dtype), group=part.chart
        )
    return tasks


def suite_frame(part: SuitePart, settings: Settings, dtype: str) -> pd.DataFrame:
    """A part's rows measured so far on this server (or, when replaying, the replayed run's)."""
    workload = workloads.get(part.workload)
    if settings.replay is not None:
        frame, _ = report.select_rows(
            settings.replay.frame, workload.name, workload.param_names, part.grid, [dtype], False
        )
        return results.add_speedup(frame)
    tasks = _suite_tasks([part], settings, dtype)
    rows = _rows(tasks, settings)
    return _frame([rows[t.key] for t in tasks if t.key in rows], workload)


def run_suite(
    parts: Sequence[SuitePart],
    settings: Settings,
    *,
    budget_s: float,
    key: str,
    label: str,
    dtype: str = report.POST_DTYPE,
) -> list[dict]:
    """Measure every part's grid within ``budget_s`` seconds; one stored run per part.

    ``core.measure.sweep.measure`` shares the budget out: each part gets an even share of
    the time left when it starts, its cheapest points first. Cached points are not
    measured again, so pressing Run after a Stop goes on where it stopped. Returns the
    points skipped for time, as table rows.
    """
    st.session_state.pop(f"{key}.stopped", None)
    with st.spinner("Estimating what the points cost…"):
        tasks = _suite_tasks(parts, settings, dtype)
    missing = [t for t in tasks if _known(t, settings) is None]
    signature = _signature(tasks)
    what = f"Measuring {len(missing)} points for up to {budget_s:.0f} s…"
    progress = _Progress(key, signature, len(missing), what, settings, [dtype])

    def on_row(task: sweep.Task, row: dict) -> None:
        progress.row(task, row, f"{label}: {task.group}")

    done = _measure(missing, settings, dtype, on_row, progress, budget_s=budget_s)
    skipped = [
        {
            "chart": point[0].group,
            "point": point[0].label,
            "backends": ", ".join(t.backend.label for t in point),
            "estimated": units.duration(sum(t.estimate_s for t in point)),
        }
        for point in done.skipped
    ]
    also = f"; {len(skipped)} points skipped for time" if skipped else ""
    progress.close(
        f"Measured {len(done.rows)} rows in {progress.elapsed_s():.0f} s "
        f"({len(tasks) - len(missing)} from cache){also}."
    )
    return skipped


# ---------------------------------------------------------------- under the charts


def _report(frame: pd.DataFrame, workload, settings: Settings, key: str, table: bool) -> None:
    if frame.empty:
        return
    problems = tables.problems(frame)
    for line in problems[:MAX_WARNINGS]:
        st.warning(line)
    if len(problems) > MAX_WARNINGS:
        st.warning(f"… and {len(problems) - MAX_WARNINGS} more points; see the table.")
    if not table:
        return
    st.dataframe(
        tables.result_table(frame),
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


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")[:40] or "machine"
