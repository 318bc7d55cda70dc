"""Results that last and travel, through AppTest: the explorer saves what it measures, the
Results page compares, deletes, imports and exports runs, Reproduce runs the post's grid
in a budget, and Replay draws a saved run without measuring anything.

Every test has its own store (SPEEDUP_EXPLORER_STORE), sizes are tiny and the point
budget is 0.1 s. Nothing here compares speeds: only shapes, rows and messages.
"""

from __future__ import annotations

import json

import pandas as pd
import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

import core.measure.devices
import core.measure.sweep
from core.cli import main as cli
from core.keep import files, reference
from core.keep.store import Store
from core.measure import suites
from core.measure.suites import SuitePart
from tests.ui.apptest_helpers import APP, assert_clean, open_page, texts
from ui import runner
from ui import sidebar as ui_sidebar

N_BACKENDS = len(core.measure.sweep.default_backends(ui_sidebar.default_threads()))
REPLAY = "Replay a saved run"


# ---------------------------------------------------------------- helpers


@pytest.fixture
def seeded(store_url) -> str:
    """One real CLI run of matmul at two of the post's sizes; returns its run_id."""
    assert cli(["run", "matmul", "size=256,512", "--point-budget-s", "0.02"]) == 0
    return Store(store_url).runs()["run_id"].iloc[0]


