"""The Streamlit app through AppTest: every page loads without a traceback, links set the
widgets, widgets drive one sweep, charts and tables carry what was measured, and bad
input of any kind becomes a message on screen.

Sizes are tiny and the point budget is 0.1 s, so the file runs in about a minute and a
half on a 2-core CPU. Nothing here compares speeds: only shapes and messages.
"""

from __future__ import annotations

import dataclasses
import json

import pandas as pd
import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

import core.measure.sweep
from core.measure import devices
from tests.ui.apptest_helpers import assert_clean, open_page, texts
from ui import runner
from ui import sidebar as ui_sidebar

PAGES = [
    "pages/overview.py",
    "pages/elementwise.py",
    "pages/matmul.py",
    "pages/convolution.py",
    "pages/training.py",
    "pages/inference.py",
    "pages/fit.py",
    "pages/attention.py",
]
N_BACKENDS = len(core.measure.sweep.default_backends(ui_sidebar.default_threads()))


# ---------------------------------------------------------------- helpers


def chart_data(at: AppTest) -> list[list[pd.DataFrame]]:
    """Every Altair chart's datasets, as DataFrames, in page order."""
    charts = []
    for element in at.get("vega_lite_chart"):
        json.loads(element.proto.spec)  # the spec itself must be valid JSON
        charts.append(
            [pa.ipc.open_stream(d.data.data).read_pandas() for d in element.proto.datasets]
        )
    return charts


def columns_in(chart: list[pd.DataFrame], *names: str) -> pd.DataFrame:
    """The first dataset of a chart that has all of ``names``."""
    for frame in chart:
        if all(n in frame for n in names):
            return frame
    raise AssertionError(f"no dataset with {names}: {[list(f.columns) for f in chart]}")


@pytest.fixture
def count_points(monkeypatch):
    """Counts the points actually measured (not served from the cache)."""
    calls = []
    measure = core.measure.sweep.measure_task

    def counting(task, *args, **kwargs):
        calls.append((task.workload.name, task.params, task.backend.label))
        return measure(task, *args, **kwargs)

    # One round per point: a busy or noisy machine would otherwise measure points again.
    monkeypatch.setattr(core.measure.sweep, "MAX_ROUNDS", 1)

    monkeypatch.setattr(core.measure.sweep, "measure_task", counting)
    return calls


# ---------------------------------------------------------------- every page


@pytest.mark.parametrize("page", [None, *PAGES])
def test_every_page_loads_without_a_traceback(page):
    at = open_page(page)  # each page's own defaults
    assert_clean(at)
    assert at.title, "every page has a title"


def test_overview_shows_machine_duel_and_questions():
    at = open_page()
    assert_clean(at)
    assert devices.machine_label() in texts(at.subheader)
    duels = chart_data(at)
    assert len(duels) == 2
    for chart in duels:
        bars = columns_in(chart, "backend", "time")
        assert len(bars) == N_BACKENDS
    links = [link.proto.label for link in at.main.get("page_link")]
    assert len(links) == 7 and all(":" in label or "?" in label for label in links)


@pytest.mark.skipif(
    devices.accelerator_type() is not None or ui_sidebar.default_threads() < 2,
    reason="the note is for a machine without an accelerator and with several threads",
)
def test_without_accelerator_says_what_is_compared():
    at = open_page()
    note = f"No accelerator found: comparing 1 CPU thread against {ui_sidebar.default_threads()}"
    assert note in texts(at.sidebar.info)


# ---------------------------------------------------------------- element-wise


