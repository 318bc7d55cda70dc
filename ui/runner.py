"""The one call a page makes: ``run_grid(workload, grid, settings, draw, key=...)``.

``core.measure.sweep`` plans and measures; this module keeps what is Streamlit's: a cache
of the rows measured in this server process (only missing points are measured, each drawn
as it arrives), one progress box for pages and the suite, and drawing. Stop, or any widget
change, interrupts the script at its next ``st.*`` call (Streamlit does this itself); every
finished row is cached and stored by then. A replayed run is drawn instead of measuring.
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
from dataclasses import dataclass
from typing import Any

import pandas as pd
import streamlit as st

from core import cli, units
from core.errors import BadInput
from core.keep import files, recorder, results, store
from core.measure import devices, load, machine_state, sweep, workloads
from core.measure.suites import SuitePart
from core.show import charts, report, tables
from ui import page, sidebar
from ui.sidebar import Settings

AUTO_RUN_LIMIT_S = 3.0
QUICK_FIRST_S = 0.5
# Building and sending a page's charts takes up to half a second on a small CPU, and it
# competes with the timing for that CPU: redraw at most once a second, and never spend
# more than a quarter of the time drawing.
REDRAW_EVERY_S = 1.0
REDRAW_SHARE = 0.25
# How often a long point gives Streamlit a chance to act on Stop or a widget change, and
# says how far it is. While a CPU point is timed the app keeps still (the browser and the
# server would draw on the cores being timed): only this line changes, less often.
HEARTBEAT_S = 0.5
CPU_HEARTBEAT_S = 1.5
MAX_WARNINGS = 6
_CACHE_MAX_ROWS = 20_000

_LOG = logging.getLogger(__name__)
_cache: OrderedDict[tuple, dict] = OrderedDict()
_cache_lock = threading.Lock()
machine_fingerprint = functools.cache(devices.machine_fingerprint)  # asked once, as runs record it


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()
    _stored_history.clear()


def measured_frame(workload_name: str) -> pd.DataFrame:
    """Every row of one workload measured in this server process, whichever page measured
    it: the Trust page puts them all on one roofline."""
    workload = workloads.get(workload_name)
    with _cache_lock:
        rows = [dict(row) for row in _cache.values() if row.get("workload") == workload.name]
    return results.to_frame(rows, workload.param_names)


def _known(tasks: Sequence[sweep.Task], settings: Settings) -> dict[tuple, dict]:
    """The rows known without measuring: verdicts (skipped, refused…) and cached rows."""
    found = {}
    with _cache_lock:
        for task in tasks:
            if task.verdict[0]:
                found[task.key] = sweep.base_row(task, settings.sweep_settings(task.dtype))
            elif task.key in _cache:
                _cache.move_to_end(task.key)
                found[task.key] = _cache[task.key]
    return found


def _frame(tasks: Sequence[sweep.Task], rows: dict[tuple, dict], workload, baseline=None):
    shown = [rows[t.key] for t in tasks if t.key in rows]
    return results.add_speedup(results.to_frame(shown, workload.param_names), baseline)


def _stop(key: str, signature: str) -> None:
    st.session_state[f"{key}.stopped"] = signature  # names the grid that Stop stopped


def _signature(tasks: Sequence[sweep.Task]) -> str:
    digest = hashlib.sha1(repr([t.key for t in tasks]).encode(), usedforsecurity=False)
    return digest.hexdigest()[:16]


@dataclass
class _Box:
    status: Any  # Streamlit's status container
    bar: Any
    waiting: Any
    stop_slot: Any


class _Progress:
    """One measuring call on screen (status box, progress bar, Stop button, heartbeat), for
    pages and the suite alike. Each finished row is cached and stored as it arrives; a
    store that fails costs one warning, and measuring goes on."""

    def __init__(
        self, key: str, signature: str, tasks, label: str, settings, dtypes, quick=False
    ) -> None:
        self.note = st.empty()  # outside the status box, which folds away when done
        self.key, self.signature, self.label, self.box = key, signature, label, None
        self.tasks, self.settings, self.done = tasks, settings, 0
        self.started = self.beat_at = self.task_at = time.perf_counter()
        self.drawn_at = -math.inf  # the first new point is drawn at once
        self.draw_s, self.task = 0.0, None
        self.redraws, self.drawing_s = 0, 0.0  # as points arrive, and what they took in all
        self.times_cpu = any(t.backend.device == "cpu" for t in tasks)
        self.run_settings = {**settings.sweep_settings().as_dict(), "dtypes": list(dtypes),
                             "backends": settings.labels, "source": "app",
                             "machine_state": machine_state.snapshot()}  # fmt: skip
        self.records: dict[str, Callable[[dict], None]] | None = {}
        if not quick:  # a quick first point opens it with its row: see _open
            self._open()

    def _open(self) -> _Box:
        """The status box, made on first use. Streamlit sleeps 50 ms when it makes one; a
        quick first point (a slider's new size) is drawn before that, not after."""
        if self.box is None:
            status = st.status(self.label, expanded=True)
            # Filled through its methods, not in a ``with`` block: leaving one while it
            # runs sleeps 50 ms more.
            bar = status.progress(0.0, text="starting…")
            self.box = _Box(status, bar, status.empty(), status.empty())
            self.box.stop_slot.button("Stop", key=f"{self.key}.stop", on_click=_stop,
                                      args=(self.key, self.signature))  # fmt: skip
        return self.box

    def run(
        self, dtype, run_label, rows=None, redraw=None, budget_s=None, rounds_until=None
    ) -> sweep.Measured:
        def on_row(task: sweep.Task, row: dict) -> None:
            with _cache_lock:
                _cache[task.key] = row
                _cache.move_to_end(task.key)
                while len(_cache) > _CACHE_MAX_ROWS:
                    _cache.popitem(last=False)
            if rows is not None:
                rows[task.key] = row
            self._save(row, run_label(task))
            self.done += 1
            wait_s = max(REDRAW_EVERY_S, self.draw_s * (1 - REDRAW_SHARE) / REDRAW_SHARE)
            # A later round only refines a point already drawn, and its time is a share of
            # the first pass's (sweep.ROUNDS_SHARE): drawing in it (0.3-0.4 s a time here)
            # would overrun that share. The page's last draw shows what rounds found.
            later_round = (units.as_number(row.get("rounds")) or 1) > 1
            drew = (
                redraw is not None
                and not later_round
                and time.perf_counter() - self.drawn_at >= wait_s
            )
            if drew:
                begun = time.perf_counter()
                # The first new point: the browser draws its chart before the others are built.
                first = self.drawn_at == -math.inf
                with page.after_first_chart(_let_browser_draw if first else None):
                    redraw(measuring=True)
                self.drawn_at = time.perf_counter()
                self.draw_s = self.drawn_at - begun
                self.redraws += 1
                self.drawing_s += self.draw_s
            self._open().waiting.empty()
            shown = units.seconds(row.get("median_s")) if row["status"] == "ok" else row["status"]
            group = f"{task.group} · " if task.group else ""
            self._show(f"{group}{task.label} on {task.backend.label}: {shown}")
            if drew and self.times_cpu:  # let the browser finish drawing before a CPU point
                self.drawing_s += load.settle()

        def on_start(task: sweep.Task) -> None:
            self.task, self.task_at = task, time.perf_counter()

        settings = self.settings.sweep_settings(dtype)
        return sweep.measure(self.tasks, settings, on_row=on_row, should_stop=self.beat,
                             on_wait=lambda text: self._open().waiting.info(text),
                             budget_s=budget_s, on_start=on_start,
                             rounds_until=rounds_until)  # fmt: skip

    def _show(self, text: str) -> None:
        total = max(len(self.tasks), 1)
        self._open().bar.progress(min(self.done / total, 1.0), text=f"{self.done}/{total} · {text}")

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
        now, task = time.perf_counter(), self.task
        on_cpu = task is not None and task.backend.device == "cpu"
        if now - self.beat_at >= (CPU_HEARTBEAT_S if on_cpu else HEARTBEAT_S):
            self.beat_at = now
            what = f"{task.label} on {task.backend.label}: " if task is not None else ""
            estimate = f" of about {units.duration(task.estimate_s)}" if task is not None else ""
            self._show(f"measuring {what}{now - self.task_at:.0f} s{estimate}")
        return False

    def close(self, measured: int, cached: int, also: str = "") -> None:
        box = self._open()
        box.stop_slot.empty()
        box.waiting.empty()
        took_s = time.perf_counter() - self.started
        label = f"Measured {measured} points in {took_s:.1f} s ({cached} from cache){also}."
        box.status.update(label=label, state="complete", expanded=False)


def _let_browser_draw() -> None:
    load.settle(max_wait_s=0.3, step_s=0.05)


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
    baseline: str | None = None,
) -> pd.DataFrame:
    """Draw ``grid`` (parsed values) on every backend, measuring what is not cached; returns
    the tidy frame, with a ``speedup`` column against the first CPU backend.

    ``draw(frame)`` puts the page's charts on screen, again as rows arrive, each time
    replacing what it drew. ``key`` names this call's widgets (unique on the page);
    ``dtypes`` runs the grid once per dtype (default: the sidebar's). What is measured is
    stored as one run named ``label``. When the sidebar replays a run, its rows are drawn.
    ``baseline`` names the backend (and variant: "cuda · eager") speedups are read against.
    """
    try:
        workload = workloads.get(workload_name)
        dtypes = list(dict.fromkeys(dtypes or [settings.dtype]))
        if settings.replay is not None:
            return _replay(workload, grid, settings, draw, key, dtypes, table, baseline)
        return _run_grid(workload, grid, settings, draw, key, dtypes, table, label, baseline)
    except BadInput as error:
        st.error(str(error))
    except Exception as error:  # the page must keep working; the log keeps the traceback
        _LOG.exception("run_grid(%s) failed", workload_name)
        st.error(f"{workload_name}: could not measure: {units.one_line(error, typed=True)}")
    return results.empty_frame()


