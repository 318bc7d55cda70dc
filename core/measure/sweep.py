"""Plan, then measure: a grid times a list of backends, as rows, for the CLI and the app
alike; ``core.keep.results.to_frame`` turns the rows into the tidy table."""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import math
import re
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

import numpy as np
import torch

from core import stats, units
from core.errors import BadInput
from core.measure import ceilings, devices, energy, load, locks, memory, timing
from core.measure.workloads import Workload, dtype_name, parse_dtype, said, variants
from core.measure.workloads.base import TOLERANCE, relative_error, skip_reason


@dataclass(frozen=True)
class Backend:
    """A device, and for the CPU the intra-op thread count it runs with."""

    device: str
    threads: int | None = None  # None: torch's default for this process

    @property
    def resolved_threads(self) -> int:
        return self.threads or devices.cpu_threads()

    @property
    def label(self) -> str:
        if torch.device(self.device).type == "cpu":
            count = self.resolved_threads
            return f"cpu ({count} thread{'s' if count != 1 else ''})"
        return self.device


def default_backends(threads: int | None = None) -> list[Backend]:
    """CPU against every accelerator; with none, one CPU thread against all of them."""
    found = devices.device_strings()
    if len(found) > 1:
        return [Backend("cpu", threads), *[Backend(d) for d in found[1:]]]
    all_threads = Backend("cpu", threads or devices.cpu_threads())
    return list(dict.fromkeys([Backend("cpu", 1), all_threads]))


# More threads than cores only wait for each other; beyond this many per core they are
# refused (100,000 of them took a server down).
MAX_THREADS_PER_CORE = 4


def capped_threads(count: int | None) -> tuple[int | None, str]:
    """A thread count as asked, with a warning when it is more than the logical cores (and
    cut to ``MAX_THREADS_PER_CORE`` per core)."""
    _, logical = devices.cpu_core_counts()
    if count is None or count <= logical:
        return count, ""
    if count > MAX_THREADS_PER_CORE * logical:
        top = MAX_THREADS_PER_CORE * logical
        return (
            top,
            f"{count} CPU threads asked for, but this machine has {logical} cores; using {top}",
        )
    return count, (
        f"{count} CPU threads on {logical} logical cores: the extra threads wait for each "
        "other, so this baseline is slower than the CPU can be"
    )


def parse_backends(
    text: str, threads: int | None = None, notes: list[str] | None = None
) -> list[Backend]:
    """'cpu,cuda' -> backends; 'cpu:1,cpu:8' gives two CPU backends with 1 and 8 threads.
    Thread counts above the machine's cores are warned about in ``notes`` (see
    ``capped_threads``)."""
    chosen = []
    for part in [p.strip() for p in str(text).split(",") if p.strip()]:
        if part.lower().startswith("cpu:"):
            count = part.split(":", 1)[1]
            if not count.isdigit() or int(count) < 1:
                raise BadInput(
                    f"devices: '{units.echo(part)}' needs a thread count of 1 or more, e.g. cpu:4"
                )
            count, note = capped_threads(int(count))
            if note and notes is not None:
                notes.append(note)
            chosen.append(Backend("cpu", count))
        else:
            device = devices.parse_device(part)
            chosen.append(Backend(str(device), threads if device.type == "cpu" else None))
    if not chosen:
        raise BadInput("devices: none given; e.g. cpu,accel or cpu:1,cpu:2")
    # 'cpu,cpu' or 'cpu,cpu:8' on an 8-thread default would time the same thing twice.
    return list({backend.label: backend for backend in chosen}.values())


@dataclass
class SweepSettings:
    """Everything besides the grid that shapes a sweep's numbers."""

    dtype: str = "float32"
    timing: timing.TimingSettings = field(default_factory=timing.TimingSettings)
    memory_budget_bytes: int | None = None  # None: each device's safe default
    sweep_budget_s: float | None = None
    check_outputs: bool = True

    def as_dict(self) -> dict:
        own = {name: value for name, value in vars(self).items() if name != "timing"}
        return {**own, **asdict(self.timing)}


# A grid this large would take days and, built whole, gigabytes before its first point.
MAX_POINTS = 10_000


