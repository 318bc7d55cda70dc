"""A fresh server's first request, in a real Chromium: the page opens with the app's own
menu, never Streamlit's automatic one built from the file names in ``pages/``.

Each test starts its own ``streamlit run``: the automatic menu only ever came with the
first script run of a server process, which the shared ``app_url`` server has long had.
"""

from __future__ import annotations

import pytest

from tests.helpers import idle, serve_app

pytestmark = pytest.mark.browser

# Every text a navigation menu ever shows while the page loads, however briefly.
RECORD_MENUS = """
window.__menus = [];
new MutationObserver(() => {
  for (const nav of document.querySelectorAll(
      '[data-testid="stSidebarNav"], [data-testid="stSidebarNavItems"], nav')) {
    const text = nav.innerText.trim();
    if (text && !window.__menus.includes(text)) window.__menus.push(text);
  }
}).observe(document, {childList: true, subtree: true, characterData: true});
"""
# What Streamlit's automatic menu calls the entry file and two pages: their file names,
# lower case (the app's own menu says "Overview" and "Element-wise").
FILE_NAME_LABELS = ("streamlit app", "elementwise", "overview")


@pytest.fixture
def fresh_server(tmp_path):
    """A new ``streamlit run`` that has served nothing yet; ended by its PID."""
    with serve_app(tmp_path / "store.sqlite", tmp_path / "streamlit.log") as url:
        yield url


@pytest.mark.parametrize("path", ["", "elementwise"])
def test_the_first_request_opens_with_the_apps_own_menu(browser, fresh_server, path):
    context = browser.new_context(viewport={"width": 1400, "height": 1200})
    try:
        tab = context.new_page()
        tab.add_init_script(RECORD_MENUS)
        tab.goto(f"{fresh_server}/{path}")
        tab.wait_for_selector("h1", timeout=120_000)
        idle(tab)
        # A deep link's first run draws the sidebar twice (see ui/navigation.py).
        sidebar_done = "document.querySelector('[data-testid=stSidebar]')?.innerText"
        tab.wait_for_function(
            f"() => {sidebar_done}.includes('Trust the numbers')",
            timeout=60_000,
            polling=250,
        )
        menus = tab.evaluate("window.__menus")
        sidebar = tab.locator('[data-testid="stSidebar"]').inner_text()
    finally:
        context.close()
    shown = [text for text in menus if any(f in text for f in FILE_NAME_LABELS)]
    assert not shown, f"Streamlit's file-name menu was drawn: {shown}"
    for title in ("Overview", "Element-wise", "Results"):
        assert title in sidebar, f"the app's own menu lacks {title}"
