"""Keep Streamlit on this app's own navigation.

A ``pages/`` folder next to the entry file makes Streamlit run its old multipage mode
until ``st.navigation`` has been called once in the process. So a deep link as a fresh
server's first request (a talk's URL, say) would run the page bare: no shared sidebar,
no wide layout, file names in the menu. AppTest starts every run in that mode too.

Still needed on every Streamlit this app allows (1.65 up to 1.67, the newest checked):
they all set ``PagesManager.uses_pages_directory`` from a ``pages/`` folder until the
first ``st.navigation`` call. Drop ``leave_folder_mode`` when a Streamlit release stops
doing so.

That first run also sends the old mode's menu of file names before this app's code
runs, and a deep link's page imports torch under it for seconds. So
``client.showSidebarNavigation = false`` (.streamlit/config.toml) hides every automatic
menu, and ``menu`` draws the app's own in the sidebar from the first run on.
"""

from __future__ import annotations

import runpy
from collections.abc import Sequence
from pathlib import Path

import streamlit as st

try:
    from streamlit.runtime.pages_manager import PagesManager
except ImportError:  # a Streamlit without the old mode has nothing to leave
    PagesManager = None

ENTRY = Path(__file__).resolve().parent.parent / "streamlit_app.py"


def leave_folder_mode(entry: bool = False) -> None:
    """Switch the old mode off; if it picked a page directly, run the entry file instead.

    The entry file's ``st.navigation`` picks the same page again from its URL path,
    now with the shared sidebar. This happens in the same script run, not a rerun, so
    a button click that started the run is not lost.
    """
    if PagesManager is None or not getattr(PagesManager, "uses_pages_directory", None):
        return
    PagesManager.uses_pages_directory = False
    if not entry:
        runpy.run_path(str(ENTRY), run_name="__main__")
        st.stop()


def menu(pages: Sequence[st.Page]) -> st.Page:
    """The page to run, with the menu drawn as links at the top of the sidebar.

    ``position="hidden"``: the config hides the automatic menu anyway, and the links do
    not depend on that setting.
    """
    page = st.navigation(pages, position="hidden")
    for each in pages:
        st.sidebar.page_link(each)
    return page
