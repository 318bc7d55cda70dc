"""The HTML report opened from disk in a real Chromium that can reach no network."""

from __future__ import annotations

import pytest

from core.keep import reference
from core.measure.suites import POST
from core.show import report

pytestmark = pytest.mark.browser

PARTS = [p for p in POST if p.workload in ("matmul", "inference")]


@pytest.fixture(scope="module")
def report_file(tmp_path_factory):
    frames = []
    for part in PARTS:
        post = report.post_reference(part, [reference.NEO])
        here = post[post["device"] == "cpu"].assign(backend="cpu (2 threads)")
        frames.append(here.drop(columns=["machine", "source", "provenance"]))
    views = report.post_views(PARTS, frames, "Test machine", reference.NEO)
    method = report.post_method({"budget_s": 0.5}, ["cpu (2 threads)"], 300, len(PARTS))
    path = tmp_path_factory.mktemp("report") / "report.html"
    path.write_text(report.post_report(views, {"machine": "Test machine"}, method), "utf-8")
    return path


def test_the_report_draws_every_chart_offline(page, report_file, artifacts):
    requests = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(report_file.as_uri())
    page.wait_for_load_state("load")
    charts = page.locator("figure.chart svg")
    assert charts.count() == len(PARTS)
    for index in range(charts.count()):
        chart = charts.nth(index)
        box = chart.bounding_box()
        assert box and box["width"] > 200 and box["height"] > 150
        # Drawn marks, not an empty frame: line paths and axis labels.
        assert chart.locator("path").count() > 10
        assert "median time" in chart.text_content()
    assert "Test machine" in page.locator("#machine-card").inner_text()
    assert [url for url in requests if not url.startswith("file:")] == []
    page.screenshot(path=str(artifacts / "report.png"), full_page=True)