def expand_grid(workload: Workload, grid: dict[str, Sequence]) -> list[dict]:
    """Every combination of the given values, defaults for the rest; repeated values once.
    Values arrive parsed (by the widget, link, CLI or file that brought them)."""
    for name in grid:
        workload.param(name)
    axes = [list(dict.fromkeys(grid.get(p.name) or [p.default])) for p in workload.params]
    count = math.prod(len(axis) for axis in axes)  # counted before anything is built
    if count > MAX_POINTS:
        raise BadInput(f"the grid has {count:,} points; at most {MAX_POINTS:,} fit in one run")
    return [
        dict(zip(workload.param_names, combo, strict=True)) for combo in itertools.product(*axes)
    ]


@functools.lru_cache(maxsize=4096)
def cost_of(workload: Workload, point: tuple[tuple[str, Any], ...], dtype: str):
    """The ``Cost`` of a point (its parameters as pairs), computed once per process: a page
    asks which sizes fit, then plans the ones chosen (model costs come from tracing on the
    meta device)."""
    return workload.cost(dict(point), dtype)


def sizes_that_fit(
    workload: Workload,
    sizes: Sequence[int],
    others: dict[str, Sequence],
    budget_bytes: int | None,
    dtype: str,
    size_param: str = "size",
) -> list[int]:
    """The sizes whose every combination with ``others`` fits ``budget_bytes``; at least the
    smallest, so that a tiny budget shows a refusal rather than an empty page."""
    if budget_bytes is None:
        return list(sizes)
    combos = [dict(zip(others, c, strict=True)) for c in itertools.product(*others.values())]

    def fits(size: int) -> bool:
        points = ({**workload.defaults(), **combo, size_param: size}.items() for combo in combos)
        return all(cost_of(workload, tuple(p), dtype).memory_bytes <= budget_bytes for p in points)

    return [size for size in sizes if fits(size)] or list(sizes[:1])


# Building models and checking them against a float64 CPU reference costs more than
# the timed calls themselves for small models.
SETUP_S = {"train": 0.6, "inference": 0.4}
DEFAULT_SETUP_S = 0.02


@dataclass(frozen=True)
class Task:
    """One point on one backend, planned: everything known before anything is allocated.
    ``verdict``: (status, message) of a task that will not be timed (skipped, failed to be
    costed, refused by the memory guard). ``key`` names the measurement for caches, leaving
    out the memory budget: it only decides refusals, which every plan judges again."""

    workload: Workload = field(repr=False)
    point: tuple[tuple[str, Any], ...]
    backend: Backend
    dtype: str
    cost: Any = field(default=None, compare=False, repr=False)  # workloads.Cost
    verdict: tuple[str, str] = ("", "")
    estimate_s: float = 0.0
    key: tuple = ()
    group: str = ""  # a suite's part; budgets are shared out per group

    @property
    def params(self) -> dict:
        return dict(self.point)

    @property
    def label(self) -> str:
        return units.point_label(self.workload.name, said(self.workload.name, self.params))


def plan(
    workload: Workload,
    grid: dict[str, Sequence],
    backends: Sequence[Backend],
    settings: SweepSettings,
    dtypes: Sequence[str] | None = None,
    group: str = "",
) -> list[Task]:
    """Every point on every backend (and dtype), in measuring order: backends alternate
    from point to point, so that drift in clocks or heat falls on both sides alike."""
    points = expand_grid(workload, grid)
    tasks = []
    for dtype in dict.fromkeys(dtypes or [settings.dtype]):
        parse_dtype(dtype)  # an unknown dtype is bad input, before anything is costed
        for index, params in enumerate(points):
            try:  # once per point and dtype, shared by its backends
                cost, problem = cost_of(workload, tuple(params.items()), dtype), ""
            except Exception as error:  # a cost that cannot be computed fails this point only
                cost, problem = None, f"cost estimate failed: {units.one_line(error)}"
            order = list(backends) if index % 2 == 0 else list(reversed(backends))
            tasks += [
                _task(workload, params, b, dtype, cost, problem, settings, group) for b in order
            ]
    return tasks


