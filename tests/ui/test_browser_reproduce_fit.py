"""Reproduce's summary table at a laptop's 1440 px, in a real Chromium: every column it
shows fits, so the last one is not cut off (a replayed run of the post's own figures)."""

from __future__ import annotations

import pytest

from core.keep import reference
from core.keep.store import Store

pytestmark = pytest.mark.browser

GRID = '[data-testid="stDataFrame"]'
# Each table's scroller: wider content than its box means a column is cut off.
_OVERFLOWS = f"""() => [...document.querySelectorAll('{GRID}')].map(grid => {{
  const scroller = grid.querySelector('.dvn-scroller') || grid;
  return {{width: grid.getBoundingClientRect().width,
           overflow: scroller.scrollWidth - scroller.clientWidth}};
}})"""


@pytest.fixture(scope="module")
def replay_url(tmp_path_factory):
    from tests.helpers import serve_app

    folder = tmp_path_factory.mktemp("reproduce-store")
    post = reference.reference_frame()
    machine = reference.reference_machines()[0]
    mine = post[post["machine"] == machine].drop(columns=["machine", "source", "provenance"])
    Store(f"sqlite:///{folder / 'store.sqlite'}").add_frame(
        mine, "post-as-run", machine={"machine": "Laptop X"}
    )
    with serve_app(folder / "store.sqlite", folder / "streamlit.log") as url:
        yield url


def test_the_summary_table_fits_at_1440_px(browser, replay_url, artifacts):
    page = browser.new_page(viewport={"width": 1440, "height": 1800})
    try:
        page.goto(f"{replay_url}/reproduce")
        page.get_by_text("Replay a saved run").click()
        page.get_by_text("Summary: time here over time in the post").wait_for(timeout=120_000)
        page.wait_for_selector(GRID, timeout=60_000)
        page.wait_for_timeout(1500)
        (summary, *_) = page.evaluate(_OVERFLOWS)
        assert summary["width"] > 0
        assert summary["overflow"] <= 1, summary
        # The post timed one convolution twice: still counted once.
        assert page.get_by_text("of the grid's 106 rows are drawn").count() == 1
        assert page.get_by_text("110 of the grid's").count() == 0
    finally:
        page.screenshot(path=str(artifacts / "reproduce-1440.png"), full_page=True)
        page.close()
