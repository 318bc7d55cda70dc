"""The element-wise workload's row-wise ops (softmax, layer norm, sum, sort) at tiny sizes on
the CPU, and the post's ops unchanged beside them."""

import pandas as pd
import pytest
import torch

from core.cli import main
from core.measure import sweep, workloads
from core.measure.workloads import elementwise
from core.measure.workloads.base import relative_error
from tests.helpers import measure_point

W = workloads.get("elementwise")
CPU = torch.device("cpu")
ROW_OPS = ("softmax", "layer_norm", "sum", "sort")
FAST = sweep.SweepSettings(timing=sweep.timing.TimingSettings(budget_s=0.05))


def test_the_new_ops_come_after_the_posts_and_are_offered():
    names = list(workloads.OPS)
    assert names[:9] == ["add", "mul", "exp", "sin", "relu", "sqrt", "tanh", "sigmoid", "gelu"]
    assert set(ROW_OPS) <= set(names)
    assert set(ROW_OPS) <= set(W.param("op").choices)


@pytest.mark.parametrize("op", ["add", "exp", "sqrt", "gelu"])
@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_the_posts_ops_cost_what_they_did(op, dtype):
    arity, width, size = 2 if op == "add" else 1, 4 if dtype == "float32" else 2, 10**6
    cost = W.cost({"op": op, "size": size}, dtype)
    assert cost.flops == size
    assert cost.bytes_moved == (arity + 1) * size * width
    assert cost.memory_bytes == (arity + 3) * size * width + elementwise.ALLOCATOR_SLACK_BYTES


def test_the_row_ops_costs():
    size, width = 10**6, 4
    rows = size // elementwise.ROW_WIDTH
    cost = {op: W.cost({"op": op, "size": size}, "float32") for op in ROW_OPS}
    assert cost["softmax"].bytes_moved == cost["layer_norm"].bytes_moved == 2 * size * width
    assert cost["sum"].bytes_moved == (size + rows) * width  # one value written per row
    assert cost["sort"].bytes_moved == 2 * size * width + 8 * size  # values and int64 indices
    assert cost["sort"].memory_bytes > cost["softmax"].memory_bytes
    assert all(c.flops >= size for c in cost.values())


@pytest.mark.parametrize("op", ROW_OPS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_each_row_op_matches_its_float64_reference(op, dtype):
    prepared = W.build({"op": op, "size": 3000}, CPU, dtype)
    actual, expected = prepared.check()
    assert relative_error(actual, expected) < workloads.base.TOLERANCE[dtype]
    assert prepared.check_note == ""


def test_row_ops_work_along_rows_of_a_fixed_width():
    x = W.build({"op": "sort", "size": 3000}, CPU, torch.float32).fn()
    assert x.shape == (3, elementwise.ROW_WIDTH)
    assert bool((x[:, 1:] >= x[:, :-1]).all())  # each row sorted, not the whole vector
    assert W.build({"op": "sum", "size": 3000}, CPU, torch.float32).fn().shape == (3,)
    soft = W.build({"op": "softmax", "size": 3000}, CPU, torch.float32).fn()
    assert torch.allclose(soft.sum(-1), torch.ones(3))


@pytest.mark.parametrize("op", ["softmax", "sum"])
def test_a_block_of_rows_is_an_exact_check_of_the_timed_output(op, monkeypatch):
    monkeypatch.setattr(elementwise, "CHECK_MAX_ELEMENTS", 2000)
    prepared = W.build({"op": op, "size": 5000}, CPU, torch.float32)
    actual, expected = prepared.check()
    assert prepared.check_note == "checked the first 2 rows"
    assert torch.equal(actual, prepared.fn()[:2])  # rows do not depend on each other
    assert relative_error(actual, expected) < 1e-5


def test_a_size_that_is_not_whole_rows_is_skipped_with_the_reason():
    row = measure_point(W, {"op": "softmax", "size": 1500}, sweep.Backend("cpu", 1), FAST)
    assert row["status"] == "skipped"
    assert row["message"] == "softmax works along rows of 1000 elements; 1500 is not a multiple"
    ok = measure_point(W, {"op": "add", "size": 1500}, sweep.Backend("cpu", 1), FAST)
    assert ok["status"] == "ok"


def test_the_cli_runs_the_new_ops(tmp_path):
    out = tmp_path / "ops.csv"
    args = ["run", "elementwise", "op=softmax,layer_norm,sum,sort", "size=2e3", "--devices"]
    args += ["cpu", "--threads", "1", "--point-budget-s", "0.05", "--out", str(out)]
    assert main(args) == 0
    frame = pd.read_csv(out)
    assert list(frame["op"]) == list(ROW_OPS)
    assert set(frame["status"]) == {"ok"}
    assert (frame["max_rel_err"] < 1e-5).all()