def _task(workload, params, backend, dtype, cost, problem, settings, group) -> Task:
    device = torch.device(backend.device)
    torch_dtype = parse_dtype(dtype)
    if reason := (
        skip_reason(device.type, torch_dtype)
        or workload.unsupported(params, device.type, torch_dtype)
        or variants.unsupported(params, device, torch_dtype)
    ):
        verdict = ("skipped", reason)
    elif (support := devices.dtype_support(device, torch_dtype))[0] == "unsupported":
        verdict = ("skipped", support[1])  # said instead of a crash in the middle of a sweep
    elif problem:
        verdict = ("failed", problem)
    else:
        budget = memory.capped_budget(settings.memory_budget_bytes, device)[0]
        budget = memory.default_budget_bytes(device) if budget is None else budget
        refused = memory.refusal(cost.memory_for(device.type), budget, device)
        # An emulated dtype is timed, with a note: its speed is float32's, not the dtype's.
        verdict = ("refused", refused) if refused else ("", support[1])
    point, how = tuple(params.items()), settings.timing
    gpu = device.type != "cpu"  # the CPU is never flushed nor pipelined
    key = (workload.name, point, backend.label, dtype, how.budget_s, how.cold_cache and gpu)
    key += (how.pipelined and gpu, settings.check_outputs)
    estimate_s = 0.0 if verdict[0] else _estimate_s(workload, cost, how, variants.of(params))
    return Task(workload, point, backend, dtype, cost, verdict, estimate_s, key, group)


def _estimate_s(
    workload: Workload, cost, timing_settings: timing.TimingSettings, variant: str = "eager"
) -> float:
    """Rough seconds to measure a point on a backend, as a laptop CPU would: set-up (and
    compiling), the first call, the minimum warm-up and repeats, then repeats up to the
    point budget."""
    call_s = cost.flops / 50e9 + cost.bytes_moved / 10e9
    calls = 1 + timing_settings.min_warmup + timing_settings.min_repeats
    if timing_settings.pipelined:
        calls = 2 * calls - 1
    setup_s = SETUP_S.get(workload.name, DEFAULT_SETUP_S)
    if variant == variants.COMPILE:
        setup_s += variants.COMPILE_SETUP_S.get(workload.name, variants.COMPILE_DEFAULT_S)
    return setup_s + calls * call_s + min(timing_settings.budget_s, 40 * call_s)


def learned(tasks: Sequence[Task], history, settings: SweepSettings) -> list[Task]:
    """``tasks`` with estimates learned from what this machine measured before: ``history``
    holds earlier rows (``workload``, its parameters, ``backend``, ``dtype``, ``flops``,
    ``bytes``, ``wall_s``, ``first_call_s``, ``median_s``, ``rounds``, ``flags``, ``n``,
    ``rel_precision``; rows measured busy are left out, rows that did not settle count
    half: ``_unsettled``).

    What is learned is the ratio of a round's real time to the rough estimate, for the
    same workload, backend, dtype and named parameters (``_kind_of``). A point measured
    before gets its own ratio (the median, if measured more than once); any other point
    the ratio interpolated, in logs, between the earlier points nearest to it in rough
    estimate on either side, or the nearest one's beyond them: small points cost mostly
    their set-up and check, large ones their repeats, so one ratio for all sizes would
    get both wrong. With none learned, an estimate stays the rough one. An estimate is
    of one round: later rounds are ``run_estimate_s``'s to price."""
    if history is None or len(history) == 0:
        return list(tasks)
    quiet: dict[tuple, dict[float, list[float]]] = {}
    unsettled: dict[tuple, dict[float, list[float]]] = {}
    workloads_ = {t.workload.name: t.workload for t in tasks}
    for row in history.to_dict("records"):
        workload = workloads_.get(row.get("workload"))
        round_s = _round_s(row)
        if workload is None or not round_s > 0 or not row.get("flops"):
            continue
        # Others' load is no guide to the next run. Counted even halfway, busy rows (the
        # browser's own drawing flags some after each key press on 2 cores) priced the
        # slider's next size over the limit for running on every change: a Run button
        # where the chart should have filled in.
        if "busy" in str(row.get("flags") or ""):
            continue
        rough_s = _estimate_s(workload, _RowCost(row), settings.timing, variants.of(row))
        key = _kind_of(workload, row, row.get("backend"), row.get("dtype"))
        at = round(math.log(rough_s), 9)  # one point, however its floats were stored
        past = unsettled if _unsettled(row, settings.timing.target_precision) else quiet
        past.setdefault(key, {}).setdefault(at, []).append(math.log(round_s / rough_s))
    curves = {key: _curve(points) for key, points in quiet.items()}
    # A point that did not settle repeats until its budget is spent; the next run it may
    # settle in a tenth of that (0.05 s against 1.4 s, the same CPU point on an H200). Its
    # time says as much of luck as of the point, so it counts halfway to what its settled
    # neighbours say, and not where the point was also measured settled.
    for key, points in unsettled.items():
        near = curves.get(key)
        merged = dict(quiet.get(key, {}))
        for at, values in points.items():
            if at not in merged:
                own = float(np.median(values))
                merged[at] = [own if near is None else (own + float(np.interp(at, *near))) / 2]
        curves[key] = _curve(merged)
    out = []
    for task in tasks:
        curve = curves.get(_kind_of(task.workload, task.params, task.backend.label, task.dtype))
        if curve is None or task.verdict[0] or not task.estimate_s > 0:
            out.append(task)
            continue
        factor = math.exp(float(np.interp(math.log(task.estimate_s), *curve)))
        out.append(replace(task, estimate_s=task.estimate_s * factor))
    return out


