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
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from core.measure import devices

Z_95 = 1.959964
# Below this many repeats an order-statistics interval of the median is too coarse to
# trust (with 3 samples, min..max covers the median only 75% of the time), so the
# precision target cannot stop the loop earlier; the time budget still can, from 3.
PRECISION_MIN_REPEATS = 20
# Launch latency is hidden behind queued device work only for calls shorter than this;
# longer calls dwarf it anyway.
GUARD_MAX_CALL_S = 2e-3
GUARD_MAX_S = 100e-6


def median_interval(times_s: np.ndarray) -> tuple[float, float]:
    """Distribution-free 95% interval of the median from order statistics. With few
    samples it widens to the full range, which is the honest answer."""
    ordered = np.sort(times_s)
    n = len(ordered)
    half_width = Z_95 * math.sqrt(n) / 2
    low = max(math.floor(n / 2 - half_width), 1)
    high = min(math.ceil(n / 2 + half_width) + 1, n)
    return float(ordered[low - 1]), float(ordered[high - 1])


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


def _events_usable(device: torch.device, settings: TimingSettings) -> bool:
    # MPS events have hung and returned reversed intervals (pytorch#162872), and the
    # CPU has none: both are timed with perf_counter around a synchronize.
    return settings.use_events and device.type not in ("cpu", "mps") and hasattr(torch, "Event")


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
) -> Measurement:
    """Time ``fn`` on ``device``. Its inputs must already be built: only the call is timed."""
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
            return time.perf_counter() - start

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
            return _events_s(device, sync, fn, events)

        timed_call = events_call if use_events else wall_call
        sync(device)  # nothing queued earlier may leak into the first call
        first_call_s = wall_call()
        point_start = time.perf_counter()

        warmup_s: list[float] = []
        warmup_budget_s = settings.budget_s * settings.warmup_budget_share
        while len(warmup_s) < 50 and (
            len(warmup_s) < settings.min_warmup
            or (not _settled(warmup_s) and time.perf_counter() - point_start < warmup_budget_s)
        ):
            warmup_s.append(timed_call())
        if guard is not None and min(warmup_s) < GUARD_MAX_CALL_S:
            start = time.perf_counter()
            fn()
            enqueue_s = time.perf_counter() - start  # the host's launch alone
            sync(device)
            guard_s = min(2 * enqueue_s, GUARD_MAX_S)

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
    )


def dispatch_floor_s(device: torch.device | str, threads: int | None = None) -> float:
    """Median time of a trivial op: nothing on this device can be timed faster than this."""
    return _floor_s(str(torch.device(device)), threads or torch.get_num_threads())


@functools.cache
def _floor_s(device: str, threads: int) -> float:
    tiny = torch.zeros(1, device=device)
    settings = TimingSettings(budget_s=0.2, target_precision=0.05)
    return measure(lambda: tiny.add_(1.0), device, settings, threads).median_s
