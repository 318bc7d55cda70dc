"""Speedup Explorer: the same PyTorch work timed on the CPU and on the accelerator.

Run with ``streamlit run streamlit_app.py``. This file only builds the navigation and
the sidebar every page shares; each page is one workload.
"""

from __future__ import annotations

import logging
import sys

import streamlit as st

from core.measure import load
from ui.navigation import leave_folder_mode, menu

# The load window of a short point reaches back to here (core.measure.load.window): without
# a snapshot this recent, the first point after a slider move would wait 0.15 s for one.
load.snapshot()
leave_folder_mode(entry=True)
st.set_page_config(page_title="Speedup Explorer", page_icon="⚡", layout="wide")

PAGES = [
    st.Page("pages/overview.py", title="Overview", icon=":material/speed:", default=True),
    st.Page("pages/elementwise.py", title="Element-wise", icon=":material/functions:"),
    st.Page("pages/matmul.py", title="Matmul", icon=":material/grid_on:"),
    st.Page("pages/convolution.py", title="Convolution", icon=":material/filter:"),
    st.Page("pages/training.py", title="Training", icon=":material/model_training:"),
    st.Page("pages/inference.py", title="Inference", icon=":material/bolt:"),
    st.Page("pages/attention.py", title="Attention", icon=":material/center_focus_strong:"),
    st.Page("pages/reproduce.py", title="Reproduce the post", icon=":material/replay:"),
    st.Page("pages/fit.py", title="Will it fit?", icon=":material/memory:"),
    st.Page("pages/results.py", title="Results", icon=":material/history:"),
    st.Page("pages/trust.py", title="Trust the numbers", icon=":material/verified:"),
]
page = menu(PAGES)

if "core.measure.sweep" not in sys.modules:
    # The first import of torch and torchvision takes seconds; say why the page waits.
    with st.spinner("Loading PyTorch…"):
        import core.measure.sweep  # noqa: F401

from ui import sidebar  # noqa: E402  (after the spinner, which covers torch's import)

try:
    sidebar.render(page)
    page.run()
except Exception as error:  # last resort: a demo never shows a traceback
    logging.getLogger("speedup_explorer").exception("page %s failed", page.title)
    st.error(f"Something went wrong on this page: {type(error).__name__}: {error}")
