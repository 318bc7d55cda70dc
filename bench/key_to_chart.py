"""Key press to chart, through a real Chromium: on the Element-wise page, one press of
ArrowRight on the size slider's upper handle adds a size (five ops, two backends: ten new
points). Timed from the key press to the first new point drawn on the time chart, and
to the last.

    python bench/key_to_chart.py [--presses 3]

Points are counted as the symbols in the time chart's SVG. Run it on a quiet machine;
prints a Markdown table for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.measure import load  # noqa: E402
from tests.conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from tests.helpers import serve_app  # noqa: E402

CHART = '[data-testid="stVegaLiteChart"]'
COUNT_POINTS = f"""() => {{
  const chart = document.querySelector('{CHART} svg');
  return chart ? chart.querySelectorAll('.mark-symbol path').length : -1;
}}"""
DONE = "Measured"


def _settled(page, timeout_s: float = 300) -> int:
    """Wait until measuring is over and the chart holds still; its point count."""
    deadline, last, same_since = time.perf_counter() + timeout_s, None, time.perf_counter()
    while time.perf_counter() < deadline:
        count = page.evaluate(COUNT_POINTS)
        if count != last or _running(page):
            last, same_since = count, time.perf_counter()
        elif time.perf_counter() - same_since > 2.0:
            return count
        time.sleep(0.1)
    raise TimeoutError("the page never settled")


def _press(page, before: int) -> tuple[float, float, int, str]:
    """(seconds to the first new point, to the last, points added, what the page offered
    instead of measuring) for one key press."""
    handle = page.locator('[data-testid="stMain"] input[type="range"]').nth(1)
    handle.focus()
    start = time.perf_counter()
    handle.press("ArrowRight")
    first_s = last_s = math.nan
    seen = before
    while time.perf_counter() - start < 300:
        count, now = page.evaluate(COUNT_POINTS), time.perf_counter() - start
        if count > seen:
            first_s = now if math.isnan(first_s) else first_s
            last_s, seen = now, count
        if seen > before and now - last_s > 2.0 and not _running(page):
            break
        # Points estimated over the page's limit for running on every change wait for a
        # Run button: the press measured nothing, and the page says why.
        if seen == before and now > 2.0 and not _running(page) and (offered := _offer(page)):
            return first_s, last_s, 0, offered
        time.sleep(0.02)
    return first_s, last_s, seen - before, ""


def _offer(page) -> str:
    """The caption beside the page's Run button, if it shows one."""
    offer = page.locator('[data-testid="stMain"] p:has-text("points to measure")')
    return offer.first.inner_text() if offer.count() else ""


def _running(page) -> bool:
    return page.locator('[data-testid="stStatusWidget"]').count() > 0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--presses", type=int, default=3)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    if sentence := load.check_machine().sentence():
        print(f"warning: {sentence}", file=sys.stderr)
    lines = ["| press | new size | first new point | last new point | points added |",
             "|---|---|---|---|---|"]  # fmt: skip
    with serve_app(Path(tempfile.mkdtemp()) / "store.sqlite") as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 1400})
        page.goto(f"{url}/elementwise")
        page.wait_for_selector(f"{CHART} svg", timeout=300_000)
        before = _settled(page)
        for index in range(args.presses):
            first_s, last_s, added, offered = _press(page, before)
            before = _settled(page)
            size = page.url.split("size=")[-1].split("&")[0]
            lines.append(f"| {index + 1} | {size} | {first_s:.2f} s | {last_s:.2f} s | "
                         f"{added} |")  # fmt: skip
            print(lines[-1], flush=True)
            if offered:
                print(f"press {index + 1} measured nothing; the page offered: {offered}")
        browser.close()
    print("\n".join(lines))


if __name__ == "__main__":
    main()