def _unsettled(row: dict, target_precision: float) -> bool:
    """Whether a measured row ran out of budget where it could have stopped early: flagged
    noisy, or with enough repeats for the precision target to stop it and its median still
    not known to it (the matmul 512 point on two threads here: 1 s short of 2%, then 0.16 s
    the next run). A row with fewer repeats than that was never going to stop before its
    budget, and will spend it again."""
    if "noisy" in str(row.get("flags") or ""):
        return True
    n, rel_precision = units.as_number(row.get("n")), units.as_number(row.get("rel_precision"))
    if n is None or rel_precision is None:
        return False  # rows from before the store's history carried these
    return n >= timing.PRECISION_MIN_REPEATS and rel_precision > target_precision


def _curve(points: dict[float, list[float]]) -> tuple[np.ndarray, np.ndarray]:
    """Log rough estimates, and the median log ratio learned at each, in order."""
    at = sorted(points)
    return np.array(at), np.array([np.median(points[x]) for x in at])


def _kind_of(workload: Workload, params: dict, backend, dtype) -> tuple:
    """What an estimate learns within: the workload, backend, dtype and every parameter
    that names something rather than counts it (an op, a model, a variant: compiling is
    no guide to eager points, nor exp to add). Rows from before a parameter existed ran
    at its default."""
    named = []
    for param in workload.params:
        if param.kind is str:
            value = params.get(param.name)
            named.append(value if isinstance(value, str) and value else param.default)
    return (workload.name, backend, dtype, *named)


def _round_s(row: dict) -> float:
    """What one round of a measured row took, less its one-time set-up: its ``wall_s``,
    without what its first call took beyond a steady call, over its rounds (stores older
    than rounds hold none: one). What a point's estimate learns from.

    A process's first call into a library sets it up once: a cuBLAS handle, cuDNN, 0.1 to
    0.6 s on an H200, where the same point takes 0.01-0.03 s after. Learned with the point,
    it would make the next run of the page seem several times longer than it is. A
    compiled point's first call is its compiling, which every point does again
    (``variants.compiled``): that one is kept."""
    wall_s, first_s, steady_s, rounds = (
        units.as_number(row.get(name)) or 0.0
        for name in ("wall_s", "first_call_s", "median_s", "rounds")
    )
    once_s = 0.0 if variants.of(row) == variants.COMPILE else max(first_s - steady_s, 0.0)
    return max(wall_s - once_s, 0.0) / max(rounds, 1.0)


# The share of their allowance later rounds are expected to take, before a page has run:
# all of it when points stay noisy or busy, none when every point is steady.
EXPECTED_ROUNDS_SHARE = 0.5


def run_estimate_s(tasks: Sequence[Task], rounds_share: float = EXPECTED_ROUNDS_SHARE) -> float:
    """Seconds measuring ``tasks`` is expected to take without a budget: each point once,
    and ``rounds_share`` of what later rounds may take."""
    first_s = sum(t.estimate_s for t in tasks)
    return first_s + rounds_share * _rounds_allowance_s(first_s)


def _rounds_allowance_s(first_s: float) -> float:
    return max(ROUNDS_SHARE * first_s, MIN_ROUNDS_S)


@dataclass
class Measured:
    """The rows, in the order they finished, and the points a budget left out."""

    rows: list[dict] = field(default_factory=list)
    skipped: list[list[Task]] = field(default_factory=list)
    rounds_s: float = 0.0  # without a budget: what later rounds took, and were allowed
    rounds_allowance_s: float = 0.0
    setup_s: float = 0.0  # each backend's one-time set-up in this process (``_prepare``)

    @property
    def rounds_share(self) -> float:
        """The share of their allowance later rounds took (NaN when none was given)."""
        if not self.rounds_allowance_s > 0:
            return math.nan
        return min(self.rounds_s / self.rounds_allowance_s, 1.0)


