"""Estimate against actual wall time for each explorer page's default grid, as a user meets
it: the page offers "about N s" before a Run, then takes what it takes.

    python bench/estimates.py [--budget-s 1.0]

For each page, through AppTest in this process, with "Run on every change" off and a fresh
store: the first visit's estimate (rough: nothing measured here yet) and the Run's wall
time; then, with this server's cache emptied, a second visit's estimate (learned from the
first run's rows in the store) and its wall time. Prints a Markdown table for
BENCHMARKS.md. Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PAGES = {  # page: the key its run_grid call uses (its Run button is "<key>.run")
    "pages/elementwise.py": "ew",
    "pages/matmul.py": "mm",
    "pages/convolution.py": "conv_ch",
    "pages/training.py": "train",
    "pages/inference.py": "inf",
}


def _visit(page: str, key: str, budget_s: float):
    """(estimate in seconds, wall seconds of the Run) for one fresh session on ``page``."""
    from streamlit.testing.v1 import AppTest

    from ui import runner

    offered: dict[str, float] = {}
    should_run = runner._should_run

    def spy(missing, tasks, settings, key_, signature):
        offered[key_] = runner.offered_s(missing, key_)
        return should_run(missing, tasks, settings, key_, signature)

    runner._should_run = spy
    try:
        at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=600)
        at.query_params["budget_s"] = str(budget_s)
        at.session_state["sb.auto_run"] = False  # a Run button, with its estimate
        at.switch_page(page).run()
        if key not in offered:
            return float("nan"), float("nan")
        estimate_s = offered[key]
        start = time.perf_counter()
        at.button(key=f"{key}.run").click().run()
        return estimate_s, time.perf_counter() - start
    finally:
        runner._should_run = should_run


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--budget-s", type=float, default=1.0)
    args = parser.parse_args()
    folder = tempfile.mkdtemp()
    os.environ["SPEEDUP_EXPLORER_STORE"] = f"sqlite:///{folder}/estimates.sqlite"
    from core.measure import load
    from ui import runner

    if sentence := load.check_machine().sentence():
        print(f"warning: {sentence}", file=sys.stderr)
    lines = [
        "| page | first estimate | first actual | first est. / actual | learned estimate | "
        "second actual | learned est. / actual |",
        "|---|---|---|---|---|---|---|",
    ]
    for page, key in PAGES.items():
        runner.clear_cache()
        first = _visit(page, key, args.budget_s)
        runner.clear_cache()  # the second visit measures again, and learns from the store
        second = _visit(page, key, args.budget_s)
        name = Path(page).stem
        lines.append(
            f"| {name} | {first[0]:.1f} s | {first[1]:.1f} s | {first[0] / first[1]:.2f} | "
            f"{second[0]:.1f} s | {second[1]:.1f} s | {second[0] / second[1]:.2f} |"
        )
        print(lines[-1], flush=True)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
