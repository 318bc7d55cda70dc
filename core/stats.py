"""How sure a median, and a ratio of two medians, is: distribution-free intervals from the
raw repeat times, with no randomness, so the same rows always give the same answer.

A speedup is the ratio of two medians. Each median gets an order-statistics interval at
97.5%; both hold at once with probability at least 0.975² ≈ 95% (the samples are
independent), and whenever both hold the ratio lies between the ratios of their ends. So
the speedup interval covers at least 95%; it is conservative, never too narrow.
"""

from __future__ import annotations

import json
import math
from statistics import NormalDist

import numpy as np

# Each median's own confidence, so that the ratio of two covers at least 95%.
MEDIAN_CONFIDENCE = 0.975
# Two figures within this factor of each other are "the same" when the interval says so.
SAME_WITHIN = 0.05
VERDICTS = ("faster", "slower", "same", "unsure")


def median_interval(times_s, confidence: float = 0.95) -> tuple[float, float]:
    """Order-statistics interval of the median. With few samples it widens to the full
    range (3 samples cover the median only 75% of the time), which is the honest answer."""
    ordered = np.sort(np.asarray(times_s, dtype=np.float64))
    n = len(ordered)
    if n == 0:
        return math.nan, math.nan
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    half_width = z * math.sqrt(n) / 2
    low = max(math.floor(n / 2 - half_width), 1)
    high = min(math.ceil(n / 2 + half_width) + 1, n)
    return float(ordered[low - 1]), float(ordered[high - 1])


def parse_times(text: object) -> list[float]:
    """A row's ``times_s`` (JSON list) as floats; [] when missing or unreadable."""
    if not isinstance(text, str) or not text:
        return []
    try:
        values = json.loads(text)
    except ValueError:
        return []
    if not isinstance(values, list):
        return []
    flat = [v for part in values for v in (part if isinstance(part, list) else [part])]
    return [float(v) for v in flat if isinstance(v, (int, float)) and not isinstance(v, bool)]


def ratio_interval(
    base_low_s: float, base_high_s: float, low_s: float, high_s: float
) -> tuple[float, float]:
    """Interval of base / this from the two medians' intervals (see the module text)."""
    if not (low_s > 0 and high_s > 0 and base_low_s > 0 and base_high_s > 0):
        return math.nan, math.nan
    return base_low_s / high_s, base_high_s / low_s


def verdict(low: float, high: float, same_within: float = SAME_WITHIN) -> str:
    """faster / slower / same / unsure for a ratio's interval (above 1: faster). "same"
    needs the whole interval within ``same_within`` of 1; an interval holding 1 but wider
    than that is "unsure"."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return "unsure"
    if low >= 1 / (1 + same_within) and high <= 1 + same_within:
        return "same"
    if low > 1:
        return "faster"
    if high < 1:
        return "slower"
    return "unsure"


def clear_winner(low: float, high: float) -> bool:
    """A speedup whose interval excludes 1: one side is faster beyond doubt."""
    return math.isfinite(low) and math.isfinite(high) and (low > 1 or high < 1)