@pytest.fixture
def nothing_measured(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a replay measured something")

    monkeypatch.setattr(core.measure.sweep, "measure_task", refuse)


def chart_frames(at: AppTest) -> list[pd.DataFrame]:
    """Every dataset of every Altair chart on the page."""
    found = []
    for element in at.get("vega_lite_chart"):
        json.loads(element.proto.spec)
        found += [pa.ipc.open_stream(d.data.data).read_pandas() for d in element.proto.datasets]
    return found


def machines_drawn(at: AppTest) -> set[str]:
    return {m for f in chart_frames(at) if "machine" in f for m in f["machine"].dropna()}


def table_with(at: AppTest, column: str) -> pd.DataFrame:
    for element in at.dataframe:
        if column in element.value:
            return element.value
    raise AssertionError(f"no table with {column}")


# ---------------------------------------------------------------- the explorer saves


def test_a_measured_page_saves_one_run_with_every_row(store_url):
    runner.clear_cache()
    at = open_page("pages/matmul.py", size="16,32")
    assert_clean(at)
    runs = Store(store_url).runs()
    assert len(runs) == 1
    assert runs["rows"].iloc[0] == 2 * N_BACKENDS
    assert runs["workload"].iloc[0] == "matmul"
    assert runs["machine"].iloc[0] == runner.machine_fingerprint()["machine"]
    backends = core.measure.sweep.default_backends(ui_sidebar.default_threads())
    assert runs["settings"].iloc[0]["backends"] == [b.label for b in backends]
    assert runs["label"].iloc[0] == "Matrix multiply (app)"


def test_a_broken_store_is_one_warning_and_measuring_goes_on(monkeypatch):
    monkeypatch.setenv("SPEEDUP_EXPLORER_STORE", "not a database url")
    runner.clear_cache()
    at = open_page("pages/matmul.py", size="16,32")
    assert_clean(at)
    warnings = [w for w in texts(at.warning).splitlines() if "not being saved" in w]
    assert len(warnings) == 1
    assert len(at.dataframe[0].value) == 2 * N_BACKENDS


# ---------------------------------------------------------------- results


def test_results_overlays_a_run_on_the_post_with_a_ratio_table(seeded):
    at = open_page("pages/results.py")
    assert_clean(at)
    assert seeded in set(table_with(at, "run_id")["run_id"])
    at.multiselect(key="res.runs").set_value([seeded]).run()
    assert_clean(at)
    here = runner.machine_fingerprint()["machine"]
    assert {here, reference.NEO} <= machines_drawn(at)
    per_point = table_with(at, "point")
    assert set(per_point["point"]) == {"size=256", "size=512"}
    # CPU rows pair with the post's CPU; an accelerator, where there is one, with its MPS.
    expected_sides = {"CPU", "accelerator"} if core.measure.devices.accelerator_type() else {"CPU"}
    assert set(per_point["side"]) == expected_sides
    assert per_point["time ratio (here / reference)"].str.endswith("×").all()
    summary = table_with(at, "median ratio")
    assert len(summary) == N_BACKENDS and (summary["points"] == 2).all()
    labels = [b.proto.label for b in at.get("download_button")]
    assert labels == ["Export 1 run as CSV"]


def test_results_filters_by_workload_and_machine(seeded, store_url):
    other = pd.DataFrame(
        [{"workload": "elementwise", "op": "add", "size": 1000, "backend": "cpu",
          "device": "cpu", "status": "ok", "median_s": 1e-5}]
    )  # fmt: skip
    Store(store_url).add_frame(other, "other-run", machine={"machine": "Elsewhere"})
    at = open_page("pages/results.py")
    assert len(table_with(at, "run_id")) == 2
    at.selectbox(key="res.workload").set_value("matmul").run()
    assert list(table_with(at, "run_id")["run_id"]) == [seeded]
    at.selectbox(key="res.workload").set_value("").run()
    at.selectbox(key="res.machine").set_value("Elsewhere").run()
    assert list(table_with(at, "run_id")["run_id"]) == ["other-run"]


def test_delete_asks_first_and_cancel_keeps_the_run(seeded, store_url):
    at = open_page("pages/results.py")
    at.selectbox(key="res.victim").set_value(seeded).run()
    at.button(key="res.delete").click().run()
    assert_clean(at)
    assert "cannot be undone" in texts(at.warning)
    assert len(Store(store_url).runs()) == 1, "nothing is deleted before the confirmation"
    at.button(key="res.delete_no").click().run()
    assert "cannot be undone" not in texts(at.warning)
    assert len(Store(store_url).runs()) == 1

    at.button(key="res.delete").click().run()
    at.button(key="res.delete_yes").click().run()
    assert_clean(at)
    assert Store(store_url).runs().empty and Store(store_url).row_count() == 0


def test_a_hostile_upload_is_refused_and_the_store_is_unchanged(seeded, store_url):
    before = (len(Store(store_url).runs()), Store(store_url).row_count())
    at = open_page("pages/results.py")
    hostile = b"workload,backend,device,status,median_s\nmatmul,cpu,cpu,ok,=cmd|' /C calc'!A0\n"
    at.file_uploader(key="res.upload").set_value(("evil.csv", hostile, "text/csv")).run()
    at.button(key="res.import").click().run()
    assert_clean(at)
    assert "evil.csv was not imported" in texts(at.error) and "median_s" in texts(at.error)
    assert (len(Store(store_url).runs()), Store(store_url).row_count()) == before


def test_another_machines_run_imports_as_a_new_run(seeded, store_url):
    saved = Store(store_url)
    # The same run id, from another machine: a run of its own (the same machine's is skipped).
    theirs = saved.load(seeded).drop(columns="machine")
    data = files.export_bytes(theirs, "json", {"machine": "Laptop X"}, {})
    at = open_page("pages/results.py")
    at.file_uploader(key="res.upload").set_value(("run.json", data, "application/json")).run()
    at.button(key="res.import").click().run()
    assert_clean(at)
    assert "1 run imported" in texts(at.success)
    runs = saved.runs()
    assert len(runs) == 2 and set(runs["machine"]) >= {"Laptop X"}


# ---------------------------------------------------------------- reproduce


TINY_POST = (
    SuitePart("elementwise", {"op": ["add"], "size": [1_000_000]}, "Element-wise ops"),
    SuitePart("matmul", {"size": [256]}, "Matrix multiply"),
    # 1e12 FLOPs per call: never fits a 5 s budget, so it is skipped for time.
    SuitePart("matmul", {"size": [8192]}, "Matrix multiply, far over budget"),
)


def test_reproduce_runs_the_grid_in_budget_and_overlays_the_post(monkeypatch, store_url):
    monkeypatch.setattr(suites, "POST", TINY_POST)
    runner.clear_cache()
    at = open_page("pages/reproduce.py")
    assert_clean(at)
    assert "Nothing measured yet" in texts(at.info)
    at.number_input(key="rep.budget_s").set_value(5).run()
    at.button(key="rep.run").click().run()
    assert_clean(at)

    assert len(at.get("vega_lite_chart")) == len(TINY_POST)
    here = runner.machine_fingerprint()["machine"]
    assert {here, reference.NEO} <= machines_drawn(at)
    skipped = table_with(at, "estimated")
    assert list(skipped["point"]) == ["matmul size=8192"]
    summary = table_with(at, "median ratio")
    assert set(summary["chart"]) == {"Element-wise ops", "Matrix multiply"}
    ratios = [e.value for e in at.dataframe if "point" in e.value and "side" in e.value]
    assert {"op=add size=1e6", "size=256"} <= {p for t in ratios for p in t["point"]}

    runs = Store(store_url).runs()
    assert len(runs) == 2, "one stored run per part that measured something"
    assert runs["label"].str.startswith("Reproduce the post: ").all()
    labels = [b.proto.label for b in at.get("download_button")]
    assert labels == ["Download the HTML report", "Download the CSV"]


# ---------------------------------------------------------------- replay


def test_replay_draws_a_saved_run_and_measures_nothing(seeded, monkeypatch):
    at = open_page("pages/matmul.py", size="256,512")  # measured live, and saved: a 2nd run
    measured = []
    monkeypatch.setattr(core.measure.sweep, "measure_task", lambda *a, **k: measured.append(a))
    at.radio(key="sb.source").set_value(REPLAY).run()
    at.selectbox(key="sb.replay_run").set_value(seeded).run()
    assert_clean(at)
    assert not at.error and measured == []
    here = runner.machine_fingerprint()["machine"]
    assert f"Replaying run {seeded} from machine {here}" in texts(at.info)
    table = at.dataframe[0].value
    assert sorted(set(table["size"])) == [256, 512] and len(table) == 2 * N_BACKENDS
    assert at.get("vega_lite_chart"), "the replayed rows are drawn"


def test_replay_falls_back_to_all_rows_and_says_so(seeded, nothing_measured):
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["sb.source"] = REPLAY
    at.query_params["size"] = "16,32"
    at.switch_page("pages/matmul.py").run()
    assert_clean(at)
    assert "None of its points match" in texts(at.info)
    assert sorted(set(at.dataframe[0].value["size"])) == [256, 512]


def test_replay_an_uploaded_file(store_url, nothing_measured):
    rows = reference.reference_frame("matmul")
    ryzen = rows[rows["machine"] == reference.RYZEN].drop(columns=["provenance"])
    data = files.export_bytes(ryzen, "csv", {}, {})
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["sb.source"] = REPLAY
    at.switch_page("pages/matmul.py").run()
    at.sidebar.file_uploader(key="sb.replay_file").set_value(("ryzen.csv", data, "text/csv"))
    at.run()
    assert_clean(at)
    assert f"Replaying run ryzen.csv from machine {reference.RYZEN}" in texts(at.info)
    assert set(at.dataframe[0].value["backend"]) == {"cpu (post default threads)", "cuda (rocm)"}


def test_a_bad_replay_file_is_an_error_and_nothing_is_measured(store_url, nothing_measured):
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["sb.source"] = REPLAY
    at.switch_page("pages/matmul.py").run()
    at.sidebar.file_uploader(key="sb.replay_file").set_value(("x.csv", b"a,b\n1,2\n", "text/csv"))
    at.run()
    assert_clean(at)
    assert "x.csv cannot be replayed" in texts(at.sidebar.error)
    assert not at.dataframe


def test_a_large_run_is_drawn_in_part_and_exported_by_the_cli(seeded, monkeypatch):
    monkeypatch.setattr(ui_sidebar, "MAX_SHOWN_ROWS", 1)  # stands for a million-row run
    at = open_page("pages/results.py")
    at.multiselect(key="res.runs").set_value([seeded]).run()
    assert_clean(at)
    assert "Drawing the first 1 of the" in texts(at.caption)
    export = next(b for b in at.get("download_button") if "Export" in b.proto.label)
    assert export.proto.disabled and "python -m core export" in export.proto.help