def _run_grid(workload, grid, settings, draw, key, dtypes, table, label, baseline) -> pd.DataFrame:
    if empty := [name for name, values in grid.items() if not list(values)]:
        st.info(f"Choose at least one value of {', '.join(empty)} to measure.")
        return results.empty_frame(workload.param_names)
    # Model costs come from tracing the model on the meta device: a second or two, once.
    with st.spinner("Estimating what these points cost…"):
        tasks = sweep.plan(workload, grid, settings.backends, settings.sweep_settings(), dtypes)
        tasks = sweep.learned(tasks, _history([workload.name], settings), settings.sweep_settings())
    rows = _known(tasks, settings)
    missing = [t for t in tasks if t.key not in rows]
    controls, slot, below = st.container(), st.empty(), st.container()

    def redraw(measuring: bool = False) -> pd.DataFrame:
        shown = _frame(tasks, rows, workload, baseline)
        if shown.empty and measuring:
            slot.empty()
        elif shown.empty:
            slot.info("Nothing measured yet for these settings.")
        else:
            with slot.container():
                _draw(draw, shown, workload)
        return shown

    signature = _signature(tasks)
    st.session_state[f"{key}.signature"] = signature  # what a Stop pressed now would name
    measured = None
    with controls:
        if missing and _should_run(missing, tasks, settings, key, signature):
            run_began = time.perf_counter()
            # Drawing the cached points before measuring costs as long as a page's charts
            # take (0.3 s for four here): when the first new point comes sooner than that, the
            # chart is drawn once, with it, and a slider's first new point arrives sooner.
            if missing[0].estimate_s >= QUICK_FIRST_S:
                redraw(measuring=True)
            backends = " and ".join(dict.fromkeys(t.backend.label for t in missing))
            what = f"Measuring {len(missing)} points on {backends}…"
            quick = missing[0].estimate_s < QUICK_FIRST_S
            progress = _Progress(key, signature, missing, what, settings, dtypes, quick)
            run_label = label or f"{workload.title} (app)"
            measuring_began = time.perf_counter()
            # What the page offers is kept: later rounds, which only refine points already
            # drawn, end when the offered time is up (less the page's own last draw). On a
            # machine gone noisy they ran a page past twice its offer.
            page_time = _PAGE_TIME.get(key, DEFAULT_PAGE_TIME)
            rounds_until = run_began + offered_s(missing, key) - page_time.page_s
            measured = progress.run(dtypes[0], lambda _: run_label, rows, redraw,
                                    rounds_until=rounds_until)  # fmt: skip
            measuring_s = time.perf_counter() - measuring_began
            progress.close(len(missing), len(tasks) - len(missing))
        elif not missing and tasks:
            st.caption(f"All {len(tasks)} points from the cache: measured earlier on this server.")
    final = redraw()
    with below:
        _report(final, workload, settings, key, table)
    if measured is not None:  # the page's time, from Run to its last table
        page_s = time.perf_counter() - run_began - measuring_s
        _learn_page(key, measured, progress, measuring_s, page_s)
    return final


