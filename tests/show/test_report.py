"""core.show.report: matching points, ratios against the post, and an HTML report that needs no
network. Built from the post's own figures and small made-up tables, so nothing here is
timed and nothing imports torch's measuring code."""

from __future__ import annotations

import html
import json
import re
from datetime import date

import pandas as pd
import pytest

from core.keep import reference, results
from core.measure.suites import POST, SuitePart
from core.show import report

HOSTILE = "Box <script>alert(1)</script> & co"
MATMUL = next(p for p in POST if p.workload == "matmul")
TRAIN = next(p for p in POST if p.workload == "train")


def rows(workload: str, points: list[dict], **common) -> pd.DataFrame:
    """A result table; each point is its parameters and its ``median_s``."""
    base = {"run_id": "r", "workload": workload, "dtype": "float32", "status": "ok"}
    params = [name for name in points[0] if name != "median_s"]
    return results.to_frame([{**base, **common, **p} for p in points], params)


def here_like_the_post(part: SuitePart, machine: str, factor: float) -> pd.DataFrame:
    """The post's CPU rows of one part, as if measured on ``machine`` ``factor`` times slower."""
    post = report.post_reference(part, [reference.NEO])
    cpu = post[post["device"] == "cpu"].copy()
    cpu["median_s"] = cpu["median_s"] * factor
    cpu["backend"] = "cpu (2 threads)"
    return cpu.drop(columns=["machine", "source", "provenance"]).assign(machine=machine)


# ---------------------------------------------------------------- matching and ratios


def test_points_match_whatever_the_number_looks_like():
    frame = pd.DataFrame({"size": [1_000_000, 10_000_000], "op": ["add", "add"]})
    assert len(report.rows_in_grid(frame, {"size": [1e6], "op": ["add"]})) == 1
    assert len(report.rows_in_grid(frame, {"size": ["1000000"], "missing": [1]})) == 1


def test_select_rows_falls_back_to_every_row_of_the_workload():
    frame = rows("matmul", [{"size": 256, "median_s": 1e-3}, {"size": 512, "median_s": 8e-3}])
    matched, exact = report.select_rows(frame, "matmul", ["size"], {"size": [512]})
    assert exact and list(matched["size"]) == [512]
    every, exact = report.select_rows(frame, "matmul", ["size"], {"size": [16]})
    assert not exact and list(every["size"]) == [256, 512]
    none, exact = report.select_rows(frame, "matmul", ["size"], {"size": [16]}, fall_back=False)
    assert not exact and none.empty
    other, _ = report.select_rows(frame, "conv2d", ["channels"], {})
    assert other.empty


def test_ratio_pairs_cpu_with_cpu_per_matching_point():
    mine = rows(
        "matmul",
        [{"size": 256, "median_s": 2e-3}, {"size": 512, "median_s": 6e-3},
         {"size": 999, "median_s": 1.0}],
        backend="cpu (2 threads)", device="cpu", machine="here",
    )  # fmt: skip
    post = rows(
        "matmul",
        [{"size": 256, "median_s": 1e-3}, {"size": 512, "median_s": 3e-3}],
        backend="mps", device="mps", machine="post",
    )  # fmt: skip
    post_cpu = post.assign(backend="cpu (post)", device="cpu")
    table = report.ratio_table(mine, pd.concat([post, post_cpu]), ["size"])
    assert list(table["point"]) == ["size=256", "size=512"]
    assert set(table["reference backend"]) == {"cpu (post)"}, "no CPU row is paired with mps"
    assert table[report.RATIO_COLUMN].tolist() == pytest.approx([2.0, 2.0])
    summary = report.ratio_summary(table)
    assert len(summary) == 1 and summary["median ratio"].iloc[0] == pytest.approx(2.0)
    assert "takes 2× the time" in summary["reading"].iloc[0]
    assert report.readable(summary)["median ratio"].iloc[0] == "2×"


def test_ratio_ignores_failed_rows_and_empty_tables():
    mine = rows("matmul", [{"size": 256, "median_s": None}], backend="cpu", device="cpu")
    mine["status"] = "failed"
    post = report.post_reference(MATMUL)
    assert report.ratio_table(mine, post, ["size"]).empty
    assert report.ratio_summary(report.ratio_table(mine.iloc[0:0], post, ["size"])).empty


def test_each_of_the_posts_charts_has_an_axis_and_its_panels():
    views = {p.chart: report.view_of(pd.DataFrame(report._grid_columns(p))) for p in POST}
    assert views["Element-wise ops against tensor size"] == ("size", ["op"])
    assert views["Conv2d against channel count"] == ("channels", [])
    assert views["Conv2d kernel x input size"] == ("size", ["kernel"])
    assert views["ResNet-18 and MobileNetV2 inference against batch size"] == ("batch", ["model"])


