"""Variants on the pages, through AppTest: side by side per backend, speedups against any
backend and variant, and compiling never started by a slider alone."""

from __future__ import annotations

import core.measure.sweep
from tests.ui.apptest_helpers import assert_clean, open_page, texts
from ui import sidebar

# This machine's backends: the CPU against the accelerator, or one CPU thread against all.
FIRST, LAST = (b.label for b in core.measure.sweep.default_backends(sidebar.default_threads()))


def shown_backends(at) -> set[str]:
    return {b for frame in at.dataframe for b in frame.value.get("backend", [])}


def test_variants_run_side_by_side_and_speedups_read_against_the_chosen_one():
    at = open_page("pages/convolution.py", variant="eager,channels_last", size="8", channels="8,16")
    assert_clean(at)
    assert {f"{FIRST} · eager", f"{FIRST} · channels_last"} <= shown_backends(at)
    against = at.selectbox(key="against")
    assert against.value == f"{FIRST} · eager"
    assert f"{LAST} · channels_last" in against.options
    at = against.set_value(f"{LAST} · channels_last").run()
    assert_clean(at)
    (table,) = [f.value for f in at.dataframe if "speedup" in f.value]
    evens = table[table["speedup"].astype(str) == "1× (1–1×)"]["backend"]
    assert set(evens) == {f"{LAST} · channels_last"}, table[["backend", "speedup"]]


def test_compile_waits_for_a_click_and_says_why():
    at = open_page("pages/matmul.py", variant="compile")
    assert_clean(at)
    said = texts(at.caption)
    assert "torch.compile compiles each of" in said, said
    assert [b for b in at.button if b.label == "Run"]
    assert not shown_backends(at)  # nothing measured: no table yet


def test_the_shape_controls_reach_the_points():
    at = open_page("pages/matmul.py", size="64", m="256", k="N", batch="4")
    assert_clean(at)
    (table,) = [f.value for f in at.dataframe if "backend" in f.value]
    assert set(table["m"]) == {256} and set(table["batch"]) == {4}
    assert "k" not in table  # K left at N is no column of its own
    at = open_page("pages/convolution.py", channels="8", size="8", out_channels="16", stride="2")
    assert_clean(at)
    (table,) = [f.value for f in at.dataframe if "backend" in f.value]
    assert set(table["out_channels"]) == {16} and set(table["stride"]) == {2}


def test_a_long_run_on_battery_is_warned_about_before_it_starts(monkeypatch):
    from core.measure import machine_state

    monkeypatch.setattr(
        machine_state, "snapshot", lambda: {"power_source": "battery", "battery_percent": 30}
    )
    at = open_page("pages/matmul.py", variant="compile")
    assert_clean(at)
    assert "On battery power (30%)" in texts(at.warning)