def _draw(draw: Callable[[pd.DataFrame], None], frame: pd.DataFrame, workload) -> None:
    try:
        draw(frame)
    except Exception as error:  # a drawing bug, or a replayed file without what a chart needs
        _LOG.exception("drawing %s failed", workload.name)
        st.warning(f"The charts could not be drawn: {units.one_line(error, typed=True)}")


@dataclass(frozen=True)
class _PageTime:
    """What a page's run takes beyond its points' own time."""

    per_point_s: float  # saving it, showing progress
    per_redraw_s: float  # drawing the charts as points arrive, letting the browser draw them
    page_s: float  # once a run: the charts drawn before the first point and after the last


# Before a page has run on this server, about what these pages took on a small 2-core
# CPU; after, what its last run took. Learned in parts, because they grow with different
# things: saving with the points, redrawing with the time (once a second at most, see
# REDRAW_EVERY_S), and the rest not at all. On an H200 a default matmul grid's points take
# 0.1-0.5 s and the page 0.5-0.7 s more, whichever.
# Only what the page offers ("about N s") includes them: whether a grid runs by itself is
# judged on the points alone, or small grids would stop running by themselves.
DEFAULT_PAGE_TIME = _PageTime(per_point_s=0.02, per_redraw_s=0.3, page_s=0.4)
_PAGE_TIME: dict[str, _PageTime] = {}
# The share of their allowance the page's later rounds took last time: what its next
# run's rounds are priced at. Whether a point needs another round is luck on a noisy
# machine (none one run, all the next), but rounds end when the offered time is up
# (_run_grid), so rounds priced too low cost only rounds, while priced too high they
# made a page offer half again what it took.
_PAGE_ROUNDS: dict[str, float] = {}