def test_elementwise_link_sets_widgets_and_draws_every_point():
    at = open_page("pages/elementwise.py", op="add,sin", size="1e3,1e4", ppd="1")
    assert_clean(at)
    assert at.multiselect(key="op").value == ["add", "sin"]
    assert at.select_slider(key="size").value == (1_000, 10_000)

    table = at.dataframe[0].value
    assert len(table) == 2 * 2 * N_BACKENDS
    assert set(table["op"]) == {"add", "sin"} and set(table["size"]) == {1_000, 10_000}
    for column in ("backend", "median", "IQR", "n", "first call", "threads", "speedup"):
        assert column in table
    assert set(table["status"]) == {"ok"}

    charts = chart_data(at)
    assert len(charts) == 4  # time, heatmap, speedup with crossovers, bandwidth
    times = columns_in(charts[0], "op", "backend", "time")
    assert set(times["op"]) == {"add", "sin"}
    assert times["backend"].nunique() == N_BACKENDS
    if N_BACKENDS > 1:
        heat = columns_in(charts[1], "op", "size", "speedup")
        assert len(heat) == 4 and heat["label"].str.endswith("×").all()
    bandwidth = columns_in(charts[3], "gb_per_s")
    assert (bandwidth["gb_per_s"] > 0).all()
    assert at.get("download_button"), "the table can be downloaded as CSV"


@pytest.mark.parametrize("bad", ["abc", "-1", "1e99", ""])
def test_elementwise_bad_size_in_link_falls_back_with_a_warning(bad):
    at = open_page("pages/elementwise.py", op="add", size=bad)
    assert_clean(at)
    warning = texts(at.warning)
    assert f"size={bad}" in warning and "Using the default" in warning
    assert at.select_slider(key="size").value == (1_000, 100_000)


def test_elementwise_unknown_op_in_link_falls_back_with_a_warning():
    at = open_page("pages/elementwise.py", op="nope", size="1e3")
    assert_clean(at)
    assert "nope" in texts(at.warning)
    assert at.multiselect(key="op").value == ["add", "mul", "exp", "sin", "relu"]


def test_elementwise_keeps_good_ops_and_names_the_bad_one():
    at = open_page("pages/elementwise.py", op="sin,nope", size="1e3")
    assert_clean(at)
    assert at.multiselect(key="op").value == ["sin"]
    assert "nope" in texts(at.info)


def test_off_grid_size_snaps_to_the_nearest_stop():
    at = open_page("pages/elementwise.py", op="add", size="1e3,5e3")
    assert_clean(at)
    assert at.select_slider(key="size").value == (1_000, 3_000)
    assert "5e3" in texts(at.info)


# ---------------------------------------------------------------- matmul, cache, run/stop


def test_matmul_widget_change_writes_the_link_and_redraws():
    at = open_page("pages/matmul.py", size="16,32")
    assert_clean(at)
    at.select_slider(key="size").set_range(32, 64).run()
    assert_clean(at)
    # Streamlit's frontend writes a bound widget's value to the URL (the browser tests see it).
    assert at.select_slider(key="size").proto.query_param_key == "size"
    assert at.select_slider(key="size").value == (32, 64)
    table = at.dataframe[0].value
    assert set(table["size"]) == {32, 64}
    tflops = columns_in(chart_data(at)[1], "tflops_per_s")
    assert (tflops["tflops_per_s"] > 0).all()


def test_matmul_extra_dtype_runs_the_grid_again():
    at = open_page("pages/matmul.py", size="16", also="bfloat16")
    assert_clean(at)
    table = at.dataframe[0].value
    assert set(table["dtype"]) == {"float32", "bfloat16"}
    assert len(table) == 2 * N_BACKENDS


def test_points_come_from_the_cache_on_a_second_visit(count_points):
    runner.clear_cache()
    open_page("pages/matmul.py", size="16,32")
    assert len(count_points) == 2 * N_BACKENDS
    count_points.clear()
    at = open_page("pages/matmul.py", size="16,32")
    assert count_points == []
    assert len(at.dataframe[0].value) == 2 * N_BACKENDS
    assert "cache" in texts(at.caption)


def test_the_browser_draws_the_first_new_point_before_the_other_charts_are_built(monkeypatch):
    # On a small CPU the browser drawing the time chart and the page building its three
    # other charts compete: the first new point after a slider move waited for all four.
    import streamlit as st

    events, show = [], st.vega_lite_chart

    def chart(*args, **kwargs):
        events.append("chart")
        return show(*args, **kwargs)

    monkeypatch.setattr(st, "vega_lite_chart", chart)
    monkeypatch.setattr(runner, "_let_browser_draw", lambda: events.append("wait"))
    runner.clear_cache()
    at = open_page("pages/elementwise.py", op="add,mul", size="1e3,1e4")
    assert_clean(at)
    assert events[:3] == ["chart", "wait", "chart"]  # the first new point's redraw
    assert events.count("wait") == 1  # later redraws fill in without waiting


