"""Estimate against actual wall time for each explorer page's default grid, as a user meets
it: the page offers "about N s" before a Run, then takes what it takes.

    python bench/estimates.py [--budget-s 1.0] [--parts] [--pages convolution,...]

For each page, through AppTest in this process, with "Run on every change" off and a fresh
store: the first visit's estimate (rough: nothing measured here yet) and the Run's wall
time; then, with this server's cache emptied, a second visit's estimate (learned from the
first run's rows in the store) and its wall time. Prints a Markdown table for
BENCHMARKS.md. Run it on a quiet machine. With ``--parts``, each visit also prints what
its estimate was made of against what the run took, part by part.
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


def _visit(page: str, key: str, budget_s: float, parts: list[str] | None = None):
    """(estimate in seconds, wall seconds of the Run) for one fresh session on ``page``;
    ``parts`` gets a line of what each was made of."""
    from streamlit.testing.v1 import AppTest

    from core.measure import sweep
    from ui import runner

    offered: dict[str, float] = {}
    planned: list = []  # the tasks offered, with their estimates
    should_run, learn_page = runner._should_run, runner._learn_page

    def spy(missing, tasks, settings, key_, signature):
        if parts is not None and key_ == key and key_ not in offered:
            share = runner.rounds_share(key)
            first_s, measuring_s = (
                sum(t.estimate_s for t in missing),
                sweep.run_estimate_s(missing, share),
            )
            parts.append(
                f"  estimate: points {first_s:.2f} s, rounds {measuring_s - first_s:.2f} s, "
                f"page {runner.offered_s(missing, key_) - measuring_s:.2f} s"
            )
            planned.extend(missing)
        offered[key_] = runner.offered_s(missing, key_)
        return should_run(missing, tasks, settings, key_, signature)

    def spy_learn(key_, measured, progress, measuring_s, page_s):
        if parts is not None and key_ == key:
            own_s = sum(float(r.get("wall_s") or 0.0) for r in measured.rows)
            parts.append(
                f"  actual:   points {own_s:.2f} s in all rounds (later rounds "
                f"{measured.rounds_s:.2f} s), page "
                f"{measuring_s - own_s - measured.setup_s + page_s:.2f} s "
                f"({progress.redraws} redraws, {progress.drawing_s:.2f} s), one-time "
                f"set-up {measured.setup_s:.2f} s"
            )
            for row in measured.rows:  # each point: its estimate against what it took
                task = next(
                    t for t in planned if t.backend.label == row["backend"]
                    and all(row.get(name) == value for name, value in t.point)
                )  # fmt: skip
                first_s = float(row.get("first_call_s") or 0)
                parts.append(
                    f"    {task.label} on {row['backend']}: estimate {task.estimate_s:.3f} s, "
                    f"a round {sweep._round_s(row):.3f} s, {row.get('rounds')} rounds, "
                    f"n {row.get('n')}, first call {first_s:.3f} s, flags {row.get('flags')}"
                )
        return learn_page(key_, measured, progress, measuring_s, page_s)

    runner._should_run, runner._learn_page = spy, spy_learn
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
        runner._should_run, runner._learn_page = should_run, learn_page


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--budget-s", type=float, default=1.0)
    parser.add_argument("--parts", action="store_true", help="print each visit's parts")
    parser.add_argument("--pages", default=",".join(Path(p).stem for p in PAGES),
                        help="which pages, by name: elementwise,matmul,...")  # fmt: skip
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
    chosen = args.pages.split(",")
    for page, key in [(p, k) for p, k in PAGES.items() if Path(p).stem in chosen]:
        parts: list[str] | None = [] if args.parts else None
        runner.clear_cache()
        first = _visit(page, key, args.budget_s, parts)
        runner.clear_cache()  # the second visit measures again, and learns from the store
        second = _visit(page, key, args.budget_s, parts)
        name = Path(page).stem
        lines.append(
            f"| {name} | {first[0]:.1f} s | {first[1]:.1f} s | {first[0] / first[1]:.2f} | "
            f"{second[0]:.1f} s | {second[1]:.1f} s | {second[0] / second[1]:.2f} |"
        )
        print(lines[-1], *(parts or []), sep="\n", flush=True)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