def _learn_page(
    key: str, measured: sweep.Measured, progress: _Progress, measuring_s: float, page_s: float
) -> None:
    """Learn from a run whose points (``measured``) took ``measuring_s`` from the first's
    start to the last's end, ``progress``'s redrawing included, and the page ``page_s`` more."""
    if measured.rows:
        own_s = sum(units.as_number(row.get("wall_s")) or 0.0 for row in measured.rows)
        # A backend's one-time set-up is paid by the first run of a server, not the next.
        rest_s = max(measuring_s - own_s - progress.drawing_s - measured.setup_s, 0.0)
        # Each round of a point is saved and shown again: per row, a run whose points went
        # round three times priced the next run's first pass at 0.015 s a point, where it
        # took 0.009 s (elementwise, 50 points, on 2 cores).
        measurements = sum(units.as_number(row.get("rounds")) or 1 for row in measured.rows)
        per_redraw_s = progress.drawing_s / max(progress.redraws, 1)
        _PAGE_TIME[key] = _PageTime(rest_s / measurements, per_redraw_s, page_s)
    if math.isfinite(share := measured.rounds_share):
        _PAGE_ROUNDS[key] = share


def rounds_share(key: str) -> float:
    """The share of their allowance a page's next later rounds are priced at."""
    return _PAGE_ROUNDS.get(key, sweep.EXPECTED_ROUNDS_SHARE)


