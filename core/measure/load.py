"""What the rest of the machine did while a point was timed.

A busy machine breaks CPU figures without a sign: with one other program spinning on one
of two cores, two OpenMP threads waited for the thread that lost its core and came out 7×
slower than one thread, with a tight spread. The tell is the CPU time other processes used:
the whole machine's busy time (``psutil.cpu_times``) less this process's own.
"""

from __future__ import annotations

import collections
import os
import time
from dataclasses import dataclass

import psutil

# The kernel counts CPU time in ticks of 10 ms, so a shorter window cannot tell a spinning
# neighbour from none (over 0.15 s on two cores, a tick is 0.07 of a core); shorter points
# borrow the recent past (or wait) to reach this.
MIN_WINDOW_S = 0.15
# Older snapshots say nothing about the point now being timed.
LOOKBACK_S = 2.0
# Background daemons use a few percent of a core on a quiet machine; above this many cores
# of other work, a point that needs every core is short of one.
SLACK_CORES = 0.25


def logical_cores() -> int:
    return os.cpu_count() or 1


@dataclass(frozen=True)
class Snapshot:
    at_s: float  # perf_counter
    machine_busy_s: float  # CPU seconds the whole machine spent not idle, over all cores
    own_s: float  # CPU seconds of this process, all its threads


def _busy_s(times) -> float:
    # iowait is a waiting CPU, not a used one; steal is time another guest took from us.
    idle = getattr(times, "idle", 0.0) + getattr(times, "iowait", 0.0)
    total = sum(times)
    # guest time is already counted in user on Linux.
    total -= getattr(times, "guest", 0.0) + getattr(times, "guest_nice", 0.0)
    return total - idle


_PROCESS = psutil.Process()
_recent: collections.deque[Snapshot] = collections.deque(maxlen=256)


def snapshot() -> Snapshot:
    own = _PROCESS.cpu_times()
    taken = Snapshot(time.perf_counter(), _busy_s(psutil.cpu_times()), own.user + own.system)
    _recent.append(taken)
    return taken


def other_cores(start: Snapshot, end: Snapshot) -> float:
    """Cores' worth of CPU that other processes used between two snapshots."""
    wall_s = end.at_s - start.at_s
    if wall_s <= 0:
        return 0.0
    others_s = (end.machine_busy_s - start.machine_busy_s) - (end.own_s - start.own_s)
    return min(max(others_s / wall_s, 0.0), float(logical_cores()))


def window(start: Snapshot) -> tuple[Snapshot, Snapshot]:
    """A window ending now that began at ``start`` and spans at least ``MIN_WINDOW_S``: a
    short point borrows a recent earlier snapshot, or, with none old enough, waits until the
    oldest recent one is (a point with no recent snapshot at all waits from ``start``)."""
    end = snapshot()
    if end.at_s - start.at_s >= MIN_WINDOW_S:
        return start, end
    # A copy: other sessions' threads append to it.
    recent = [s for s in list(_recent) if s.at_s >= end.at_s - LOOKBACK_S]
    earlier = [s for s in recent if s.at_s <= end.at_s - MIN_WINDOW_S]
    if earlier:
        return earlier[-1], end
    begin = min([start, *recent], key=lambda s: s.at_s)
    time.sleep(max(MIN_WINDOW_S - (end.at_s - begin.at_s), 0.0))
    return begin, snapshot()


def settle(max_wait_s: float = 1.0, step_s: float = 0.1) -> float:
    """Wait until other programs go quiet (a browser drawing what the app just sent it), at
    most ``max_wait_s``; returns the seconds waited."""
    began = previous = snapshot()
    while previous.at_s - began.at_s < max_wait_s:
        time.sleep(step_s)
        now = snapshot()
        if other_cores(previous, now) <= SLACK_CORES:
            return now.at_s - began.at_s
        previous = now
    return previous.at_s - began.at_s


def busy_share(start: Snapshot, end: Snapshot) -> float:
    """Other processes' CPU use as a share of the whole machine (0 to 1)."""
    return other_cores(start, end) / logical_cores()


def is_busy(busy_share_: float | None, cores_needed: int) -> bool:
    """Whether other work left fewer free cores than a point needed: a CPU point needs its
    thread count, an accelerator point one core to launch its work."""
    if busy_share_ is None or busy_share_ != busy_share_:  # unknown (NaN): not judged
        return False
    spare = logical_cores() - min(cores_needed, logical_cores())
    return busy_share_ * logical_cores() > spare + SLACK_CORES


@dataclass(frozen=True)
class MachineLoad:
    """A second of watching the machine before a long run."""

    other_cores: float
    logical_cores: int
    busiest: tuple[tuple[str, int, float], ...]  # (name, pid, cores' worth), busiest first

    @property
    def busy(self) -> bool:
        # A long run times every thread count, the largest needing every core.
        return is_busy(self.other_cores / self.logical_cores, self.logical_cores)

    def sentence(self) -> str:
        """One line for the user, empty when the machine is quiet."""
        if not self.busy:
            return ""
        names = ", ".join(f"{name} (pid {pid}, {cores:.0%} of a core)"
                          for name, pid, cores in self.busiest)  # fmt: skip
        return (
            f"The machine is busy: other programs used {self.other_cores:.1f} of its "
            f"{self.logical_cores} cores in the last second"
            + (f" (busiest: {names})" if names else "")
            + ". CPU figures measured now may be too slow; they will be flagged busy."
        )


def check_machine(duration_s: float = 1.0, top: int = 3) -> MachineLoad:
    """Watch the machine for ``duration_s`` and name the busiest other processes."""
    me = os.getpid()
    processes = []
    for process in psutil.process_iter(["name"]):
        if process.pid == me:
            continue
        try:
            process.cpu_percent(None)  # the first call only starts the count
            processes.append(process)
        except (psutil.Error, OSError):
            continue
    start = snapshot()
    time.sleep(duration_s)
    end = snapshot()
    used = []
    for process in processes:
        try:
            cores = process.cpu_percent(None) / 100
        except (psutil.Error, OSError):  # ended or not ours to read
            continue
        if cores >= 0.05:
            used.append((process.info.get("name") or "?", process.pid, cores))
    used.sort(key=lambda entry: -entry[2])
    return MachineLoad(other_cores(start, end), logical_cores(), tuple(used[:top]))