def measure(
    tasks: Sequence[Task],
    settings: SweepSettings,
    *,
    on_row: Callable[[Task, dict], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_wait: Callable[[str], None] | None = None,
    budget_s: float | None = None,
    on_start: Callable[[Task], None] | None = None,
    rounds_until: float | None = None,
) -> Measured:
    """Measure ``tasks`` in order; ``on_row(task, row)`` gets each row as it finishes, and
    the rows of each group make one run. ``should_stop`` is asked between tasks and during
    long ones (the app's heartbeat). With ``budget_s``, each group gets an even share of the
    time left when it starts, its cheapest points go first, and a point whose estimate does
    not fit is skipped (a group's first point may use what is left of the whole budget).
    ``on_start(task)`` hears of each task before it is measured. Without a budget,
    ``rounds_until`` (a ``time.perf_counter()`` reading: the time a page offered) ends
    later rounds sooner than their share would.

    Points measured busy or noisy are measured again after the rest of their group, every
    backend in turn (A B A B), up to ``MAX_ROUNDS`` rounds while time allows (without a
    budget, ``ROUNDS_SHARE`` of the first pass); ``on_row``
    then gets the point's row again, with every round in it."""
    done = Measured()
    load.snapshot()  # a short first point reads the machine's load from here, not waiting
    began = time.perf_counter()
    deadline = math.inf if budget_s is None else began + budget_s  # set-up included
    _prepare(tasks, on_wait)
    done.setup_s = time.perf_counter() - began
    groups = _by_group(tasks, cheapest_first=budget_s is not None)
    for index, points in enumerate(groups):
        run_id = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S-") + uuid.uuid4().hex[:6]
        started = now = time.perf_counter()
        share_end = now + max(deadline - now, 0.0) / (len(groups) - index)
        measured: list[_Rounds] = []
        for point in points:
            now = time.perf_counter()
            cost_s = _estimate_of(point)
            if now + cost_s > share_end and (measured or now + cost_s > deadline):
                done.skipped.append(point)
                continue
            measured.append(_Rounds(point, [[] for _ in point], []))
            for position, task in enumerate(point):
                if should_stop is not None and should_stop():
                    return done
                if on_start is not None:
                    on_start(task)
                row = measure_task(task, settings, run_id, on_wait, should_stop)
                measured[-1].history[position].append(row)
                measured[-1].slots.append(len(done.rows))
                done.rows.append(row)
                if on_row is not None:
                    on_row(task, row)
        # Without a budget, further rounds may take half as long as the first one did (or
        # half a second, for a quick grid): enough to catch a quiet moment for a busy point,
        # and a bound that keeps what a page offers ("about N s") a promise; no later than
        # the time the page offered.
        now = time.perf_counter()
        allowed_end = now + _rounds_allowance_s(now - started)
        if budget_s is not None:
            end = share_end
        else:
            end = allowed_end if rounds_until is None else min(allowed_end, rounds_until)
        for _ in range(MAX_ROUNDS - 1):
            for again in [p for p in measured if p.needs_another(settings)]:
                if time.perf_counter() + _estimate_of(again.tasks) > end:
                    break
                for position, task in enumerate(again.tasks):
                    if should_stop is not None and should_stop():
                        return done
                    if on_start is not None:
                        on_start(task)
                    history = again.history[position]
                    # A point still noisy repeats until its budget is spent: in a later
                    # round, that budget is at most what the rounds have left, so the
                    # rounds end when they were meant to (a new round's times are pooled
                    # with the earlier ones').
                    capped = _with_point_budget(settings, end - time.perf_counter())
                    history.append(measure_task(task, capped, run_id, on_wait, should_stop))
                    precision = settings.timing.target_precision
                    done.rows[again.slots[position]] = row = merge_rounds(history, precision)
                    if on_row is not None:
                        on_row(task, row)
        if budget_s is None:  # what a page learns its next run's rounds from
            done.rounds_s += time.perf_counter() - now
            done.rounds_allowance_s += allowed_end - now
    return done


def _prepare(tasks: Sequence[Task], on_wait=None) -> None:
    """Each backend's one-time set-up in this process, before any point: the device's
    context and its dispatch floor (cached; 0.1-0.35 s on an H200's first CUDA point).
    Inside a point it would be that point's time, and its estimate would expect it again."""
    backends = {_threads_of(t) for t in tasks if not t.verdict[0]}
    if not backends:
        return
    with locks.machine_lock(on_wait):
        for device, threads in backends:
            # A device that fails here fails its points, each with the reason.
            with contextlib.suppress(Exception):
                timing.dispatch_floor_s(device, threads)


def _threads_of(task: Task) -> tuple[str, int | None]:
    """A task's device, and the threads it is timed with (torch's default off the CPU)."""
    device = torch.device(task.backend.device)
    threads = task.backend.resolved_threads if device.type == "cpu" else task.backend.threads
    return str(device), threads


def _with_point_budget(settings: SweepSettings, left_s: float) -> SweepSettings:
    """``settings`` with each point's time budget cut to ``left_s`` if that is shorter."""
    if left_s >= settings.timing.budget_s:
        return settings
    return replace(settings, timing=replace(settings.timing, budget_s=max(left_s, 0.0)))


MAX_ROUNDS = 3
ROUNDS_SHARE = 0.5
MIN_ROUNDS_S = 0.5
# Flags a later round may clear: a busy machine, or a spread too wide to trust.
_ROUND_FLAGS = {"busy", "noisy"}


@dataclass
class _Rounds:
    """One point's tasks, each task's rows round by round, and where its row sits in the
    result list (a later round replaces it there)."""

    tasks: list[Task]
    history: list[list[dict]]
    slots: list[int]

    def needs_another(self, settings: SweepSettings) -> bool:
        precision = settings.timing.target_precision
        latest = [merge_rounds(rows, precision) for rows in self.history if rows]
        return len(latest) == len(self.tasks) and any(_ROUND_FLAGS & _flags(r) for r in latest)


def _flags(row: dict) -> set[str]:
    if row.get("status") != "ok":
        return set()
    return set(filter(None, str(row.get("flags") or "").split(",")))


def _estimate_of(point: list[Task]) -> float:
    return sum(t.estimate_s for t in point)


def _by_group(tasks: Sequence[Task], cheapest_first: bool) -> list[list[list[Task]]]:
    """Tasks as groups of points (a point: one parameter set and dtype, every backend)."""
    groups: dict[str, dict[tuple, list[Task]]] = {}
    for task in tasks:
        groups.setdefault(task.group, {}).setdefault((task.dtype, task.point), []).append(task)
    points = [list(group.values()) for group in groups.values()]
    return [sorted(p, key=_estimate_of) for p in points] if cheapest_first else points


# torch.OutOfMemoryError is newer than some torch versions this supports.
_OUT_OF_MEMORY = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)
_SKIP_MARKERS = ("not implemented for", "not supported", "unsupported", "does not support")