def offered_s(missing: Sequence[sweep.Task], key: str) -> float:
    """What a page offers for measuring ``missing``: the points' estimates with the
    rounds they may need again, and the page's own time as it went last time."""
    page_time = _PAGE_TIME.get(key, DEFAULT_PAGE_TIME)
    saving_s = len(missing) * page_time.per_point_s  # later rounds' is in their share
    first_pass_s = sum(t.estimate_s for t in missing) + saving_s
    measuring_s = sweep.run_estimate_s(missing, rounds_share(key)) + saving_s
    # The first point is drawn as it arrives, then one each interval, and none without a
    # new point: what _Progress does. Later rounds do not redraw.
    draw_s = page_time.per_redraw_s
    every_s = max(REDRAW_EVERY_S, draw_s * (1 - REDRAW_SHARE) / REDRAW_SHARE) + draw_s
    redraws = min(len(missing), 1 + math.floor(first_pass_s / every_s))
    return measuring_s + redraws * draw_s + page_time.page_s


def _should_run(missing, tasks, settings: Settings, key: str, signature: str) -> bool:
    total_s = sum(t.estimate_s for t in missing)
    stopped = st.session_state.get(f"{key}.stopped") == signature
    # Compiling takes seconds to minutes a point: never started by a slider alone.
    compiles = sum(workloads.variants.of(t.params) == workloads.variants.COMPILE for t in missing)
    if settings.auto_run and total_s <= AUTO_RUN_LIMIT_S and not stopped and not compiles:
        return True
    if stopped:
        reason = "Stopped. Points measured so far are shown."
    elif not settings.auto_run:
        reason = "Run on every change is off."
    elif compiles:
        reason = f"torch.compile compiles each of {compiles} points before timing it."
    else:
        reason = f"Over the {AUTO_RUN_LIMIT_S:g} s limit for running on every change."
    offer = st.empty()
    with offer.container():
        left, right = st.columns([1, 5], vertical_alignment="center")
        clicked = left.button("Run", key=f"{key}.run", type="primary")
        right.caption(f"{reason} {len(missing)} of {len(tasks)} points to measure: "
                      f"{units.duration(offered_s(missing, key))}.")  # fmt: skip
        if total_s >= cli.LONG_RUN_S:  # on battery or in Low Power Mode: say so before a long run
            for line in machine_state.warnings(machine_state.snapshot()):
                st.warning(line)
    if clicked:
        offer.empty()
        st.session_state.pop(f"{key}.stopped", None)
    return clicked


def _replay(workload, grid, settings: Settings, draw, key, dtypes, table, baseline=None):
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
    frame = results.add_speedup(frame, baseline)
    _draw(draw, frame, workload)
    _report(frame, workload, settings, key, table)
    return frame


def _suite_tasks(parts: Sequence[SuitePart], settings: Settings, dtype: str) -> list[sweep.Task]:
    tasks = [task for part in parts for task in sweep.plan(
        workloads.get(part.workload), part.grid, settings.backends,
        settings.sweep_settings(dtype), group=part.chart)]  # fmt: skip
    history = _history(list(dict.fromkeys(part.workload for part in parts)), settings)
    return sweep.learned(tasks, history, settings.sweep_settings(dtype))


