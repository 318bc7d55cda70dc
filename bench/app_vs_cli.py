"""The same CPU point timed from the page, through a real Chromium, and from the CLI, in
one run, alternating: does the app compete with what it times?

    python bench/app_vs_cli.py [--rounds 3] [--op exp] [--size 4000000] [--budget-s 1]

Each round starts a fresh ``streamlit run`` (so nothing comes from its cache), opens the
Element-wise page for one point on ``cpu:1,cpu:2`` and reads the medians the app stored,
then runs ``python -m core run`` for the same point. Run it on a quiet machine: it says
so when the machine is busy. Prints a Markdown table for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.measure import load  # noqa: E402
from tests.conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from tests.helpers import serve_app  # noqa: E402

BACKENDS = ("cpu (1 thread)", "cpu (2 threads)")


def _medians(store: Path, size: int) -> dict[str, float]:
    """The ok medians stored for ``size``: a size off the page's slider stops would be
    snapped to the nearest stop, and would not be the same point."""
    with sqlite3.connect(store) as conn:
        query = "SELECT backend, median_s, params FROM results WHERE status = 'ok'"
        rows = conn.execute(query).fetchall()
    found = {backend: median_s for backend, median_s, params in rows
             if json.loads(params).get("size") == size}  # fmt: skip
    if set(found) != set(BACKENDS):
        raise SystemExit(f"no rows for size {size} in {store}: {rows}")
    return found


def _app_round(browser, args, folder: Path) -> dict[str, float]:
    store = folder / "app.sqlite"
    with serve_app(store) as url:
        page = browser.new_page(viewport={"width": 1440, "height": 1000})
        link = (f"{url}/elementwise?op={args.op}&size={args.size}&size={args.size}"
                f"&devices=cpu:1,cpu:2&budget_s={args.budget_s}")  # fmt: skip
        page.goto(link)
        page.get_by_text("Measured 2 points", exact=False).wait_for(timeout=120_000)
        page.close()
    return _medians(store, args.size)


def _cli_round(args, folder: Path) -> dict[str, float]:
    store = folder / "cli.sqlite"
    command = [sys.executable, "-m", "core", "run", "elementwise", f"op={args.op}",
               f"size={args.size}", "--devices", "cpu:1,cpu:2", "--point-budget-s",
               str(args.budget_s), "--store", f"sqlite:///{store}"]  # fmt: skip
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
    return _medians(store, args.size)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--op", default="exp")
    # On the slider's stops (1e3, 3162, 1e4, ...), so that the page times this very point.
    parser.add_argument("--size", type=int, default=10_000_000)
    parser.add_argument("--budget-s", type=float, default=1.0)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    if sentence := load.check_machine().sentence():
        print(f"warning: {sentence}", file=sys.stderr)
    lines = ["| round | backend | app median | CLI median | app / CLI |", "|---|---|---|---|---|"]
    ratios: dict[str, list[float]] = {b: [] for b in BACKENDS}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for index in range(args.rounds):
            with tempfile.TemporaryDirectory() as folder:
                app = _app_round(browser, args, Path(folder))
                cli = _cli_round(args, Path(folder))
            for backend in BACKENDS:
                ratio = app[backend] / cli[backend]
                ratios[backend].append(ratio)
                lines.append(f"| {index + 1} | {backend} | {app[backend] * 1e3:.3g} ms | "
                             f"{cli[backend] * 1e3:.3g} ms | {ratio:.3f} |")  # fmt: skip
                print(lines[-1], flush=True)
        browser.close()
    for backend, values in ratios.items():
        lines.append(f"| median | {backend} | | | {statistics.median(values):.3f} |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