def test_post_views_overlay_the_post_on_this_machines_rows():
    mine = here_like_the_post(MATMUL, "Here", 2.0).drop(columns="machine")
    view = report.post_views([MATMUL], [mine], "Here", reference.NEO)[0]
    assert {"Here", reference.NEO, reference.RYZEN} <= set(view.combined["machine"])
    assert view.ratios[report.RATIO_COLUMN].tolist() == pytest.approx([2.0] * len(mine))
    colours = [
        layer.get("encoding", {}).get("color", {}) for layer in view.chart().to_dict()["layer"]
    ]
    assert any(c.get("field") == "machine" and c.get("type") == "nominal" for c in colours)
    assert "point" in view.ratio_rows() and "size" not in view.ratio_rows()


def test_filter_runs_by_workload_machine_and_dates():
    runs = pd.DataFrame(
        {
            "run_id": ["a", "b", "c"],
            "workload": ["matmul", "elementwise,matmul", "train"],
            "machine": ["m1", "m2", "m1"],
            "created_at": pd.to_datetime(["2026-01-01", "2026-02-01", "2026-03-01"], utc=True),
        }
    )
    assert list(report.filter_runs(runs, "matmul")["run_id"]) == ["a", "b"]
    assert list(report.filter_runs(runs, machine="m1")["run_id"]) == ["a", "c"]
    since = report.filter_runs(runs, dates=(date(2026, 1, 15),))
    assert list(since["run_id"]) == ["b", "c"]
    window = report.filter_runs(runs, dates=(date(2026, 1, 15), date(2026, 2, 1)))
    assert list(window["run_id"]) == ["b"]


# ---------------------------------------------------------------- the HTML report


@pytest.fixture(scope="module")
def page_html() -> str:
    parts = [MATMUL, TRAIN]
    frames = [here_like_the_post(p, HOSTILE, 1.5).drop(columns="machine") for p in parts]
    views = report.post_views(parts, frames, HOSTILE, reference.NEO)
    method = report.post_method({"budget_s": 0.5, "target_precision": 0.02}, ["cpu"], 300, 2)
    skipped = [{"chart": "Matrix multiply", "point": "matmul size=8192", "estimated": "2 min"}]
    machine = {"machine": HOSTILE, "cpu_model": "AMD EPYC", "ram_bytes": 8 * 1024**3}
    return report.post_report(views, machine, method, skipped)


def test_the_report_loads_nothing_from_a_network(page_html):
    assert not re.search(r"<script[^>]*\bsrc=", page_html, re.I)
    assert not re.search(r"<link\b", page_html, re.I)
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", page_html, re.I)
    assert not re.search(r"@import|url\(\s*['\"]?(?:https?:)?//", page_html, re.I)
    for script in re.findall(r"<script([^>]*)>", page_html):
        assert 'type="application/json"' in script, "no script runs; specs are inert data"


def test_the_report_has_an_svg_and_a_spec_for_each_chart(page_html):
    sections = re.findall(r"<section id='chart-\d+'>(.*?)</section>", page_html, re.S)
    assert len(sections) == 2
    for section in sections:
        assert section.count("<svg") == 1
        spec = re.search(r'class="vega-lite-spec">(.*?)</script>', section, re.S).group(1)
        assert "<" not in spec
        assert "layer" in json.loads(spec) or "concat" in json.loads(spec)


def test_the_report_has_the_machine_card_method_and_tables(page_html):
    card = re.search(r"<table class='card' id='machine-card'>(.*?)</table>", page_html, re.S)
    assert card and "AMD EPYC" in card.group(1) and "8.0 GiB" in card.group(1)
    assert "none found: the CPU side only" in card.group(1)
    assert html.escape("The post's timing") in page_html and "Summary" in page_html
    assert "matmul size=8192" in page_html, "the points skipped for time are listed"
    assert "1.5×" in page_html, "the ratio per point"


def test_hostile_text_is_escaped_everywhere(page_html):
    assert "<script>alert" not in page_html
    assert html.escape(HOSTILE) in page_html


def test_svg_ids_are_unique_across_charts(page_html):
    ids = re.findall(r'\bid="([^"]+)"', page_html)
    assert len(ids) == len(set(ids))


def test_without_vl_convert_the_spec_is_embedded_with_a_note(monkeypatch):
    def missing(_chart):
        raise ModuleNotFoundError("No module named 'vl_convert'")

    monkeypatch.setattr(report, "chart_svg", missing)
    post = report.post_reference(MATMUL)
    section = report.ReportSection("Matrix multiply", report.part_chart(MATMUL, post))
    page = report.html_report(report.Report("t", {"machine": "m"}, sections=[section]))
    assert "<svg" not in page and "could not be drawn here" in page
    assert 'class="vega-lite-spec"' in page


def test_machine_card_reads_bytes_as_gigabytes():
    card = dict(report.machine_card({"machine": "m", "ram_bytes": 16 * 1024**3, "extra": 1}))
    assert card["Memory"] == "16.0 GiB" and card["extra"] == "1"