def base_row(task: Task, settings: SweepSettings, run_id: str = "") -> dict:
    """What a row says before it is measured; with the verdict, a task's whole row."""
    device = torch.device(task.backend.device)
    row = {
        "run_id": run_id,
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "workload": task.workload.name,
        **task.params,
        "backend": task.backend.label,
        "device": str(device),
        "device_name": _device_name(device),
        "dtype": task.dtype,
        "threads": task.backend.resolved_threads,
        "cold_cache": settings.timing.cold_cache and device.type != "cpu",  # CPUs: no flush
        "flags": "",
        "message": "",
    }
    if (cost := task.cost) is not None:
        row.update(
            flops=cost.flops,
            bytes=cost.bytes_moved,
            memory_estimate_bytes=cost.memory_for(device.type),
        )
    status, message = task.verdict  # a task to be timed may carry a note (emulated dtype)
    return {**row, "status": status, "message": message} if status else {**row, "message": message}


def measure_task(task: Task, settings: SweepSettings, run_id="", on_wait=None, should_stop=None):
    """One row: measured, or skipped, failed or refused with a message saying why."""
    row = base_row(task, settings, run_id)
    if task.verdict[0]:
        return row
    device = torch.device(task.backend.device)
    with locks.machine_lock(on_wait):
        start = time.perf_counter()
        measured = _measure(task, device, settings, should_stop)
        # What later estimates learn from: the point itself, not how long a page took to
        # draw it (that depends on the page, and would stop every page running by itself).
        measured["wall_s"] = time.perf_counter() - start
    return ceilings.judge_row({**row, **measured})


_STATISTICS = ("median_s", "p25_s", "p75_s", "min_s", "max_s", "mean_s", "n", "rel_precision")
# "Most of the measured time": past this share, launching the work sets the pace.
HOST_BOUND_SHARE = 0.5
# What torch says when an op a backend lacks runs on the CPU (MPS: pytorch#77764).
_FALLBACK = re.compile(r"fall(?:s|ing)? ?back|fallback", re.IGNORECASE)
_ROUND_FLAGS_ORDER = ("noisy", "busy", "host-bound", "cpu-fallback")


