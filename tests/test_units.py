"""core.units: every number, point and error as the app, the CLI and the report write it."""

import math

import numpy as np
import pandas as pd
import pytest

from core import units


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.00042, "420 µs"),
        (2.0, "2 s"),
        (0.0123, "12.3 ms"),
        (3e-9, "3 ns"),
        (123.456, "123 s"),
        (None, "-"),
        (math.nan, "-"),
        (math.inf, "-"),
        (pd.NA, "-"),
    ],
)
def test_seconds(value, text):
    assert units.seconds(value) == text


def test_duration_in_words():
    assert units.duration(0.2) == "under a second"
    assert units.duration(40) == "about 40 s"
    assert units.duration(89) == "about 89 s"
    assert units.duration(600) == "about 10 min"
    assert units.duration(None) == "-"


def test_bytes_in_binary_and_si_units():
    assert units.bytes_(3 * 2**30) == "3.0 GiB"
    assert units.bytes_(16 * 1024**3) == "16.0 GiB"
    assert units.bytes_(1536) == "1.5 KiB"
    assert units.bytes_(51 * 2**20) == "51.0 MiB"
    assert units.bytes_(512) == "512 B"
    assert units.bytes_si(4.2e9) == "4.2 GB"
    assert units.bytes_si(1e6) == "1.0 MB"
    assert units.bytes_si(999) == "999 B"
    assert units.bytes_(None) == units.bytes_si(math.nan) == "unknown"


def test_rates_in_si_units():
    assert units.rate(5.12e11) == "512 GB/s"
    assert units.rate(1.23e13, "FLOP") == "12.3 TFLOP/s"
    assert units.rate(2.5e8, "FLOP") == "250 MFLOP/s"
    assert units.rate(12) == "12 B/s"
    assert units.rate(None) == "-"


@pytest.mark.parametrize(
    ("values", "label", "factor"),
    [([5e-6, 4e-6, 6e-6], "µs", 1e6), ([5e-3, 1e-4, 2.0], "ms", 1e3), ([5.0], "s", 1.0)],
)
def test_time_unit(values, label, factor):
    assert units.time_unit(pd.Series(values)) == (label, factor)


def test_time_unit_ignores_nan_and_handles_empty():
    assert units.time_unit([float("nan"), 5e-6, None]) == ("µs", 1e6)
    assert units.time_unit([1e-8]) == ("µs", 1e6)  # no axis in ns
    assert units.time_unit([]) == ("s", 1.0)


def test_bytes_unit():
    assert units.bytes_unit([3 * 2**30]) == ("GiB", 2.0**-30)
    assert units.bytes_unit([3 * 2**20]) == ("MiB", 2.0**-20)
    assert units.bytes_unit([300]) == ("KiB", 2.0**-10)
    assert units.bytes_unit([]) == ("GiB", 2.0**-30)


@pytest.mark.parametrize(
    ("number", "text"),
    [
        (512, "512"),
        (1000, "1000"),
        (30_000, "3e4"),
        (25_000, "25000"),
        (1_000_000, "1e6"),
        (1e6, "1e6"),
        (np.int64(10**9), "1e9"),
        ("1000000", "1e6"),
        (2.5, "2.5"),
        (-30_000, "-3e4"),
        (None, "?"),
    ],
)
def test_compact_house_style(number, text):
    assert units.compact(number) == text


def test_compact_from_a_thousand_for_slider_stops():
    assert [units.compact(n, from_abs=1e3) for n in (512, 1e3, 3e3, 1e9)] == [
        "512",
        "1e3",
        "3e3",
        "1e9",
    ]


@pytest.mark.parametrize(
    ("number", "text"),
    [
        (64, "64"),
        (1500, "1500"),
        (3.2e5, "3.2e5"),
        (22_012.3, "2.2e4"),
        (100_000.00000001, "1e5"),
        (10**2.5, "320"),
        (6.37, "6.4"),
        (float("nan"), "?"),
    ],
)
def test_about_rounds_estimates_to_two_digits(number, text):
    assert units.about(number) == text


def test_speedup_and_ratio():
    assert units.speedup(2.0) == "2.0×"
    assert units.speedup(31.6) == "32×"
    assert units.speedup(0.05) == "0.05×"
    assert units.speedup(0.5) == "0.5×"
    assert units.speedup(1.0) == "1.0×"
    assert units.speedup(math.nan) == ""
    assert units.ratio(2.0) == "2×"
    assert units.ratio(0.53124) == "0.531×"
    assert units.ratio(None) == "-"


def test_point_label():
    params = {"model": "resnet18", "batch": np.int64(64), "image_size": 64.0}
    assert units.point_label("train", params) == "train resnet18 batch=64 image_size=64"
    point = {"op": "add", "size": 1e6}
    assert units.point_label("elementwise", point) == "elementwise add size=1e6"
    named = {"op": "add", "size": 1_000_000, "kernel": None, "channels": math.nan}
    assert units.point_label(None, named, all_named=True) == "op=add size=1e6"
    assert units.point_label(None, {}) == ""


def test_one_line():
    assert units.one_line(ValueError("  first\nsecond")) == "first"
    assert units.one_line(ValueError()) == "ValueError"
    assert units.one_line(RuntimeError("x" * 500)) == "x" * 300
    assert units.one_line(KeyError("k"), typed=True) == "KeyError: 'k'"
    assert units.one_line(OSError(), typed=True) == "OSError"


def test_plain_and_missing():
    assert type(units.plain(np.float64(1.5))) is float
    assert type(units.plain(np.int64(3))) is int
    assert units.plain(np.str_("a")) == "a"
    for gone in (None, math.nan, np.float64("nan"), pd.NA, pd.NaT):
        assert units.missing(gone)
        assert units.plain(gone) is None
    assert units.plain(math.inf) == math.inf
    assert units.plain(math.inf, finite=True) is None
    assert units.plain(pd.Timestamp("2026-01-02 03:04")) == "2026-01-02T03:04:00"
    assert not units.missing([1, None]) and not units.missing("")


@pytest.mark.parametrize(
    ("number", "text"), [(512, "512"), (1000, "1000"), (30_000, "3e4"), (1_000_000, "1e6")]
)
def test_compact_numbers_for_links(number, text):
    assert units.compact(number) == text


def test_decade_stops_cover_the_range_evenly_on_a_log_axis():
    assert units.decade_stops(1e3, 1e5) == [1_000, 3_000, 10_000, 30_000, 100_000]


def test_echo_escapes_terminal_control_and_cuts_long_input():
    assert units.echo("\x1b]0;PWNED\x07\x1b[2J") == "\\x1b]0;PWNED\\x07\\x1b[2J"
    assert units.echo("x" * 10_000) == "x" * 60 + "…"
    assert units.echo("size=1e3", limit=4) == "size…"
