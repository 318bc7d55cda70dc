"""Every registered workload at tiny sizes, with costs stated before allocation."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from core.errors import BadInput
from core.measure import sweep, workloads
from tests.helpers import measure_point

TINY = {
    "elementwise": {"size": 2000},
    "conv2d": {"channels": 4, "size": 8, "kernel": 3},
    "matmul": {"size": 32},
    "inference": {"model": "mobilenet_v3_small", "batch": 1, "image_size": 32},
    "train": {"model": "resnet18", "batch": 2, "image_size": 32},
    "attention": {"seq_len": 32, "heads": 2},
}


def test_the_registry_has_the_posts_workloads():
    assert {"elementwise", "conv2d", "matmul", "inference", "train"} <= set(workloads.REGISTRY)
    assert {"add", "mul", "exp", "sin", "relu"} <= set(workloads.OPS)
    assert {"resnet18", "mobilenet_v2"} <= set(workloads.MODELS)


@pytest.mark.parametrize("name", sorted(workloads.REGISTRY))
def test_each_workload_runs_tiny_and_matches_the_float64_reference(name):
    workload = workloads.get(name)
    params = workload.validate(TINY[name])
    row = measure_point(
        workload,
        params,
        sweep.Backend("cpu", 1),
        sweep.SweepSettings(timing=sweep.timing.TimingSettings(budget_s=0.05)),
    )
    assert row["status"] == "ok", row["message"]
    assert row["n"] >= 3
    assert row["median_s"] > 0
    assert row["flops"] > 0 and row["bytes"] > 0 and row["memory_estimate_bytes"] > 0
    assert row["max_rel_err"] < 1e-4
    assert "mismatch" not in row["flags"]


@pytest.mark.parametrize("op", sorted(workloads.OPS))
def test_every_elementwise_op_checks_out(op):
    workload = workloads.get("elementwise")
    prepared = workload.build({"op": op, "size": 3000}, torch.device("cpu"), torch.float32)
    actual, expected = prepared.check()
    assert workloads.base.relative_error(actual, expected) < 1e-5


def test_costs_follow_the_textbook_formulas():
    f32 = torch.float32
    assert workloads.get("matmul").cost({"size": 100}, f32).flops == 2 * 100**3
    conv = workloads.get("conv2d").cost({"batch": 2, "channels": 8, "size": 16, "kernel": 3}, f32)
    assert conv.flops == 2 * 2 * 8 * 16 * 16 * 8 * 3 * 3
    add = workloads.get("elementwise").cost({"op": "add", "size": 1000}, f32)
    assert add.bytes_moved == 3 * 1000 * 4
    half = workloads.get("elementwise").cost({"op": "add", "size": 1000}, torch.float16)
    assert half.bytes_moved == add.bytes_moved / 2


def test_model_flops_come_from_the_flop_counter_without_allocating():
    cost = workloads.get("inference").cost(
        {"model": "resnet18", "batch": 1, "image_size": 224}, torch.float32
    )
    # ResNet-18 is 1.82 GMACs at 224x224, i.e. about 3.6 GFLOPs.
    assert 3.5e9 < cost.flops < 3.8e9
    train = workloads.get("train").cost(
        {"model": "resnet18", "batch": 1, "image_size": 224}, torch.float32
    )
    assert train.flops == pytest.approx(3 * cost.flops)
    assert train.memory_bytes > cost.memory_bytes


@pytest.mark.parametrize(
    ("name", "values", "fragment"),
    [
        ("elementwise", {"size": "abc"}, "not a number"),
        ("elementwise", {"size": -1}, "out of range"),
        ("elementwise", {"size": "1e99"}, "out of range"),
        ("elementwise", {"size": "nan"}, "not finite"),
        ("elementwise", {"size": 1000.5}, "whole number"),
        ("elementwise", {"op": "nope"}, "choose from add"),
        ("inference", {"model": "vgg"}, "choose from resnet18"),
        ("matmul", {"bogus": 1}, "no parameter 'bogus'"),
    ],
)
def test_bad_values_name_the_parameter_and_what_is_allowed(name, values, fragment):
    with pytest.raises(BadInput, match=fragment):
        workloads.get(name).validate(values)


def test_unknown_workload_and_dtype_are_refused():
    with pytest.raises(BadInput, match="choose from elementwise"):
        workloads.get("fft")
    with pytest.raises(BadInput, match="choose from float32"):
        workloads.parse_dtype("int3")
    with pytest.raises(BadInput, match="choose from float32"):
        workloads.parse_dtype_name("int3")


def test_dtypes_by_name_and_by_torch_dtype():
    assert workloads.DTYPE_NAMES == ("float32", "float16", "bfloat16", "float64")
    for name in workloads.DTYPE_NAMES:
        dtype = workloads.parse_dtype(f" {name.upper()} ")
        assert workloads.dtype_name(dtype) == workloads.parse_dtype_name(name) == name
        assert workloads.base.itemsize(name) == dtype.itemsize == workloads.base.itemsize(dtype)
        assert workloads.base.TOLERANCE[dtype] == workloads.base.TOLERANCE[name]
    assert workloads.base.skip_reason("mps", torch.float64) == "MPS has no float64"
    assert workloads.base.skip_reason("mps", "float32") is None


def test_a_cost_takes_a_dtype_name_too():
    for name, values in TINY.items():
        workload = workloads.get(name)
        params = workload.validate(values)
        assert workload.cost(params, "float16") == workload.cost(params, torch.float16)


def test_the_registry_reads_without_torch():
    # Charts, the post's reference and file imports read workload facts from the registry.
    code = (
        "import core.measure.workloads, core.keep.reference, core.keep.files; import sys; "
        "from core.measure.workloads import get, REGISTRY, Param, Workload, OPS, MODELS, "
        "DTYPE_NAMES; get('matmul').cost({'size': 64}, 'float32'); "
        "core.keep.reference.reference_frame(); "
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("name", sorted(workloads.REGISTRY))
def test_every_workload_says_what_to_show(name):
    workload = workloads.get(name)
    assert workload.title and workload.question.endswith("?")
    assert workload.x_param in workload.param_names
    assert workload.x_title == workload.param(workload.x_param).axis_title
    assert all(param.axis_title for param in workload.params)


def test_axis_titles_name_the_unit():
    assert workloads.get("elementwise").x_title == "size (elements)"
    assert workloads.get("matmul").x_title == "matrix size N"
    assert workloads.get("conv2d").param("size").axis_title == "image size H=W (px)"
    assert workloads.get("train").param("image_size").axis_title == "image size (px)"
    assert workloads.get("inference").x_title == "batch size"
    assert workloads.param_names("matmul", "nope") == ("size", "m", "k", "batch", "variant")
    assert workloads.param_names()[:2] == ("op", "size")


@pytest.mark.parametrize("name", ["conv2d", "inference", "train"])
def test_a_reference_too_costly_is_not_run_and_the_note_says_so(name, monkeypatch):
    monkeypatch.setattr(workloads.forward, "CHECK_MAX_FLOPS", 0)
    workload = workloads.get(name)
    prepared = workload.build(workload.validate(TINY[name]), torch.device("cpu"), torch.float32)
    assert prepared.check() is None
    assert prepared.check_note == workloads.forward.NOT_CHECKED
