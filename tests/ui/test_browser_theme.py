"""Charts in Streamlit's light and dark themes, read in a real Chromium: every legend's
text and swatches must stand out from the page's background."""

from __future__ import annotations

import re

import pytest

from tests.helpers import idle

pytestmark = pytest.mark.browser

CHART = '[data-testid="stVegaLiteChart"]'
# A small grid: two ops, two sizes, on both CPU backends; every legend kind is drawn.
PAGE = "elementwise?budget_s=0.1&op=add,sin&size=1e3,1e5&ppd=1"
# WCAG's minimum for large text and for graphics that carry meaning.
MIN_CONTRAST = 3.0

# Each legend's labels, title and swatches, with the colours the browser drew them in.
_LEGENDS = """() => [...document.querySelectorAll('[data-testid="stVegaLiteChart"] svg')]
  .flatMap((svg, chart) => [...svg.querySelectorAll('.role-legend')].map(legend => ({
    chart,
    texts: [...legend.querySelectorAll('.role-legend-label text, .role-legend-title text')]
      .map(t => ({text: t.textContent, fill: getComputedStyle(t).fill})),
    labels: legend.querySelectorAll('.role-legend-label text').length,
    title: [...legend.querySelectorAll('.role-legend-title text')].map(t => t.textContent).join(''),
    symbols: [...legend.querySelectorAll('.role-legend-symbol path')].map(p => ({
      fill: getComputedStyle(p).fill, stroke: getComputedStyle(p).stroke,
      opacity: parseFloat(p.getAttribute('opacity') ?? '1'),
    })),
  })))"""


def _rgba(css: str) -> tuple[float, float, float, float] | None:
    """'rgb(1, 2, 3)' or 'rgba(1, 2, 3, 0.5)' as 0-1 floats; None for 'none'."""
    found = re.findall(r"[\d.]+", css) if css.startswith("rgb") else []
    if len(found) < 3:
        return None
    r, g, b, *a = (float(v) for v in found)
    return r / 255, g / 255, b / 255, a[0] if a else 1.0


def _luminance(rgb) -> float:
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb[:3]]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _contrast(colour, background) -> float:
    """WCAG contrast ratio of ``colour`` (its alpha blended over ``background``)."""
    alpha = colour[3]
    seen = [alpha * c + (1 - alpha) * b for c, b in zip(colour[:3], background[:3], strict=True)]
    light, dark = sorted((_luminance(seen), _luminance(background)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def _drawn(symbol: dict):
    """The colour a legend swatch shows: its fill, or its outline where it has none."""
    fill, stroke = _rgba(symbol["fill"]), _rgba(symbol["stroke"])
    shown = fill if fill is not None and fill[3] > 0 else stroke
    return None if shown is None else (*shown[:3], shown[3] * symbol["opacity"])


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_legends_stand_out_in_both_themes(browser, app_url, artifacts, scheme):
    # Streamlit's default theme follows the browser's colour scheme.
    context = browser.new_context(viewport={"width": 1400, "height": 2400}, color_scheme=scheme)
    page = context.new_page()
    try:
        page.goto(f"{app_url}/{PAGE}")
        page.wait_for_selector(f"{CHART} svg", timeout=120_000)
        idle(page)
        page.wait_for_timeout(1000)
        background = _rgba(
            page.evaluate(
                "() => getComputedStyle(document.querySelector('.stApp')).backgroundColor"
            )
        )
        assert (_luminance(background) < 0.2) == (scheme == "dark"), "the theme was not applied"
        legends = page.evaluate(_LEGENDS)
        page.screenshot(path=str(artifacts / f"theme-{scheme}.png"))
    finally:
        context.close()

    assert any(legend["symbols"] for legend in legends), "no legend with swatches was drawn"
    faint = []
    for legend in legends:
        assert legend["labels"] > 0, f"legend '{legend['title']}' has a heading and no entries"
        for text in legend["texts"]:
            if text["text"] and _contrast(_rgba(text["fill"]), background) < MIN_CONTRAST:
                faint.append((legend["title"], text["text"], text["fill"]))
        for symbol in legend["symbols"]:
            shown = _drawn(symbol)
            if shown is not None and _contrast(shown, background) < MIN_CONTRAST:
                faint.append((legend["title"], "swatch", symbol))
    assert not faint, f"hard to see on the {scheme} background {background}: {faint}"