def _measure(task: Task, device, settings: SweepSettings, should_stop) -> dict:
    def beat() -> None:  # between the long phases of a point; its answer waits for the loop
        if should_stop is not None:
            should_stop()

    prepared = None
    dtype = parse_dtype(task.dtype)
    threads = _threads_of(task)[1]
    try:
        devices.empty_cache(device)
        peak = devices.PeakMemory(device)  # before building: inputs and weights count
        with timing.cpu_threads(threads):
            prepared = task.workload.build(task.params, device, dtype)
            beat()  # building a model, and checking it below, can take seconds
            span = energy.Span(energy.meter_for(str(device)), then=peak.sample)
            result = timing.measure(
                prepared.fn, device, settings.timing, threads,
                should_stop=should_stop, after_call=span.after_call,
            )  # fmt: skip
            used = span.result(result)  # joules per call, over the calls just timed
            peak_bytes, driver_bytes = peak.peak_bytes(), devices.driver_memory_bytes(device)
            allowed = parse_dtype(variants.check_dtype(task.params, device.type, dtype))
            check = _check(prepared, allowed) if settings.check_outputs else {}
            beat()
            floor_s = timing.dispatch_floor_s(device, threads)
            implementation = prepared.implementation
    except _OUT_OF_MEMORY as error:
        return {"status": "failed", "message": f"out of memory: {units.one_line(error)}"}
    except (NotImplementedError, RuntimeError, TypeError) as error:
        text = units.one_line(error)
        status = "skipped" if any(m in text.lower() for m in _SKIP_MARKERS) else "failed"
        return {"status": status, "message": text}
    except Exception as error:  # any other failure belongs to this point, not the sweep
        return {"status": "failed", "message": units.one_line(error, typed=True)}
    finally:
        del prepared
        devices.empty_cache(device)
    fallbacks = [text for text in result.first_call_warnings if _FALLBACK.search(text)]
    notes = [task.verdict[1], check.get("note", "")]
    notes += [f"ran on the CPU: {units.one_line(t)}" for t in fallbacks]
    return {
        **_figures(result, task.cost),
        "first_call_s": result.first_call_s,
        "dispatch_floor_s": floor_s,
        "launch_s": result.launch_s,
        "peak_memory_bytes": peak_bytes,
        "driver_memory_bytes": driver_bytes,
        "max_rel_err": check.get("max_rel_err"),
        "implementation": implementation,
        **used,
        "flags": ",".join(
            [f for f in _ROUND_FLAGS_ORDER if f in _figures_flags(result, device.type)]
            + (["cpu-fallback"] if fallbacks else [])
            + check.get("flags", [])
        ),
        "rounds": 1,
        "status": "ok",
        "message": "; ".join(filter(None, notes)),
    }


def _figures_flags(result: timing.Measurement, device_type: str) -> set[str]:
    """The flags that follow from the times and the load alone."""
    needed = result.threads if device_type == "cpu" else 1  # a core to launch the work
    host_bound = result.launch_s >= HOST_BOUND_SHARE * result.median_s  # False for NaN
    return {
        *(["noisy"] if result.noisy else []),
        *(["busy"] if load.is_busy(result.busy_share, needed) else []),
        *(["host-bound"] if device_type != "cpu" and host_bound else []),
    }


def _figures(result: timing.Measurement, cost) -> dict:
    """Everything a row says that follows from its raw times: statistics, the median's
    interval for speedup intervals, and rates."""
    median_s = result.median_s
    low_s, high_s = stats.median_interval(result.times_s, stats.MEDIAN_CONFIDENCE)
    return {
        **{name: getattr(result, name) for name in (*_STATISTICS, "noisy")},
        "median_low_s": low_s,
        "median_high_s": high_s,
        "times_s": json.dumps([round(t, 9) for t in result.times_s]),
        "threads": result.threads,
        "busy_share": result.busy_share,
        "gflops_per_s": cost.flops / median_s / 1e9 if median_s > 0 else math.nan,
        "gb_per_s": cost.bytes_moved / median_s / 1e9 if median_s > 0 else math.nan,
    }


