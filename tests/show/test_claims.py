"""Claims drawn from speedups: only from clear winners measured on a quiet machine."""

import json

import numpy as np
import pandas as pd

from core.keep import results
from core.show import charts, crossover

RNG = np.random.default_rng(11)
CPU, GPU = "cpu (1 thread)", "cuda:0"


def _row(backend, size, median_s, spread=0.01, flags="", n=60):
    times = list(RNG.normal(median_s, median_s * spread, n))
    return {"workload": "elementwise", "op": "add", "size": size, "backend": backend,
            "dtype": "float32", "status": "ok", "median_s": float(np.median(times)),
            "times_s": json.dumps(times), "flags": flags}  # fmt: skip


def _frame(*rows):
    return results.add_speedup(results.to_frame(list(rows), ["op", "size"]))


def test_the_duel_says_too_close_to_call_when_the_interval_holds_one():
    frame = _frame(_row(CPU, 1000, 1e-3, spread=0.3, n=5), _row(GPU, 1000, 0.95e-3, 0.3, n=5))
    assert charts.speedup_text(frame).startswith(f"{GPU} against {CPU}: too close to call (")


def test_the_duel_states_a_clear_win_with_its_interval():
    frame = _frame(_row(CPU, 1000, 2e-3), _row(GPU, 1000, 1e-3))
    text = charts.speedup_text(frame)
    assert text.startswith(f"{GPU} is 2") and "faster than" in text and "× (" in text


def test_no_claim_from_a_busy_machine():
    frame = _frame(_row(CPU, 1000, 2e-3, flags="busy"), _row(GPU, 1000, 1e-3))
    assert "not claimed, the machine was busy" in charts.speedup_text(frame)


def test_the_heatmap_marks_cells_with_no_clear_winner():
    frame = _frame(
        _row(CPU, 1000, 1e-3, spread=0.3, n=5), _row(GPU, 1000, 0.95e-3, spread=0.3, n=5),
        _row(CPU, 2000, 4e-3), _row(GPU, 2000, 1e-3),
    )  # fmt: skip
    spec = charts.speedup_heatmap(frame, "size", "op").to_dict()
    cells = next(iter(spec["datasets"].values()))
    labels = {cell["size"]: cell["label"] for cell in cells}
    assert labels[1000].startswith("≈ ") and not labels[2000].startswith("≈")


def test_crossover_skips_points_that_are_too_close_or_busy():
    rows = [
        _row(CPU, 1000, 1e-3), _row(GPU, 1000, 4e-3),  # clearly slower
        _row(CPU, 2000, 1e-3, 0.3, n=5), _row(GPU, 2000, 1e-3, 0.3, n=5),  # too close
        _row(CPU, 4000, 4e-3, flags="busy"), _row(GPU, 4000, 1e-3),  # busy baseline
        _row(CPU, 8000, 8e-3), _row(GPU, 8000, 1e-3),  # clearly faster
    ]  # fmt: skip
    found = crossover.crossover(_frame(*rows), "size")
    (row,) = found.to_dict("records")
    assert row["direction"] == "wins_above"
    # Interpolated between 1000 (0.25×) and 8000 (8×) only.
    assert 1000 < row["crossover_x"] < 8000


def test_each_compared_point_gets_a_verdict_with_the_threshold_named():
    from core.show import report

    mine = results.to_frame(
        [{**_row(CPU, 1000, 1e-3), "device": "cpu"}, {**_row(CPU, 2000, 2e-3), "device": "cpu"},
         {**_row(CPU, 4000, 4e-3, spread=0.3, n=5), "device": "cpu"}],
        ["op", "size"],
    )  # fmt: skip
    post = pd.DataFrame(
        [{"workload": "elementwise", "op": "add", "size": size, "backend": "cpu", "device": "cpu",
          "dtype": "float32", "status": "ok", "median_s": median_s, "machine": "post"}
         for size, median_s in ((1000, 2e-3), (2000, 2e-3), (4000, 4e-3))]
    )  # fmt: skip
    table = report.ratio_table(mine, post, ["op", "size"])
    assert "±5%" in report.VERDICT_COLUMN
    verdicts = dict(zip(table["size"], table[report.VERDICT_COLUMN], strict=True))
    assert verdicts == {1000: "faster", 2000: "same", 4000: "unsure"}
    summary = report.ratio_summary(table)
    assert summary[report.VERDICT_COLUMN].iloc[0] == "1 faster, 1 same, 1 unsure"
