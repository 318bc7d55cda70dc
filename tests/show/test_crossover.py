import math

import pandas as pd
import pytest

from core.keep.results import to_frame
from core.show.crossover import crossover

CPU = "cpu (8 threads)"
GPU = "cuda:0"


def table(speedups: dict[str, list[tuple[float, float]]], extra: list[dict] = ()) -> pd.DataFrame:
    """Element-wise results where the GPU's speedup at each (op, size) is given."""
    rows = []
    for op, points in speedups.items():
        for size, speedup in points:
            common = {"run_id": "r", "workload": "elementwise", "op": op, "size": size}
            rows.append({**common, "backend": CPU, "median_s": 1.0, "status": "ok"})
            rows.append({**common, "backend": GPU, "median_s": 1.0 / speedup, "status": "ok"})
    return to_frame([*rows, *extra], ["op", "size"])


def only(result: pd.DataFrame, op: str) -> pd.Series:
    matches = result[result["op"] == op]
    assert len(matches) == 1
    return matches.iloc[0]


def test_interpolates_in_log_space():
    result = crossover(table({"sin": [(1e4, 0.5), (1e6, 2.0)]}), "size", unit="elements")
    row = only(result, "sin")
    assert row["crossover_x"] == pytest.approx(1e5, rel=1e-12)
    assert row["direction"] == "wins_above"
    assert row["backend"] == GPU
    assert row["sentence"] == "sin: cuda:0 wins from size ≈ 1e5 elements"


def test_columns_and_baseline_left_out():
    result = crossover(table({"sin": [(1e4, 0.5), (1e6, 2.0)]}), "size")
    assert list(result.columns) == ["op", "backend", "crossover_x", "direction", "sentence"]
    assert CPU not in set(result["backend"])


def test_uneven_bracket_uses_log_speedup():
    # log10 x goes 3 -> 5; log s goes ln(0.25) -> ln(4): zero is exactly halfway.
    row = only(crossover(table({"exp": [(1e3, 0.25), (1e5, 4.0)]}), "size"), "exp")
    assert row["crossover_x"] == pytest.approx(1e4, rel=1e-12)
    # Skewed: ln(0.5) -> ln(8) crosses a quarter of the way along.
    row = only(crossover(table({"exp": [(1e2, 0.5), (1e6, 8.0)]}), "size"), "exp")
    assert row["crossover_x"] == pytest.approx(10 ** (2 + 4 * 0.25), rel=1e-12)


def test_picks_the_bracketing_pair_and_sorts_by_x():
    points = [(1e6, 4.0), (1e2, 0.1), (1e4, 0.5), (1e5, 2.0), (1e3, 0.2)]
    row = only(crossover(table({"sin": points}), "size"), "sin")
    assert row["crossover_x"] == pytest.approx(10**4.5, rel=1e-12)


def test_wins_below():
    row = only(crossover(table({"add": [(10, 2.0), (1000, 0.5)]}), "size", unit="px"), "add")
    assert row["direction"] == "wins_below"
    assert row["crossover_x"] == pytest.approx(100.0)
    assert row["sentence"] == "add: cuda:0 wins below size ≈ 100 px"


def test_always_and_never():
    result = crossover(
        table({"add": [(1e3, 1.5), (1e6, 30.0)], "exp": [(1e3, 0.2), (1e6, 1.0)]}), "size"
    )
    add, exp = only(result, "add"), only(result, "exp")
    assert add["direction"] == "always" and math.isnan(add["crossover_x"])
    assert add["sentence"] == "add: cuda:0 is faster at every size measured"
    # Exactly 1 is not a win.
    assert exp["direction"] == "never" and math.isnan(exp["crossover_x"])
    assert exp["sentence"] == "exp: cpu (8 threads) stays faster at every size measured"


