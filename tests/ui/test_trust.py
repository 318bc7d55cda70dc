"""The Trust the numbers page through AppTest: it renders, shows substituted ceilings as
roofs, sweeps CPU threads on a tiny matmul, and shows the committed fidelity run.

Ceilings are never measured here (seconds each): a fake set is written to a cache file
of the test's own. Nothing compares speeds.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

from core.measure import ceilings, devices, sweep
from core.measure.ceilings import Ceilings
from tests.ui.apptest_helpers import assert_clean, texts
from ui import runner
from ui import sidebar as ui_sidebar

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "streamlit_app.py"
PAGE = "pages/trust.py"
FAST = {"budget_s": "0.1"}


@pytest.fixture
def roofs_path(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "ceilings.json"
    monkeypatch.setattr(ceilings, "cache_path", lambda: path)
    return path


def open_page(page: str = PAGE, **params: str) -> AppTest:
    """A fresh session on ``page`` whose URL carries ``params`` (and a short point budget)."""
    at = AppTest.from_file(str(APP), default_timeout=120)
    for name, value in {**FAST, **params}.items():
        at.query_params[name] = value
    return at.switch_page(page).run()


def charts_on(at: AppTest) -> list[tuple[dict, list[pd.DataFrame]]]:
    found = []
    for element in at.get("vega_lite_chart"):
        datasets = [pa.ipc.open_stream(d.data.data).read_pandas() for d in element.proto.datasets]
        found.append((json.loads(element.proto.spec), datasets))
    return found


def with_columns(found, *names: str) -> pd.DataFrame:
    for _, datasets in found:
        for frame in datasets:
            if all(n in frame for n in names):
                return frame
    raise AssertionError(f"no chart dataset with {names}")


def table_with(at: AppTest, *names: str) -> pd.DataFrame:
    for element in at.dataframe:
        if all(n in element.value for n in names):
            return element.value
    raise AssertionError(f"no table with {names}")


def fake_roofs(backend: sweep.Backend) -> Ceilings:
    return Ceilings(
        device=backend.device,
        threads=backend.resolved_threads,
        bandwidth_bytes_per_s=20e9,
        cache_bandwidth_bytes_per_s=80e9,
        peak_flops_per_s={"float32": 100e9, "float16": float("nan"), "bfloat16": 50e9},
    )


BACKENDS = sweep.default_backends(ui_sidebar.default_threads())


def test_trust_page_renders_and_points_to_the_button(roofs_path):
    at = open_page()
    assert_clean(at)
    assert at.title[0].value == "Trust the numbers"
    assert at.button(key="trust.measure")
    assert "suspect" in texts(at.markdown) and "pct_of_ceiling" in texts(at.markdown)
    assert "2 threads on the A18 Pro" in texts(at.markdown)
    assert devices.describe("cpu").note in texts(at.caption)
    table = table_with(at, "measured")
    assert list(table["backend"]) == [b.label for b in BACKENDS]
    assert not table["measured"].any()
    assert "No ceilings measured yet" in texts(at.caption)


def test_substituted_ceilings_become_roofs(roofs_path):
    save_fake_roofs(roofs_path)
    at = open_page()
    assert_clean(at)
    table = table_with(at, "measured")
    assert table["measured"].all()
    assert (table["memory copy GB/s"] == 20).all()
    assert list(table["float32 matmul TFLOP/s"]) == pytest.approx([0.1] * len(BACKENDS))
    assert "float16 matmul TFLOP/s" not in table  # not measured: no column

    roof = with_columns(charts_on(at), "roof_gflops_per_s", "backend")
    assert set(roof["backend"]) == {b.label for b in BACKENDS}
    # The float32 peak flattens the roof at 100 GFLOP/s; below the ridge it is 20 GB/s × I.
    assert roof["roof_gflops_per_s"].max() == pytest.approx(100)
    assert (roof["bandwidth_gb_per_s"] == 20).all()


def test_thread_sweep_on_a_tiny_matmul(roofs_path):
    runner.clear_cache()
    at = open_page(tw="matmul", t_size="32")
    assert_clean(at)
    counts = sweep.thread_counts()
    table = table_with(at, "threads", "median")
    assert sorted(table["threads"]) == counts
    assert set(table["size"]) == {32} and set(table["status"]) == {"ok"}
    scaling = with_columns(charts_on(at), "threads", "point", "ideal")
    assert sorted(set(scaling["threads"])) == counts
    assert set(scaling["point"]) == {"matmul size=32"}


def save_fake_roofs(path: Path) -> None:
    for backend in BACKENDS:
        key = ceilings._cache_key(backend.device, backend.resolved_threads)
        ceilings.save_cached(path, key, fake_roofs(backend))


def test_measured_points_reach_the_roofline_and_cold_chart(roofs_path):
    runner.clear_cache()
    open_page(tw="matmul", t_size="32,64")  # fills the runner's cache
    save_fake_roofs(roofs_path)
    at = open_page(tw="matmul", t_size="32,64", rw="matmul")
    assert_clean(at)
    found = charts_on(at)
    points = with_columns(found, "intensity", "gflops_per_s", "pct_of_roof")
    assert set(points["size"]) == {32, 64}
    cold = with_columns(found, "call", "time", "size")
    assert set(cold["call"]) == {"first call (cold)", "median (warm)"}
    assert set(cold["size"]) == {32, 64}
    assert "Points with float32" in texts(at.caption)


def test_fidelity_table_comes_from_the_committed_run(roofs_path):
    stored = json.loads((ROOT / "bench" / "results" / "fidelity.json").read_text())
    at = open_page()
    assert_clean(at)
    table = table_with(at, "point", "warm / do_bench")
    assert list(table["point"]) == [row["point"] for row in stored["rows"]]
    assert {"warm / do_bench", "warm / Timer", "cold / do_bench"} <= set(table.columns)
    assert stored["card"] in texts(at.markdown)


def test_explorer_page_points_to_the_trust_page_without_ceilings(roofs_path):
    at = open_page("pages/matmul.py", size="16")
    assert_clean(at)
    assert "Trust the numbers" in texts(at.caption)
    assert not any("roof_gflops_per_s" in f for _, d in charts_on(at) for f in d)


@pytest.mark.parametrize(
    ("page", "params"),
    [
        ("pages/matmul.py", {"size": "16"}),
        ("pages/elementwise.py", {"op": "add", "size": "1e3"}),
        ("pages/convolution.py", {"channels": "8", "size": "8"}),
    ],
)
def test_explorer_pages_draw_a_roofline_with_ceilings(roofs_path, page, params):
    save_fake_roofs(roofs_path)
    at = open_page(page, **params)
    assert_clean(at)
    roof = with_columns(charts_on(at), "roof_gflops_per_s", "backend")
    assert set(roof["backend"]) == {b.label for b in BACKENDS}
    points = with_columns(charts_on(at), "intensity", "gflops_per_s")
    assert len(points) == len(BACKENDS)


def test_measure_button_fills_the_cache(roofs_path, monkeypatch):
    measured = []

    def fake_measure(device, threads=None, budget_s=1.0):
        measured.append((str(device), threads))
        return fake_roofs(sweep.Backend(str(device), threads))

    monkeypatch.setattr(ceilings, "measure_ceilings", fake_measure)
    at = open_page()
    assert not table_with(at, "measured")["measured"].any()
    at.button(key="trust.measure").click().run()
    assert_clean(at)
    assert len(measured) == len(BACKENDS)
    assert table_with(at, "measured")["measured"].all()
    assert roofs_path.exists()


def test_ceilings_measured_on_a_busy_machine_are_not_kept_and_the_page_says_so(
    roofs_path, monkeypatch
):
    def busy_measure(device, threads=None, budget_s=1.0):
        roofs = fake_roofs(sweep.Backend(str(device), threads))
        roofs.busy_share = 1.0  # other programs took every core
        return roofs

    monkeypatch.setattr(ceilings, "measure_ceilings", busy_measure)
    at = open_page()
    at.button(key="trust.measure").click().run()
    assert_clean(at)
    assert "were not kept" in texts(at.warning)
    assert not roofs_path.exists()
