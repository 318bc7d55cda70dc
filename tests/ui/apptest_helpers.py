"""What the AppTest files share: a fresh session on a page, with a short point budget."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[2] / "streamlit_app.py")
FAST = {"budget_s": "0.1"}  # the sidebar's time budget per point, through the link


def open_page(page: str | None = None, **params: str) -> AppTest:
    """A fresh session on ``page`` whose URL carries ``params`` (and a short point budget)."""
    at = AppTest.from_file(APP, default_timeout=120)
    for name, value in {**FAST, **params}.items():
        at.query_params[name] = value
    if page is not None:
        at.switch_page(page)
    return at.run()


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def assert_clean(at: AppTest) -> None:
    """No traceback and no last-resort error on screen."""
    assert not at.exception, [e.value for e in at.exception]
    assert "Something went wrong" not in texts(at.error)
