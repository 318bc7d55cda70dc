"""Timing one closure on one device, truthfully, by these rules:
- every timed repeat ends with a synchronize, so queued device work is counted;
- warm-up runs until the time settles; the very first call is kept apart;
- repeats stop when the median is known to the target precision or the budget is spent;
- the raw per-repeat seconds are kept, and every statistic is derived from them.
"""

from __future__ import annotations

import functools
import math
import time
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from core.measure import devices, load
from core.stats import median_interval

# Below this many repeats an order-statistics interval of the median is too coarse to
# trust (with 3 samples, min..max covers the median only 75% of the time), so the
# precision target cannot stop the loop earlier; the time budget still can, from 3.
PRECISION_MIN_REPEATS = 20
# Launch latency is hidden behind queued device work only for calls shorter than this;
# longer calls dwarf it anyway.
GUARD_MAX_CALL_S = 2e-3
GUARD_MAX_S = 100e-6


def _rel_precision(times_s, if_not_positive: float) -> float:
    """Half-width of the median's 95% interval, relative to the median."""
    median = float(np.median(times_s))
    if median <= 0:
        return if_not_positive
    low, high = median_interval(times_s)
    return (high - low) / 2 / median


def _statistic(of_times: Callable[[np.ndarray], object]) -> property:
    return property(lambda self: float(of_times(np.asarray(self.times_s, dtype=np.float64))))


def _share(part_s: float, whole_s: float) -> float:
    return part_s / whole_s if whole_s > 0 else 0.0


@dataclass(frozen=True)
class Measurement:
    """Raw repeat times of one closure on one device, with statistics derived from them."""

    times_s: tuple[float, ...]
    first_call_s: float
    warmup_s: tuple[float, ...]
    device: str
    threads: int
    wall_s: float  # warm-up and repeats; the first call is reported apart
    loop_wall_s: float  # the repeat loop alone, overheads between repeats included
    stop_reason: str  # precision, budget, max_repeats or stopped
    cold_cache: bool = False
    target_precision: float = 0.02
    timer: str = "perf_counter"  # perf_counter, events, or events-pipelined
    guard_s: float = 0.0  # device work queued before each timed call to hide its launch
    # Host seconds to launch one call without waiting for it (accelerators only): when it
    # is most of the median, the CPU launching kernels sets the pace, not the device.
    launch_s: float = math.nan
    busy_share: float = math.nan  # other processes' share of the machine while timed
    first_call_warnings: tuple[str, ...] = ()  # e.g. an op falling back to the CPU

    median_s = _statistic(np.median)
    p25_s = _statistic(lambda times_s: np.percentile(times_s, 25))
    p75_s = _statistic(lambda times_s: np.percentile(times_s, 75))
    min_s = _statistic(np.min)
    max_s = _statistic(np.max)
    mean_s = _statistic(np.mean)
    n = property(lambda self: len(self.times_s))
    rel_precision = property(lambda self: _rel_precision(self.times_s, math.inf))

    # Shares of the point's wall time (first call aside), and of the repeat loop's, spent
    # inside timed repeats.
    efficiency = property(lambda self: _share(self.n * self.median_s, self.wall_s))
    loop_efficiency = property(lambda self: _share(self.n * self.median_s, self.loop_wall_s))

    @property
    def noisy(self) -> bool:
        """The median is not to be trusted to a few percent: say so next to it."""
        iqr_ratio = _share(self.p75_s - self.p25_s, self.median_s)
        return self.rel_precision > max(2.5 * self.target_precision, 0.05) or iqr_ratio > 0.25


@dataclass
class TimingSettings:
    """What shapes a measurement; recorded with every run."""

    budget_s: float = 1.0  # per point and backend, warm-up included
    target_precision: float = 0.02
    min_repeats: int = 3
    max_repeats: int = 10_000
    min_warmup: int = 2
    warmup_budget_share: float = 0.25
    cold_cache: bool = False
    use_events: bool = True  # device events where the backend has trustworthy ones
    # Time each call behind an untimed one, as in a loop that never waits: the device
    # then never idles while the host launches the timed call. Costs a second call per
    # repeat, so it is opt-in; only event-timed devices can do it.
    pipelined: bool = False


@contextmanager
def cpu_threads(threads: int | None):
    """Run with ``threads`` intra-op threads and put the old count back afterwards."""
    previous = torch.get_num_threads()
    if threads is not None and threads != previous:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        if torch.get_num_threads() != previous:
            torch.set_num_threads(previous)


@contextmanager
def _warn_always():
    """torch gives some warnings once per process; a point must see its own."""
    previous = torch.is_warn_always_enabled()
    torch.set_warn_always(True)
    try:
        yield
    finally:
        torch.set_warn_always(previous)


