"""Intervals and verdicts on synthetic samples whose answer is known."""

import json

import numpy as np
import pytest

from core import stats, units
from core.keep import results

RNG = np.random.default_rng(7)


def _interval(base_times, times):
    base = stats.median_interval(base_times, stats.MEDIAN_CONFIDENCE)
    this = stats.median_interval(times, stats.MEDIAN_CONFIDENCE)
    return stats.ratio_interval(*base, *this)


def test_two_identical_samples_are_the_same():
    times = RNG.normal(1e-3, 1e-5, 200)
    low, high = _interval(times, times.copy())
    assert low < 1 < high
    assert stats.verdict(low, high) == "same"
    assert not stats.clear_winner(low, high)


def test_clearly_separated_samples_are_faster_or_slower():
    slow, fast = RNG.normal(2e-3, 2e-5, 100), RNG.normal(1e-3, 1e-5, 100)
    assert stats.verdict(*_interval(slow, fast)) == "faster"  # this one takes half the time
    assert stats.verdict(*_interval(fast, slow)) == "slower"
    low, high = _interval(slow, fast)
    assert low < 2 < high and stats.clear_winner(low, high)


def test_few_wide_samples_are_unsure():
    low, high = _interval([1.0, 1.5, 0.7], [1.2, 0.8, 1.1])
    assert stats.verdict(low, high) == "unsure"


def test_the_interval_covers_the_true_ratio_about_95_percent_of_the_time():
    covered = 0
    for _ in range(400):
        base, this = RNG.lognormal(0, 0.2, 30), RNG.lognormal(0, 0.2, 30) / 2
        low, high = _interval(base, this)
        covered += low <= 2 <= high
    assert covered / 400 >= 0.93  # conservative by construction: at least 95% in theory


def test_speedups_in_the_table_carry_their_interval():
    rows = []
    for backend, scale in (("cpu (1 thread)", 2e-3), ("cuda:0", 1e-3)):
        times = list(RNG.normal(scale, scale / 100, 50))
        rows.append({"workload": "matmul", "size": 512, "backend": backend, "dtype": "float32",
                     "status": "ok", "median_s": float(np.median(times)),
                     "times_s": json.dumps(times)})  # fmt: skip
    frame = results.add_speedup(results.to_frame(rows, ["size"]))
    gpu = frame[frame["backend"] == "cuda:0"].iloc[0]
    assert gpu["speedup_low"] < gpu["speedup"] < gpu["speedup_high"]
    text = units.speedup_range(gpu["speedup"], gpu["speedup_low"], gpu["speedup_high"])
    assert text.startswith("2") and "× (" in text and text.endswith("×)")


@pytest.mark.parametrize(
    ("value", "low", "high", "shown"),
    [(12.34, 11.8, 12.9, "12.3× (11.8–12.9×)"), (0.5, None, None, "0.5×"), (None, 1, 2, "")],
)
def test_speedup_range_text(value, low, high, shown):
    assert units.speedup_range(value, low, high) == shown