def _history(names: Sequence[str], settings: Settings) -> pd.DataFrame:
    """What this machine measured before, for estimates to learn from: this server's rows
    and the store's. A store that cannot be read only leaves the estimates rough."""
    with _cache_lock:
        frames = [pd.DataFrame([r for r in _cache.values() if r.get("workload") in names])]
    try:
        url = store.default_store_url()
        frames += [_stored_history(url, name, settings.machine) for name in names]
    except Exception as error:  # the store is a convenience
        _LOG.warning("no history for time estimates: %s", error)
    return pd.concat([f for f in frames if len(f)] or [pd.DataFrame()], ignore_index=True)


# This server's own rows are in _cache from the moment they are measured, so a read of
# the store a minute old misses at most what another process (the CLI) stored since; a
# slider move saves the read (20-70 ms here). Failures are not cached.
@st.cache_resource(show_spinner=False, ttl=60)
def _stored_history(url: str, workload_name: str, machine: str) -> pd.DataFrame:
    return sidebar.open_store().history(workload_name, machine)


def suite_frame(part: SuitePart, settings: Settings, dtype: str) -> pd.DataFrame:
    """A part's rows measured so far on this server (or, when replaying, the replayed run's)."""
    workload = workloads.get(part.workload)
    if settings.replay is not None:
        frame, _ = report.select_rows(
            settings.replay.frame, workload.name, workload.param_names, part.grid, [dtype], False
        )
        return results.add_speedup(frame)
    tasks = _suite_tasks([part], settings, dtype)
    return _frame(tasks, _known(tasks, settings), workload)


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

    ``sweep.measure`` gives each part an even share of the time left when it starts, its
    cheapest points first. Cached points are not measured again, so Run after a Stop goes
    on where it stopped. Returns the points skipped for time, as table rows.
    """
    st.session_state.pop(f"{key}.stopped", None)
    with st.spinner("Checking that the machine is quiet, and what the points cost…"):
        if sentence := load.check_machine().sentence():
            st.warning(sentence)
        for line in machine_state.warnings(machine_state.snapshot()):
            st.warning(line)
        tasks = _suite_tasks(parts, settings, dtype)
    known = _known(tasks, settings)
    missing = [t for t in tasks if t.key not in known]
    what = f"Measuring {len(missing)} points for up to {budget_s:.0f} s…"
    progress = _Progress(key, _signature(tasks), missing, what, settings, [dtype])
    done = progress.run(dtype, lambda task: f"{label}: {task.group}", budget_s=budget_s)
    skipped = [
        {"chart": point[0].group, "point": point[0].label,
         "backends": ", ".join(t.backend.label for t in point),
         "estimated": units.duration(sum(t.estimate_s for t in point))}
        for point in done.skipped
    ]  # fmt: skip
    also = f"; {len(skipped)} points skipped for time" if skipped else ""
    progress.close(len(done.rows), len(tasks) - len(missing), also)
    return skipped


def _report(frame: pd.DataFrame, workload, settings: Settings, key: str, table: bool) -> None:
    if frame.empty:
        return
    if busy := tables.busy_summary(frame):
        st.warning(busy)
    problems = tables.problems(frame)
    for line in problems[:MAX_WARNINGS]:
        st.warning(line)
    if len(problems) > MAX_WARNINGS:
        st.warning(f"… and {len(problems) - MAX_WARNINGS} more points; see the table.")
    if not table:
        return
    speedup = st.column_config.TextColumn(help="median speedup, with its 95% interval")
    st.dataframe(tables.result_table(frame), hide_index=True, column_config={"speedup": speedup})
    meanings = charts.FLAG_MEANINGS.items()
    st.caption("Flags: " + "; ".join(f"*{flag}*, {why}" for flag, why in meanings) + ".")
    slug = "".join(c if c.isalnum() else "-" for c in settings.machine.lower()).strip("-")[:40]
    st.download_button(
        "Download CSV",
        # Through core.keep.files: formula-like text is neutralised and the file imports back.
        files.export_bytes(frame.assign(machine=settings.machine), "csv", {}, {}),
        file_name=f"{workload.name}-{slug or 'machine'}.csv",
        mime="text/csv", key=f"{key}.csv", on_click="ignore",
    )  # fmt: skip