def test_a_page_offers_its_points_rounds_and_its_own_time_as_its_last_run_went(monkeypatch):
    # The page's own time is learned in parts that grow with different things: so much a
    # point (saving it), so much a redraw (at most one a second, and one a point), so much
    # a run (the charts before and after). Rounds are priced at half their allowance, then
    # at the share the page's last run took (they end when the offer is up).
    from types import SimpleNamespace

    monkeypatch.setattr(runner, "_PAGE_TIME", {})
    monkeypatch.setattr(runner, "_PAGE_ROUNDS", {})
    sweep = core.measure.sweep
    matmul, cpu = core.measure.workloads.get("matmul"), sweep.Backend("cpu", 1)
    tasks = sweep.plan(matmul, {"size": [16, 32]}, [cpu], sweep.SweepSettings())
    before = runner.offered_s(tasks, "mm")
    assert before > sweep.run_estimate_s(tasks) + runner.DEFAULT_PAGE_TIME.page_s
    rows = [{"wall_s": 2.0, "rounds": 2}, {"wall_s": 1.0, "rounds": 1}]
    no_rounds = sweep.Measured(rows, rounds_s=0.0, rounds_allowance_s=1.0)
    # The points took 3 s, two redraws 0.6 s, saving and progress 9 s; the page 0.5 s more.
    # Saving and progress come with each round of a point: three here, one point's twice.
    drew = SimpleNamespace(drawing_s=0.6, redraws=2)
    runner._learn_page("mm", no_rounds, drew, 12.6, 0.5)
    assert runner.offered_s(tasks, "mm") == pytest.approx(
        sweep.run_estimate_s(tasks, 0.0) + 2 * 3.0 + 2 * 0.3 + 0.5
    )
    # A backend's one-time set-up (its context, its dispatch floor) is the first run's.
    set_up = sweep.Measured(rows, rounds_s=0.0, rounds_allowance_s=1.0, setup_s=0.4)
    runner._learn_page("mm", set_up, drew, 13.0, 0.5)
    assert runner._PAGE_TIME["mm"].per_point_s == pytest.approx(3.0)
    # Quick points are not each redrawn: one redraw, then one a second and more.
    quick = SimpleNamespace(drawing_s=0.3, redraws=1)
    runner._learn_page("mm", no_rounds, quick, 3.3, 0.5)
    # A run shorter than the redraw interval is drawn once, as its first point arrives.
    assert runner.offered_s(tasks, "mm") == pytest.approx(
        sweep.run_estimate_s(tasks, 0.0) + 0.3 + 0.5
    )
    # Later rounds do not redraw: a first pass of 1 s draws once, whatever rounds follow.
    runner._PAGE_ROUNDS["mm"] = 1.0
    halves = [dataclasses.replace(t, estimate_s=0.5) for t in tasks]
    assert sweep.run_estimate_s(halves, 1.0) > runner.REDRAW_EVERY_S + 0.3
    assert runner.offered_s(halves, "mm") == pytest.approx(
        sweep.run_estimate_s(halves, 1.0) + 0.3 + 0.5
    )
    many = sweep.plan(matmul, {"size": list(range(16, 116))}, [cpu], sweep.SweepSettings())
    redrawing_s = runner.offered_s(many, "mm") - sweep.run_estimate_s(many, 0.0) - 0.5
    assert 0.3 <= redrawing_s < len(many) * 0.3 / 2


