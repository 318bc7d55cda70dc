"""One table for the app and the terminal, and one line per point that was not measured."""

import pandas as pd

from core.keep import results
from core.show import tables


def _frame() -> pd.DataFrame:
    rows = [
        {"workload": "matmul", "size": 32, "backend": "cpu (1 thread)", "dtype": "float32",
         "median_s": 2e-3, "p25_s": 1e-3, "p75_s": 3e-3, "n": 9, "first_call_s": 0.5,
         "threads": 1, "status": "ok", "flags": "", "message": ""},
        {"workload": "matmul", "size": 16, "backend": "cpu (1 thread)", "dtype": "float32",
         "status": "refused", "flags": "", "message": "needs about 9 GB"},
        {"workload": "matmul", "size": 64, "backend": "cpu (1 thread)", "dtype": "float32",
         "median_s": 1e-3, "status": "ok", "flags": "mismatch", "message": "differs"},
    ]  # fmt: skip
    return results.add_speedup(results.to_frame(rows, ["size"]))


def test_the_result_table_is_formatted_and_sorted_by_the_point():
    table = tables.result_table(_frame())
    assert list(table["size"]) == [16, 32, 64]
    assert list(table.columns[:3]) == ["size", "backend", "dtype"]
    row = table[table["size"] == 32].iloc[0]
    assert row["median"] == "2 ms" and row["IQR"] == "1 ms – 3 ms"
    assert table[table["size"] == 16].iloc[0]["IQR"] == "-"


def test_problems_name_the_point_the_backend_and_why():
    lines = tables.problems(_frame())
    assert lines == [
        "matmul size=16 on cpu (1 thread): refused — needs about 9 GB",
        "matmul size=64 on cpu (1 thread): output check failed — differs",
    ]
