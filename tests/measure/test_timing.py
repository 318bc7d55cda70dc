"""The timer against work of known duration, on a substituted asynchronous device."""

import time

import numpy as np
import pytest
import torch

from core.measure import timing


class FakeAsyncDevice:
    """Each call queues ``work_s`` of work and returns at once, like a GPU launch;
    only ``sync`` waits for the queue to drain. Records the order of calls."""

    def __init__(self, work_s: float):
        self.work_s = work_s
        self.busy_until = 0.0
        self.log: list[str] = []

    def fn(self):
        now = time.perf_counter()
        self.busy_until = max(now, self.busy_until) + self.work_s
        self.log.append("fn")

    def sync(self, device):
        delay = self.busy_until - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        self.log.append("sync")


def test_queued_work_is_counted_because_every_repeat_synchronizes():
    fake = FakeAsyncDevice(work_s=0.004)
    result = timing.measure(fake.fn, "cpu", timing.TimingSettings(budget_s=0.3), sync=fake.sync)
    # Without the synchronize the call itself takes microseconds; the median must
    # include the queued 4 ms.
    assert result.median_s >= 0.004
    assert result.first_call_s >= 0.004


def test_synchronize_is_called_once_per_timed_repeat():
    fake = FakeAsyncDevice(work_s=0.001)
    result = timing.measure(fake.fn, "cpu", timing.TimingSettings(budget_s=0.2), sync=fake.sync)
    assert fake.log[0] == "sync"  # nothing queued earlier leaks into the first call
    calls = fake.log[1:]
    assert calls == ["fn", "sync"] * (len(calls) // 2)
    assert calls.count("fn") == 1 + len(result.warmup_s) + result.n


def test_warmup_is_at_least_two_calls_and_first_call_is_kept_apart():
    durations = iter([0.03, 0.01] + [0.002] * 10_000)

    def fn():
        time.sleep(next(durations))

    result = timing.measure(fn, "cpu", timing.TimingSettings(budget_s=0.5))
    assert result.first_call_s >= 0.03
    assert len(result.warmup_s) >= 2
    assert max(result.times_s) < result.first_call_s


def test_never_fewer_than_three_repeats_even_past_the_budget():
    result = timing.measure(lambda: time.sleep(0.02), "cpu", timing.TimingSettings(budget_s=0.001))
    assert result.n == 3
    assert result.stop_reason in ("budget", "precision")


def test_noisy_work_stops_on_the_budget_and_is_flagged():
    rng = np.random.default_rng(0)

    def fn():
        time.sleep(float(rng.choice([0.0005, 0.004])))

    result = timing.measure(fn, "cpu", timing.TimingSettings(budget_s=0.15))
    assert result.stop_reason == "budget"
    assert result.noisy


def test_steady_work_stops_once_the_median_is_precise():
    result = timing.measure(
        lambda: time.sleep(0.002), "cpu", timing.TimingSettings(budget_s=5, target_precision=0.05)
    )
    assert result.stop_reason == "precision"
    assert result.rel_precision <= 0.05


def test_statistics_come_from_the_raw_times():
    times = tuple(float(t) for t in range(1, 101))
    m = timing.Measurement(
        times_s=times,
        first_call_s=1.0,
        warmup_s=(),
        device="cpu",
        threads=1,
        wall_s=sum(times),
        loop_wall_s=sum(times),
        stop_reason="budget",
    )
    assert m.n == 100
    assert m.median_s == pytest.approx(50.5)
    assert m.p25_s == pytest.approx(np.percentile(times, 25))
    assert m.p75_s == pytest.approx(np.percentile(times, 75))
    assert (m.min_s, m.max_s, m.mean_s) == (1.0, 100.0, pytest.approx(50.5))
    low, high = timing.median_interval(np.asarray(times))
    assert low < 50.5 < high
    # order statistics 40 and 61 of 100 bound the median at 95%
    assert (low, high) == (40.0, 61.0)
    assert m.efficiency == pytest.approx(100 * 50.5 / 5050)


def test_thread_count_is_set_while_measuring_and_restored():
    before = torch.get_num_threads()
    seen = []
    result = timing.measure(
        lambda: seen.append(torch.get_num_threads()),
        "cpu",
        timing.TimingSettings(budget_s=0.05),
        threads=1,
    )
    assert set(seen) == {1}
    assert result.threads == 1
    assert torch.get_num_threads() == before


def test_dispatch_floor_is_a_small_positive_time():
    floor = timing.dispatch_floor_s("cpu")
    assert floor > 0


def test_pipelined_timing_needs_device_events_and_is_ignored_on_the_cpu():
    calls = []
    result = timing.measure(
        lambda: calls.append(1), "cpu", timing.TimingSettings(budget_s=0.05, pipelined=True)
    )
    assert result.timer == "perf_counter"
    assert len(calls) == 1 + len(result.warmup_s) + result.n
