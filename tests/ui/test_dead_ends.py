"""No dead ends, through AppTest: the Results page exports what it shows and says which
runs, an import says what it stored and what was already there, Replay offers only the
runs a page can draw, and a page left with one backend draws its time chart alone."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

import core.measure.sweep
from core.keep import files, results
from core.keep.store import Store
from core.show import report
from tests.ui.apptest_helpers import APP, assert_clean, open_page, texts


def rows(run_id: str, workload: str = "matmul", machine: str = "Laptop X") -> pd.DataFrame:
    params = {"matmul": {"size": 64}, "elementwise": {"op": "add", "size": 1000}}[workload]
    made = [
        {"run_id": run_id, "workload": workload, **params, "backend": backend, "device": "cpu",
         "dtype": "float32", "threads": threads, "median_s": 1e-4 / threads, "status": "ok"}
        for backend, threads in (("cpu (1 thread)", 1), ("cpu (2 threads)", 2))
    ]  # fmt: skip
    return results.to_frame(made, list(params))


@pytest.fixture
def three_runs(store_url) -> Store:
    """Two matmul runs on one laptop and an element-wise run on a desktop."""
    kept = Store(store_url)
    for run_id, workload, machine in (
        ("mm-1", "matmul", "Laptop X"),
        ("mm-2", "matmul", "Laptop X"),
        ("ew-1", "elementwise", "Desktop Y"),
    ):
        kept.add_frame(rows(run_id, workload), run_id, machine={"machine": machine})
    return kept


def export_button(at):
    (button,) = [b for b in at.get("download_button") if b.proto.id.endswith("res.export")]
    return button.proto


def test_export_offers_the_runs_shown_and_says_which(three_runs):
    at = open_page("pages/results.py")
    assert_clean(at)
    button = export_button(at)
    assert button.label == "Export 3 runs as CSV" and not button.disabled
    assert "Exports the 3 runs shown." in texts(at.caption)

    at.selectbox(key="res.workload").set_value("matmul").run()
    assert export_button(at).label == "Export 2 runs as CSV"
    assert "Exports the 2 runs shown (filtered by workload matmul)." in texts(at.caption)

    at.multiselect(key="res.runs").set_value(["mm-1"]).run()
    assert export_button(at).label == "Export 1 run as CSV"
    assert "Exports the 1 run chosen under Compare." in texts(at.caption)


def test_importing_an_export_twice_stores_it_once_and_says_so(three_runs, store_url):
    here = three_runs.load(["mm-1", "ew-1"])
    theirs = rows("theirs").assign(machine="Laptop X")
    # One file of three runs: two already stored here, one new.
    both = files.export_bytes(pd.concat([here, theirs], ignore_index=True), "csv", {}, {})

    at = open_page("pages/results.py")
    at.file_uploader(key="res.upload").set_value(("runs.csv", both, "text/csv")).run()
    at.button(key="res.import").click().run()
    assert_clean(at)
    assert "1 run imported (2 rows) as theirs, 2 already stored: skipped." in texts(at.success)
    assert len(Store(store_url).runs()) == 4

    at.button(key="res.import").click().run()
    assert_clean(at)
    assert "0 runs imported (0 rows), 3 already stored: skipped." in texts(at.info)
    assert len(Store(store_url).runs()) == 4


@pytest.fixture
def nothing_measured(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a replay measured something")

    monkeypatch.setattr(core.measure.sweep, "measure_task", refuse)


def replaying(page: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["sb.source"] = "Replay a saved run"
    at.switch_page(page)
    return at.run()


def test_replay_offers_only_the_runs_with_the_pages_workload(three_runs, nothing_measured):
    at = replaying("pages/matmul.py")  # the element-wise run is the newest of all
    assert_clean(at)
    picker = at.sidebar.selectbox(key="sb.replay_run")
    assert picker.options == [
        report.describe_run(run) for run in three_runs.runs().to_dict(orient="records")
        if run["run_id"] in ("mm-2", "mm-1")
    ]  # fmt: skip
    assert picker.value == "mm-2", "the newest run that has matmul rows"
    assert "Replayed from Laptop X: cpu (1 thread) vs cpu (2 threads), float32." in texts(
        at.caption
    )
    assert at.get("vega_lite_chart")

    at.switch_page("pages/elementwise.py").run()
    assert_clean(at)
    assert at.sidebar.selectbox(key="sb.replay_run").value == "ew-1"
    assert "Replayed from Desktop Y" in texts(at.caption)


def test_replay_says_so_when_no_run_has_the_pages_workload(store_url, nothing_measured):
    Store(store_url).add_frame(rows("ew-1", "elementwise"), "ew-1", machine={"machine": "Y"})
    at = replaying("pages/matmul.py")
    assert_clean(at)
    assert "No saved run has matrix multiply rows" in texts(at.sidebar.info)
    assert "sb.replay_run" not in [box.key for box in at.sidebar.selectbox]
    assert "Replayed from" not in texts(at.caption), "no caption of a run that is not drawn"


ONE_BACKEND = "Only one backend is chosen (cpu (1 thread)): nothing to compare it with."
TINY = {
    "pages/overview.py": {},
    "pages/elementwise.py": {"op": "add", "size": "1000,3000"},
    "pages/matmul.py": {"size": "16,32"},
    "pages/convolution.py": {"view": "kernels", "kernels": "3", "sizes": "8", "at_channels": "8"},
}


def chart_titles(at: AppTest) -> list[str]:
    return [str(json.loads(e.proto.spec).get("title", "")) for e in at.get("vega_lite_chart")]


@pytest.mark.parametrize("page", list(TINY))
def test_one_backend_says_so_once_and_draws_no_empty_comparison(store_url, page):
    # One stray key press on the threads slider, and no accelerator named.
    at = open_page(page, threads="1", devices="cpu", **TINY[page])
    assert_clean(at)
    assert texts(at.info).count(ONE_BACKEND) == 1
    titles = chart_titles(at)
    assert titles, "the time chart is drawn"
    assert not [t for t in titles if "speedup" in t.lower()], titles


def test_two_backends_keep_their_comparison(store_url):
    at = open_page("pages/matmul.py", threads="1", devices="cpu:1,cpu:2", size="16,32")
    assert_clean(at)
    assert ONE_BACKEND not in texts(at.info)
    assert [t for t in chart_titles(at) if "speedup" in t.lower()]