# MPS events hung in elapsed_time() and returned reversed intervals (pytorch#162872) until
# they were timed with the command buffer's GPUEndTime (pytorch PR #196395, September 2026).
# Which release first carries that fix could not be confirmed here, so events are tried on
# MPS only from the first release cut surely after it; before, perf_counter around a
# synchronize it is. A hang cannot be caught by the agreement check, hence the version gate.
MPS_EVENTS_FIXED_IN = (2, 15)
# Events time the device alone, perf_counter adds a launch and a wake-up: on a call of
# milliseconds the two agree within this share, and a broken event timer is far off.
EVENTS_AGREE_SHARE = 0.25


def _events_usable(device: torch.device, settings: TimingSettings) -> bool:
    # The CPU has no events; it is timed with perf_counter (a synchronize is a no-op there).
    if not settings.use_events or device.type == "cpu" or not hasattr(torch, "Event"):
        return False
    if device.type != "mps":
        return True
    fixed = torch.torch_version.TorchVersion(torch.__version__) >= MPS_EVENTS_FIXED_IN
    return fixed and events_agree(str(device))[0]


@functools.cache
def events_agree(device: str, work: Callable[[], object] | None = None) -> tuple[bool, str]:
    """(agree, why): whether device events time ``work`` (by default a few milliseconds of
    matrix products) as perf_counter around a synchronize does. A reversed, empty or far-off
    interval, or an event that raises, is rejected. Probed once per device and process."""
    where = torch.device(device)
    try:
        if work is None:
            a = torch.ones(1024, 1024, device=where)
            work = lambda: [a @ a for _ in range(8)]  # noqa: E731
        work()  # warm: the first call may compile or load kernels
        devices.synchronize(where)
        pairs = []
        for _ in range(3):
            start, end = _event_pair(where)
            begin = time.perf_counter()
            start.record()
            work()
            end.record()
            devices.synchronize(where)
            pairs.append((start.elapsed_time(end) / 1e3, time.perf_counter() - begin))
    except (RuntimeError, TypeError, NotImplementedError) as error:  # torch refuses reversed
        return False, f"events failed: {str(error).splitlines()[0] if str(error) else error!r}"
    events_s, wall_s = (float(np.median(side)) for side in zip(*pairs, strict=True))
    said = f"events {events_s * 1e3:.3g} ms, perf_counter {wall_s * 1e3:.3g} ms"
    if not events_s > 0:
        return False, f"reversed or empty event interval ({said})"
    if abs(events_s - wall_s) > EVENTS_AGREE_SHARE * wall_s:
        return False, f"events off perf_counter by over {EVENTS_AGREE_SHARE:.0%} ({said})"
    return True, f"events agree with perf_counter ({said})"


def _event_pair(device: torch.device) -> list[torch.Event]:
    return [torch.Event(device=device, enable_timing=True) for _ in range(2)]


def _events_s(device: torch.device, sync, call: Callable[[], object], events=None) -> float:
    """Device time of ``call`` between two recorded events, read after ``sync``."""
    start, end = events or _event_pair(device)
    start.record()
    call()
    end.record()
    sync(device)
    return start.elapsed_time(end) / 1e3


def _settled(warmup_s: list[float]) -> bool:
    """Warm-up is over once the latest call is no longer a new low by more than 5%."""
    return len(warmup_s) >= 2 and warmup_s[-1] >= 0.95 * min(warmup_s[:-1])


@functools.cache
def _launch_guard(device: torch.device) -> Callable[[float], None] | None:
    """A way to keep ``device`` busy for a given time without touching memory, or None:
    CUDA has a spin kernel; elsewhere small calls include the launch latency. Calibrated
    once per device and process."""
    sleep = getattr(torch.cuda, "_sleep", None) if device.type == "cuda" else None
    if sleep is None:
        return None
    cycles = 1_000_000
    sleep(cycles)  # the first launch loads the kernel
    rate = cycles / _events_s(device, devices.synchronize, lambda: sleep(cycles))
    return lambda seconds: sleep(int(seconds * rate))


