"""The Attention page through AppTest: a link sets its widgets, one sweep draws the time,
TFLOP/s and speedup charts, and each point names the kernel torch picked."""

from __future__ import annotations

import json

import pyarrow as pa

from tests.ui.apptest_helpers import assert_clean, open_page, texts

LINK = {"seq_len": "16,32", "heads": "1", "head_dim": "32", "causal": "yes"}


def _chart_frames(at):
    return [
        [pa.ipc.open_stream(d.data.data).read_pandas() for d in element.proto.datasets]
        for element in at.get("vega_lite_chart")
        if json.loads(element.proto.spec)
    ]


def test_the_link_sets_the_widgets_and_every_point_is_drawn_with_its_kernel():
    at = open_page("pages/attention.py", **LINK)
    assert_clean(at)
    assert at.title[0].value == "Attention"
    assert at.select_slider(key="seq_len").value == (16, 32)
    assert at.selectbox(key="heads").value == 1
    assert at.selectbox(key="head_dim").value == 32
    assert at.radio(key="causal").value == "yes"

    table = at.dataframe[0].value  # the kernel per point and backend
    assert list(table.index) == [16, 32]
    on_cpu = [c for c in table.columns if str(c).startswith("cpu")]
    assert on_cpu and set(table[on_cpu].to_numpy().ravel()) == {"flash (cpu)"}
    assert all(table.notna().all())  # an accelerator's column names its kernel too
    results = at.dataframe[1].value
    assert set(results["seq_len"]) == {16, 32} and set(results["causal"]) == {"yes"}
    assert set(results["status"]) == {"ok"}

    charts = _chart_frames(at)
    assert len(charts) >= 3  # time, TFLOP/s, speedup (and the roofline's, when measured)
    times = next(f for f in charts[0] if "time" in f)
    assert set(times["seq_len"]) == {16, 32}


def test_a_bad_link_value_falls_back_with_a_note():
    at = open_page("pages/attention.py", **{**LINK, "causal": "maybe", "head_dim": "48"})
    assert_clean(at)
    assert at.radio(key="causal").value == "no"
    assert at.selectbox(key="head_dim").value in (32, 64)  # snapped to the nearest size
    notes = texts(at.warning) + texts(at.info)
    assert "maybe" in notes and "48" in notes
