"""Variants side by side in a real Chromium: every chart's legend names each backend's
variant, and the speedup baseline can be any of them."""

from __future__ import annotations

import pytest

from tests.helpers import idle

pytestmark = pytest.mark.browser

CHART = '[data-testid="stVegaLiteChart"]'
PAGE = "convolution?budget_s=0.1&variant=eager,channels_last&channels=8,16&size=8"
_LEGEND_LABELS = """() => [...document.querySelectorAll(
  '[data-testid="stVegaLiteChart"] svg .role-legend-label text')].map(t => t.textContent)"""


def test_each_backend_and_variant_is_its_own_series(browser, app_url, artifacts):
    page = browser.new_page(viewport={"width": 1440, "height": 2000})
    try:
        page.goto(f"{app_url}/{PAGE}")
        page.wait_for_selector(f"{CHART} svg", timeout=120_000)
        idle(page)
        page.wait_for_timeout(1000)
        labels = set(page.evaluate(_LEGEND_LABELS))
        assert {"cpu (1 thread) · eager", "cpu (1 thread) · channels_last"} <= labels, labels
        assert page.get_by_text("Speedups against").count() >= 1
        assert "Traceback" not in page.content()
    finally:
        page.screenshot(path=str(artifacts / "variants.png"), full_page=True)
        page.close()
