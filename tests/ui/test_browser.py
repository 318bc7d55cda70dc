"""Every page in a real Chromium against a real ``streamlit run`` on 127.0.0.1."""

from __future__ import annotations

import pytest

from tests.helpers import idle

pytestmark = pytest.mark.browser

PAGES = ["", "elementwise", "matmul", "convolution", "training", "inference", "attention"]
CHART = '[data-testid="stVegaLiteChart"]'
EXCEPTION = '[data-testid="stException"]'


RUN_BUTTON = 'button:has-text("Run")'


def _settle(page, timeout_ms=120_000):
    """Wait until the script run has finished and at least one chart is drawn.

    A page whose default would take more than a few seconds offers a Run button
    instead of measuring at once; press it, as a person would.
    """
    page.wait_for_selector(f"{CHART}, {RUN_BUTTON}", timeout=timeout_ms)
    idle(page, timeout_ms)
    if page.locator(CHART).count() == 0 and page.locator(RUN_BUTTON).count() > 0:
        page.locator(RUN_BUTTON).first.click()
    page.wait_for_selector(CHART, timeout=timeout_ms)
    idle(page, timeout_ms)
    page.wait_for_timeout(500)


@pytest.mark.parametrize("path", PAGES)
def test_each_page_draws_its_default_without_an_exception(page, app_url, artifacts, path):
    page.goto(f"{app_url}/{path}")
    _settle(page)
    assert page.locator(CHART).count() >= 1
    assert page.locator(EXCEPTION).count() == 0
    assert "Traceback" not in page.inner_text("body")
    page.screenshot(path=str(artifacts / f"page-{path or 'overview'}.png"))


def test_moving_a_slider_with_the_keyboard_redraws_the_chart(page, app_url, artifacts):
    page.goto(f"{app_url}/matmul")
    _settle(page)
    before = page.locator(CHART).first.screenshot()
    slider = page.locator('[data-testid="stMain"] input[type="range"]').first
    slider.focus()
    slider.press("ArrowLeft")
    page.wait_for_timeout(1000)
    _settle(page)
    after = page.locator(CHART).first.screenshot()
    assert page.locator(EXCEPTION).count() == 0
    assert before != after
    assert "size=" in page.url, "Streamlit writes the moved slider's value to the link"
    page.screenshot(path=str(artifacts / "matmul-after-slider.png"))


def test_garbage_in_the_url_falls_back_with_a_note(page, app_url):
    page.goto(f"{app_url}/elementwise?size=abc&op=nope")
    _settle(page)
    body = page.inner_text("body")
    assert "abc" in body or "nope" in body
    assert page.locator(EXCEPTION).count() == 0


@pytest.mark.parametrize("path", ["trust", "results", "reproduce", "fit"])
def test_the_evidence_pages_open_without_an_exception(page, app_url, artifacts, path):
    page.goto(f"{app_url}/{path}")
    page.wait_for_selector("h1", timeout=120_000)
    idle(page)
    page.wait_for_timeout(1000)
    assert page.locator(EXCEPTION).count() == 0
    assert "Traceback" not in page.inner_text("body")
    page.screenshot(path=str(artifacts / f"page-{path}.png"))


def test_a_pages_choices_survive_a_visit_to_another_page(page, app_url):
    # Streamlit drops the state of widgets a run does not draw, and the link then holds
    # the other page's values; coming back must still show what was chosen.
    page.goto(f"{app_url}/matmul?size=16&size=32")  # the form Streamlit writes
    _settle(page)
    page.get_by_role("link", name="Trust the numbers").click()
    page.wait_for_selector("h1:has-text('Trust the numbers')", timeout=60_000)
    page.get_by_role("link", name="Matmul").click()
    _settle(page)
    assert "size=16&size=32" in page.url
    handles = page.locator('[data-testid="stMain"] input[type="range"]')
    assert [handles.nth(i).get_attribute("aria-valuetext") for i in range(2)] == ["16", "32"]