def measure(
    fn: Callable[[], object],
    device: torch.device | str,
    settings: TimingSettings | None = None,
    threads: int | None = None,
    sync: Callable[[torch.device], None] = devices.synchronize,
    should_stop: Callable[[], bool] | None = None,
    after_call: Callable[[], None] | None = None,
) -> Measurement:
    """Time ``fn`` on ``device``. Its inputs must already be built: only the call is timed.
    ``after_call`` runs after every call, outside the timed interval (memory sampling)."""
    settings = settings or TimingSettings()
    device = torch.device(device)
    use_events = _events_usable(device, settings)
    pipelined = settings.pipelined and use_events
    with cpu_threads(threads):
        used_threads = torch.get_num_threads()
        # Larger than any current GPU's last-level cache, so each repeat starts cold.
        cold = settings.cold_cache and device.type != "cpu"
        flush = torch.empty(64 * 1024**2, dtype=torch.int32, device=device).zero_ if cold else None
        guard = _launch_guard(device) if use_events and not pipelined else None
        guard_s = 0.0
        events = _event_pair(device) if use_events else None

        def wall_call() -> float:
            if flush is not None:
                flush()
                sync(device)
            start = time.perf_counter()
            fn()
            sync(device)
            elapsed_s = time.perf_counter() - start
            if after_call is not None:
                after_call()
            return elapsed_s

        def events_call() -> float:
            if pipelined:
                fn()  # keeps the device busy while the timed call is launched
            if flush is not None:
                flush()  # queued before the start event, so it is not timed
            if guard is not None and guard_s > 0:
                # After a synchronize the device idles, so the start event would fire at
                # once and the interval would include the host's launch of fn. Queued work
                # keeps the device busy until fn is enqueued, as in a running program.
                guard(guard_s)
            elapsed_s = _events_s(device, sync, fn, events)
            if after_call is not None:
                after_call()
            return elapsed_s

        timed_call = events_call if use_events else wall_call
        sync(device)  # nothing queued earlier may leak into the first call
        with warnings.catch_warnings(record=True) as caught, _warn_always():
            # Ops a backend lacks may run on the CPU with only a warning (the MPS fallback),
            # given by the first call alone.
            warnings.simplefilter("always")
            first_call_s = wall_call()
        load_start = load.snapshot()
        point_start = time.perf_counter()

        warmup_s: list[float] = []
        warmup_budget_s = settings.budget_s * settings.warmup_budget_share
        while len(warmup_s) < 50 and (
            len(warmup_s) < settings.min_warmup
            or (not _settled(warmup_s) and time.perf_counter() - point_start < warmup_budget_s)
        ):
            warmup_s.append(timed_call())
            if should_stop is not None and should_stop():  # also the app's heartbeat
                break
        launch_s = _launch_s(fn, device, sync, min(warmup_s)) if device.type != "cpu" else math.nan
        if guard is not None and min(warmup_s) < GUARD_MAX_CALL_S:
            guard_s = min(2 * launch_s, GUARD_MAX_S)

        times_s: list[float] = []
        loop_start = time.perf_counter()
        stop_reason = "max_repeats"
        while len(times_s) < settings.max_repeats:
            times_s.append(timed_call())
            n = len(times_s)
            if n < settings.min_repeats:
                continue
            check_precision = n >= PRECISION_MIN_REPEATS and (n < 50 or n % 10 == 0)
            if check_precision and _rel_precision(times_s, 0.0) <= settings.target_precision:
                stop_reason = "precision"
                break
            if time.perf_counter() - point_start >= settings.budget_s:
                stop_reason = "budget"
                break
            if should_stop is not None and should_stop():
                stop_reason = "stopped"
                break
        end = time.perf_counter()
        busy_share = load.busy_share(*load.window(load_start))
    return Measurement(
        times_s=tuple(times_s),
        first_call_s=first_call_s,
        warmup_s=tuple(warmup_s),
        device=str(device),
        threads=used_threads,
        wall_s=end - point_start,
        loop_wall_s=end - loop_start,
        stop_reason=stop_reason,
        cold_cache=settings.cold_cache,
        target_precision=settings.target_precision,
        timer=("events-pipelined" if pipelined else "events") if use_events else "perf_counter",
        guard_s=guard_s,
        launch_s=launch_s,
        busy_share=busy_share,
        first_call_warnings=tuple(dict.fromkeys(str(w.message) for w in caught)),
    )


def launch_tries(call_s: float) -> int:
    """How many untimed calls measure the launch time: three, or one for long calls."""
    return 3 if call_s < 0.05 else 1


def _launch_s(fn: Callable[[], object], device: torch.device, sync, call_s: float) -> float:
    """The host's time to launch ``fn`` onto an idle device, without waiting for it: the
    median of three tries, or one for calls long enough that a try costs real time."""
    tries = []
    for _ in range(launch_tries(call_s)):
        start = time.perf_counter()
        fn()
        tries.append(time.perf_counter() - start)
        sync(device)
    return float(np.median(tries))


def dispatch_floor_s(device: torch.device | str, threads: int | None = None) -> float:
    """Median time of a trivial op: nothing on this device can be timed faster than this."""
    return _floor_s(str(torch.device(device)), threads or torch.get_num_threads())


@functools.cache
def _floor_s(device: str, threads: int) -> float:
    tiny = torch.zeros(1, device=device)
    settings = TimingSettings(budget_s=0.2, target_precision=0.05)
    return measure(lambda: tiny.add_(1.0), device, settings, threads).median_s