def test_later_rounds_refine_points_without_redrawing_them(monkeypatch):
    # A later round only refines points already on the chart; drawing in it (0.3-0.4 s a
    # time on a small CPU) ran the rounds past their share of the run. The page's last
    # draw shows what they found. Here every point stays noisy, so every point gets more
    # rounds, and the clock runs 10 s a reading, so the first pass redraws every point.
    import itertools
    from types import SimpleNamespace

    import streamlit as st

    events, show, calls = [], st.vega_lite_chart, {}

    def chart(*args, **kwargs):
        events.append("chart")
        return show(*args, **kwargs)

    def noisy(task, settings, run_id="", *_args, **_kwargs):
        calls[task.key] = calls.get(task.key, 0) + 1
        events.append("round" if calls[task.key] > 1 else "point")
        row = core.measure.sweep.base_row(task, settings, run_id)
        return {**row, "status": "ok", "flags": "noisy", "times_s": "[1, 2, 3]",
                "median_s": 2.0, "n": 3, "wall_s": 0.01}  # fmt: skip

    clock = itertools.count(step=10.0)
    monkeypatch.setattr(runner, "offered_s", lambda *_: 1e12)  # no end to the rounds' time
    monkeypatch.setattr(runner, "_PAGE_TIME", {})  # nor learned from this clock
    monkeypatch.setattr(st, "vega_lite_chart", chart)
    monkeypatch.setattr(core.measure.sweep, "measure_task", noisy)
    monkeypatch.setattr(runner, "time", SimpleNamespace(perf_counter=lambda: next(clock)))
    monkeypatch.setattr(runner, "_let_browser_draw", lambda: None)
    monkeypatch.setattr(core.measure.load, "settle", lambda **_: 0.0)
    runner.clear_cache()
    at = open_page("pages/matmul.py", size="16,32")
    assert not at.exception
    first_round = events.index("round")
    assert events[:first_round].count("chart") >= 2  # points drawn as they came
    later = events[first_round:]
    assert "chart" in later  # the page's last draw
    assert "round" not in later[later.index("chart") :]  # none between the rounds


def test_a_page_keeps_the_time_it_offered_when_its_points_run_long(monkeypatch):
    # Points that stay noisy on a machine gone noisy take their whole budget, then more
    # rounds: a page ran past twice what it offered. Later rounds only refine points
    # already drawn; they end when the offered time is up. Here each point takes 1 s on a
    # clock the page and the sweep share, and stays noisy.
    from types import SimpleNamespace

    sweep = core.measure.sweep
    clock_s, rounds = [0.0], []

    def noisy(task, settings, run_id="", *_args, **_kwargs):
        clock_s[0] += 1.0
        rounds.append(task.key)
        row = sweep.base_row(task, settings, run_id)
        return {**row, "status": "ok", "flags": "noisy", "times_s": "[1, 2, 3]",
                "median_s": 2.0, "n": 3, "wall_s": 1.0}  # fmt: skip

    fake_time = SimpleNamespace(perf_counter=lambda: clock_s[0])
    monkeypatch.setattr(sweep, "measure_task", noisy)
    monkeypatch.setattr(sweep, "time", fake_time)
    monkeypatch.setattr(runner, "time", fake_time)
    monkeypatch.setattr(runner, "_PAGE_TIME", {})  # what this page offers before it has run
    monkeypatch.setattr(runner, "_PAGE_ROUNDS", {})
    runner.clear_cache()
    at = open_page("pages/matmul.py", size="16,32")
    assert not at.exception
    # Each point once: the offer (a few seconds, for points estimated at hundredths) was
    # spent by the first pass. The rounds' own share would have measured them again.
    assert len(rounds) == len(set(rounds)) == 2 * N_BACKENDS


@pytest.mark.parametrize("quick", [True, False])
def test_a_quick_first_point_comes_before_the_status_box(monkeypatch, quick):
    # Streamlit sleeps 50 ms when it makes a status box: a slider's quick new point does
    # not wait for it. A long first point shows its box, and Stop, before it starts.
    import streamlit as st

    events, status, measure = [], st.status, core.measure.sweep.measure_task
    monkeypatch.setattr(st, "status", lambda *a, **k: events.append("box") or status(*a, **k))
    monkeypatch.setattr(
        core.measure.sweep,
        "measure_task",
        lambda *a, **k: events.append("point") or measure(*a, **k),
    )
    monkeypatch.setattr(runner, "QUICK_FIRST_S", 1e3 if quick else 0.0)
    runner.clear_cache()
    assert_clean(open_page("pages/elementwise.py", op="add", size="1e3"))
    assert events[:2] == (["point", "box"] if quick else ["box", "point"])