def merge_rounds(rows: Sequence[dict], target_precision: float = 0.02) -> dict:
    """A point measured in several rounds, as one row. Its figures come from the rounds
    measured while the machine was not busy, pooled (every round when none was); every
    round's raw times stay in ``rounds_times_s``, and the message says which were used."""
    latest = rows[-1]
    ok = [row for row in rows if row.get("status") == "ok"]
    if len(rows) == 1 or not ok:
        return {**latest, "rounds": len(rows)}
    quiet = [row for row in ok if "busy" not in _flags(row)]
    used = quiet or ok
    times = [t for row in used for t in stats.parse_times(row.get("times_s"))]
    base = used[-1]
    result = timing.Measurement(
        times_s=tuple(times), first_call_s=rows[0].get("first_call_s", math.nan), warmup_s=(),
        device=str(base["device"]), threads=int(base["threads"]), wall_s=0.0, loop_wall_s=0.0,
        stop_reason="rounds", target_precision=target_precision,
        launch_s=_median([r.get("launch_s") for r in used]),
        busy_share=max(float(r.get("busy_share") or 0.0) for r in used),
    )  # fmt: skip
    device_type = torch.device(str(base["device"])).type
    kept = [f for f in _flags(base) if f not in (*_ROUND_FLAGS_ORDER[:3], "suspect")]
    figures = _figures(result, _RowCost(base))
    rounds = [str(i + 1) for i, row in enumerate(rows) if row in used]
    said = f"measured in {len(rows)} rounds" + (
        f"; figures from round{'s' if len(rounds) > 1 else ''} {', '.join(rounds)}"
        if quiet and len(quiet) < len(ok) else "; busy in every round" if not quiet else ""
    )  # fmt: skip
    merged = {
        **base,
        **figures,
        "first_call_s": result.first_call_s,
        "launch_s": result.launch_s,
        "flags": ",".join(
            [f for f in _ROUND_FLAGS_ORDER if f in _figures_flags(result, device_type)] + kept
        ),
        "rounds": len(rows),
        "rounds_times_s": json.dumps([stats.parse_times(r.get("times_s")) for r in ok]),
        # Every round's time counts: a point that needs rounds costs them again next time.
        "wall_s": sum(float(r.get("wall_s") or 0.0) for r in rows),
        "message": "; ".join(filter(None, [said, str(base.get("message") or "")])),
    }
    return ceilings.judge_row(merged)


def _median(values) -> float:
    finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return float(np.median(finite)) if finite else math.nan


@dataclass(frozen=True)
class _RowCost:
    """A row's own work figures, where a merge has no ``Cost`` at hand."""

    row: dict

    @property
    def flops(self) -> float:
        return float(self.row.get("flops") or math.nan)

    @property
    def bytes_moved(self) -> float:
        return float(self.row.get("bytes") or math.nan)


def _check(prepared, dtype: torch.dtype) -> dict:
    """Compare the device's output with a CPU reference from the same inputs and weights."""
    if prepared.check is None:
        return {}
    pair = prepared.check()
    if pair is None:
        return {"note": prepared.check_note}
    error = relative_error(*pair)  # (actual, expected)
    too_far = error > TOLERANCE[dtype]
    flags = ["nonfinite"] if not math.isfinite(error) else ["mismatch"] if too_far else []
    note = prepared.check_note
    if flags:
        note = (
            f"output differs from the CPU reference: max_rel_err {error:.2g} > "
            f"{TOLERANCE[dtype]:g} allowed for {dtype_name(dtype)}" + (f" ({note})" if note else "")
        )
    # A NaN or inf output has no meaningful error size; the nonfinite flag says what happened,
    # and an infinite number would not survive export to CSV or Parquet.
    return {"max_rel_err": error if math.isfinite(error) else None, "flags": flags, "note": note}


def _device_name(device: torch.device) -> str:
    try:
        cpu = device.type == "cpu"
        return devices.cpu_model_name() if cpu else devices.accelerator_name(device)
    except Exception:  # a name is decoration; never let it fail a point
        return str(device)


def thread_counts(limit: int | None = None) -> list[int]:
    """1, 2, 4, ... up to every logical core, which is always included."""
    _, logical = devices.cpu_core_counts()
    top = min(limit or logical, logical)
    return [2**i for i in range(top.bit_length()) if 2**i < top] + [top]


def thread_backends(limit: int | None = None) -> list[Backend]:
    """One CPU backend per thread count: answers "is my CPU baseline fair?"."""
    return [Backend("cpu", count) for count in thread_counts(limit)]