def test_noise_near_one_reports_the_last_crossing_for_wins_above():
    points = [(1e2, 0.5), (1e3, 1.2), (1e4, 0.9), (1e5, 3.0)]
    row = only(crossover(table({"sin": points}), "size"), "sin")
    assert row["direction"] == "wins_above"
    assert 1e4 < row["crossover_x"] < 1e5


def test_window_of_wins():
    points = [(1e2, 0.5), (1e3, 2.0), (1e4, 2.0), (1e5, 0.5)]
    row = only(crossover(table({"sin": points}), "size"), "sin")
    assert row["direction"] == "wins_between"
    assert row["crossover_x"] == pytest.approx(10**2.5)
    assert row["sentence"] == "sin: cuda:0 wins only at size ≈ 320 to 3.2e4"


def test_single_point():
    row = only(crossover(table({"sin": [(1e5, 3.0)]}), "size"), "sin")
    assert row["direction"] == "always"
    assert math.isnan(row["crossover_x"])


def test_empty_input():
    result = crossover(to_frame([], ["op", "size"]), "size")
    assert result.empty
    assert list(result.columns) == ["op", "backend", "crossover_x", "direction", "sentence"]


def test_nan_and_failed_rows_are_ignored():
    bad = [
        {
            "workload": "elementwise",
            "op": "sin",
            "size": 1e5,
            "backend": GPU,
            "status": "failed",
            "message": "out of memory",
        },
        {
            "workload": "elementwise",
            "op": "sin",
            "size": 3e5,
            "backend": GPU,
            "median_s": float("nan"),
            "status": "ok",
        },
    ]
    frame = table({"sin": [(1e4, 0.5), (1e6, 2.0)]}, extra=bad)
    row = only(crossover(frame, "size"), "sin")
    assert row["crossover_x"] == pytest.approx(1e5, rel=1e-12)


def test_uses_existing_speedup_column():
    frame = table({"sin": [(1e4, 1.0), (1e6, 1.0)]})
    frame["speedup"] = [1.0, 0.5, 1.0, 2.0]  # baseline, GPU, baseline, GPU
    row = only(crossover(frame, "size"), "sin")
    assert row["crossover_x"] == pytest.approx(1e5, rel=1e-12)


def test_no_group():
    frame = table({"sin": [(1e4, 0.5), (1e6, 2.0)]}).drop(columns="op")
    result = crossover(frame, "size", group=None)
    assert list(result.columns) == ["group", "backend", "crossover_x", "direction", "sentence"]
    assert result.iloc[0]["sentence"] == "cuda:0 wins from size ≈ 1e5"


def test_missing_group_column_means_no_grouping():
    frame = table({"sin": [(1e4, 0.5), (1e6, 2.0)]}).drop(columns="op")
    result = crossover(frame, "size")  # default group="op"
    assert len(result) == 1
    assert result.iloc[0]["crossover_x"] == pytest.approx(1e5, rel=1e-12)


def test_repeated_x_pooled_by_geometric_mean():
    rows = []
    for size, channels, speedup in [(8, 1, 0.25), (8, 2, 1.0), (32, 1, 4.0), (32, 2, 1.0)]:
        common = {"workload": "conv2d", "size": size, "channels": channels}
        rows.append({**common, "backend": CPU, "median_s": 1.0, "status": "ok"})
        rows.append({**common, "backend": GPU, "median_s": 1 / speedup, "status": "ok"})
    result = crossover(to_frame(rows, ["size", "channels"]), "size", group=None)
    # Pooled: 0.5 at 8 and 2 at 32 -> halfway in log x.
    assert result.iloc[0]["crossover_x"] == pytest.approx(16.0)


def test_a_window_is_named_by_its_parameter_with_two_digits():
    # The matmul page once read "wins only between about 69.86 and 306.8".
    points = [(32, 0.5), (64, 0.9), (128, 2.0), (256, 1.5), (512, 0.6)]
    row = crossover(table({"float32": points}), "size").iloc[0]
    assert row["direction"] == "wins_between"
    assert row["sentence"] == "float32: cuda:0 wins only at size ≈ 70 to 350"