def test_each_script_run_leaves_a_recent_load_snapshot(monkeypatch):
    # A short first point borrows it for its load window instead of waiting 0.15 s.
    from core.measure import load

    monkeypatch.setattr(load, "_recent", load.collections.deque(maxlen=8))
    assert_clean(open_page("pages/results.py"))
    assert len(load._recent) >= 1


def test_run_button_when_auto_run_is_off_and_after_a_stop(count_points):
    runner.clear_cache()
    at = open_page("pages/matmul.py", size="16")
    measured = len(count_points)
    runner.clear_cache()
    at.toggle(key="sb.auto_run").set_value(False).run()
    assert_clean(at)
    assert len(count_points) == measured, "nothing runs by itself"
    assert at.button(key="mm.run")
    assert "Run on every change is off" in texts(at.caption)

    # A Stop names the grid it stopped: that grid must not restart by itself.
    at.session_state["mm.stopped"] = at.session_state["mm.signature"]
    at.toggle(key="sb.auto_run").set_value(True).run()
    assert len(count_points) == measured
    assert "Stopped" in texts(at.caption)

    at.button(key="mm.run").click().run()
    assert_clean(at)
    assert len(count_points) == 2 * measured
    assert len(at.dataframe[0].value) == N_BACKENDS
    assert not [b for b in at.button if b.key == "mm.run"], "nothing left to run"


# ---------------------------------------------------------------- convolution


def test_convolution_channel_scaling_labels_speedups():
    at = open_page("pages/convolution.py", channels="8,16", size="8")
    assert_clean(at)
    assert at.select_slider(key="channels").value == (8, 16)
    table = at.dataframe[0].value
    assert set(table["channels"]) == {8, 16} and set(table["size"]) == {8}
    timed = chart_data(at)[0]
    assert set(columns_in(timed, "channels", "time", "backend")["channels"]) == {8, 16}
    if N_BACKENDS > 1:
        assert columns_in(timed, "label")["label"].str.endswith("×").all()


def test_convolution_kernel_tab_from_the_link():
    at = open_page(
        "pages/convolution.py", view="kernels", kernels="1,3", sizes="8", at_channels="8"
    )
    assert_clean(at)
    table = at.dataframe[0].value
    assert set(table["kernel"]) == {1, 3} and set(table["size"]) == {8}
    assert set(table["channels"]) == {8}
    assert len(chart_data(at)) == 2  # heatmap and times


# ---------------------------------------------------------------- training and inference


def test_training_small_point_runs_and_draws_bars_and_memory():
    # Batch 2: at 32 px batch norm in training mode needs more than one value per channel.
    at = open_page("pages/training.py", batch="2", image_size="32")
    assert_clean(at)
    table = at.dataframe[0].value
    assert len(table) == N_BACKENDS and set(table["status"]) == {"ok"}
    charts = chart_data(at)
    assert len(charts) == 3  # step time, images/s, memory
    assert (columns_in(charts[1], "images_per_s")["images_per_s"] > 0).all()


def test_over_budget_point_is_refused_with_a_warning_not_an_exception():
    at = open_page()  # set the budget in the sidebar first, then go to the page
    at.selectbox(key="mem").select("custom").run()
    at.text_input(key="mem_size").input("1MB").run()
    at.query_params.update(batch="2,4", image_size="32")
    at.switch_page("pages/training.py").run()
    assert_clean(at)
    assert at.text_input(key="mem_size").value == "1MB"
    warning = texts(at.warning)
    assert "refused" in warning and "needs about" in warning
    assert "train resnet18 batch=2" in warning
    assert set(at.dataframe[0].value["status"]) == {"refused"}


def test_bad_custom_memory_budget_is_an_error_message_and_falls_back():
    at = open_page("pages/matmul.py", size="16", mem="custom", mem_size="lots")
    assert_clean(at)
    assert "lots" in texts(at.sidebar.error)
    assert len(at.dataframe[0].value) == N_BACKENDS


def test_inference_two_models_one_table():
    at = open_page(
        "pages/inference.py", model="resnet18,mobilenet_v3_small", batch="1", image_size="32"
    )
    assert_clean(at)
    table = at.dataframe[0].value
    assert set(table["model"]) == {"resnet18", "mobilenet_v3_small"}
    assert len(table) == 2 * N_BACKENDS


def test_training_defaults_wait_for_run_when_over_the_estimate():
    at = open_page("pages/training.py", batch="32,64,128", image_size="224")
    assert_clean(at)
    assert at.button(key="train.run")
    assert "Over the 3 s limit" in texts(at.caption)
    assert not at.dataframe


# ---------------------------------------------------------------- sidebar links and failures


@pytest.mark.parametrize(("name", "bad"), [("dtype", "float64"), ("threads", "0"), ("mem", "x")])
def test_bad_sidebar_link_values_fall_back_with_a_warning(name, bad):
    at = open_page("pages/matmul.py", size="16", **{name: bad})
    assert_clean(at)
    assert f"{name}={bad}" in texts(at.sidebar.warning)


def test_broken_chart_builder_is_a_warning_and_the_page_goes_on(monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("no such field")

    monkeypatch.setattr("core.show.charts.time_vs_x", broken)
    at = open_page("pages/matmul.py", size="16")
    assert_clean(at)
    assert "could not be drawn" in texts(at.warning)
    assert len(at.dataframe[0].value) == N_BACKENDS


def test_drawing_failure_does_not_stop_the_measuring(monkeypatch):
    def broken(*args, **kwargs):
        raise KeyError("op")

    monkeypatch.setattr("core.show.crossover.crossover", broken)
    at = open_page("pages/elementwise.py", op="add", size="1e3")
    assert_clean(at)
    assert "could not be drawn" in texts(at.warning)
    assert len(at.dataframe[0].value) == N_BACKENDS


def test_unexpected_engine_failure_is_one_line_on_screen(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("device vanished\nsecond line")

    runner.clear_cache()
    monkeypatch.setattr(core.measure.sweep, "measure", broken)
    at = open_page("pages/matmul.py", size="16")
    assert not at.exception
    assert "device vanished" in texts(at.error)
    assert "second line" not in texts(at.error)


# ---------------------------------------------------------------- pure helpers


def test_pipelined_gpu_timing_comes_from_the_link_and_reaches_the_engine():
    at = open_page("pages/matmul.py", pipelined="1", size="16,32")
    assert_clean(at)
    assert at.session_state["pipelined"] is True
    settings = at.session_state[ui_sidebar._STATE_KEY]
    assert settings.sweep_settings().timing.pipelined is True


def test_a_garbage_points_per_decade_in_the_link_falls_back_with_a_note():
    at = open_page("pages/elementwise.py", ppd="x", size="1e3,3e3", op="add")
    assert_clean(at)
    assert "ppd" in texts(at.warning)


def test_a_link_asking_for_more_threads_than_cores_is_clamped_with_a_note():
    at = open_page("pages/matmul.py", size="16", devices="cpu:100000")
    assert_clean(at)
    assert "100000 cpu threads asked for" in texts(at.sidebar.info).lower()
    logical = devices.cpu_core_counts()[1]
    assert set(at.dataframe[0].value["threads"]) == {4 * logical}


def test_a_memory_budget_beyond_the_device_is_clamped_with_a_note():
    at = open_page("pages/matmul.py", size="16", mem="custom", mem_size="1e30TB")
    assert_clean(at)
    assert "is more than cpu has" in texts(at.sidebar.info)
    assert set(at.dataframe[0].value["status"]) == {"ok"}


def test_a_long_garbage_link_value_is_cut_in_the_note_and_named_once():
    at = open_page("pages/training.py", batch="2", image_size="32", model="vgg" + "x" * 10_000)
    assert_clean(at)
    warning = texts(at.warning)
    assert "model=vgg" in warning and len(warning) < 600
    assert warning.count("model:") == 1
