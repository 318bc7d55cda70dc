"""Variants: the same work done another way, each checked against the CPU and skipped, with
its reason, where a backend cannot run it."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch

from core.keep import results
from core.measure import devices, sweep
from core.measure.workloads import get, variants

SETTINGS = sweep.SweepSettings(timing=sweep.timing.TimingSettings(budget_s=0.05))
CPU = [sweep.Backend("cpu", 1)]


def measured(workload: str, grid: dict, settings=SETTINGS) -> list[dict]:
    tasks = sweep.plan(get(workload), grid, CPU, settings)
    return [sweep.measure_task(task, settings) for task in tasks]


@pytest.mark.parametrize("variant", ["eager", "channels_last", "autocast", "autocast_fp16"])
def test_conv_variants_run_and_match_the_cpu_reference(variant):
    (row,) = measured("conv2d", {"channels": [4], "size": [8], "variant": [variant]})
    assert row["status"] == "ok", row["message"]
    assert row["variant"] == variant
    assert "mismatch" not in row["flags"]
    # Autocast is judged at its own precision, not float32's.
    low = variants.autocast_dtype(variant, "cpu")
    assert row["max_rel_err"] <= sweep.TOLERANCE[low or "float32"]


def test_autocast_error_is_allowed_its_precision_and_no_more(monkeypatch):
    assert variants.check_dtype({"variant": "autocast"}, "cpu", torch.float32) == "bfloat16"
    assert variants.check_dtype({"variant": "autocast"}, "cuda", torch.float32) == "float16"
    assert variants.check_dtype({"variant": "compile"}, "cuda", torch.float32) == "float32"
    assert variants.check_dtype({}, "cpu", torch.float64) == "float64"


def test_training_step_runs_each_cheap_variant():
    grid = {"model": ["resnet18"], "batch": [2], "image_size": [32],
            "variant": ["channels_last", "autocast"]}  # fmt: skip
    rows = measured("train", grid)
    assert [r["status"] for r in rows] == ["ok", "ok"], [r["message"] for r in rows]
    assert {r["variant"] for r in rows} == {"channels_last", "autocast"}


def test_compile_is_timed_compiled_and_its_compiling_reported_apart(monkeypatch):
    made = []

    def spy(work):
        made.append(work)
        return real(work)

    real = variants.compiled
    monkeypatch.setattr(variants, "compiled", spy)
    (row,) = measured("matmul", {"size": [16], "variant": ["compile"]})
    assert row["status"] == "ok", row["message"]
    assert made, "torch.compile was never asked for"
    assert math.isfinite(row["first_call_s"]) and row["n"] >= 1
    assert "mismatch" not in row["flags"]


def test_a_variant_the_backend_cannot_run_is_skipped_with_the_reason(monkeypatch):
    half = sweep.SweepSettings(dtype="float16")
    (row,) = measured("matmul", {"size": [16], "variant": ["autocast"]}, half)
    assert row["status"] == "skipped"
    assert "autocast lowers float32 work; this point is already float16" in row["message"]

    real = devices.dtype_support
    monkeypatch.setattr(
        devices, "dtype_support",
        lambda d, t: ("unsupported", "float16 is not supported by this CPU")
        if str(t).endswith("float16") else real(d, t),
    )  # fmt: skip
    (row,) = measured("conv2d", {"channels": [4], "size": [8], "variant": ["autocast_fp16"]})
    assert row["status"] == "skipped" and "float16 is not supported" in row["message"]


def test_compile_on_mps_without_a_metal_backend_is_a_reason_not_a_crash(monkeypatch):
    variants.compile_unsupported.cache_clear()
    monkeypatch.setattr(variants.importlib.util, "find_spec", lambda name: None)
    try:
        reason = variants.unsupported({"variant": "compile"}, torch.device("mps"), torch.float32)
    finally:
        variants.compile_unsupported.cache_clear()
    assert reason == f"torch {torch.__version__} has no torch.compile backend for MPS"
    assert variants.unsupported({"variant": "compile"}, torch.device("cpu"), torch.float32) is None


def test_matmul_offers_no_memory_layout_and_says_what_it_offers():
    with pytest.raises(ValueError, match="variant: 'channels_last' is not known"):
        get("matmul").validate({"variant": "channels_last"})


def test_compile_is_priced_and_learned_apart_from_eager():
    plain, compiled = sweep.plan(
        get("matmul"), {"size": [64], "variant": ["eager", "compile"]}, CPU, SETTINGS
    )
    assert compiled.estimate_s - plain.estimate_s >= variants.COMPILE_SETUP_S["matmul"] - 1
    history = pd.DataFrame([{
        "workload": "matmul", "backend": CPU[0].label, "dtype": "float32", "variant": "eager",
        "flops": plain.cost.flops, "bytes": plain.cost.bytes_moved,
        "wall_s": 10 * plain.estimate_s, "flags": "",
    }])  # fmt: skip
    learned_plain, learned_compiled = sweep.learned([plain, compiled], history, SETTINGS)
    assert learned_plain.estimate_s == pytest.approx(10 * plain.estimate_s)
    assert learned_compiled.estimate_s == compiled.estimate_s  # eager says nothing of compiling


def frame(*rows) -> pd.DataFrame:
    made = [
        {"workload": "matmul", "size": 64, "variant": variant, "backend": backend,
         "device": backend, "dtype": "float32", "median_s": median_s, "status": "ok"}
        for backend, variant, median_s in rows
    ]  # fmt: skip
    return results.to_frame(made, ["size", "m", "k", "batch", "variant"])


def test_variants_are_told_apart_and_read_against_any_backend_and_variant():
    table = frame(("cpu", "eager", 8.0), ("cpu", "compile", 4.0), ("cuda", "eager", 2.0),
                  ("cuda", "compile", 1.0))  # fmt: skip
    plain = results.add_speedup(table)
    assert results.baseline_of(results.fold_variants(table)) == "cpu · eager"
    assert dict(zip(plain["backend"], plain["speedup"], strict=True)) == {
        "cpu · eager": 1.0,
        "cpu · compile": 2.0,
        "cuda · eager": 4.0,
        "cuda · compile": 8.0,
    }
    on_gpu = results.add_speedup(table, "cuda · eager")
    assert dict(zip(on_gpu["backend"], on_gpu["speedup"], strict=True))["cuda · compile"] == 2.0


def test_eager_alone_keeps_the_plain_labels():
    table = frame(("cpu", "eager", 8.0), ("cuda", "eager", 2.0))
    assert list(results.add_speedup(table)["backend"]) == ["cpu", "cuda"]


def test_rows_from_before_variants_ran_eagerly():
    old = results.to_frame(
        [{"workload": "conv2d", "channels": 8, "size": 16, "kernel": 3, "batch": 1,
          "backend": "cpu", "median_s": 1.0, "status": "ok"}],
        get("conv2d").param_names,
    )  # fmt: skip
    assert old.loc[0, "variant"] == "eager"
    assert old.loc[0, "stride"] == 1 and old.loc[0, "out_channels"] == 0  # as many as in


def test_the_cli_runs_variants_and_reads_speedups_against_the_one_named(capsys):
    from core import cli

    argv = ["run", "matmul", "size=16", "m=8", "variant=eager,autocast", "--devices", "cpu:1",
            "--no-store", "--point-budget-s", "0.02"]  # fmt: skip
    assert cli.main([*argv, "--against", "cpu (1 thread)/autocast"]) == 0
    table = capsys.readouterr().out
    assert "cpu (1 thread) · autocast" in table and "cpu (1 thread) · eager" in table
    header = next(line for line in table.splitlines() if "backend" in line).split()
    assert "m" in header and "k" not in header  # K left at N (0) is no column of its own
    assert cli.main([*argv, "--against", "cuda"]) == 2
    said = capsys.readouterr().err.strip().splitlines()[-1]
    assert said.startswith("error: --against: 'cuda' is not measured here; choose from")


def test_against_accel_names_this_machines_accelerator():
    from types import SimpleNamespace

    from core import cli

    def task(variant, label):
        return SimpleNamespace(params={"variant": variant}, backend=SimpleNamespace(label=label))

    tasks = [task("eager", "cpu (1 thread)"), task("compile", "cuda")]
    assert cli._against("accel/eager", tasks) == "cuda · eager"
    assert cli._against("ACCEL · compile", tasks) == "cuda · compile"
    assert cli._against(None, tasks) is None


@pytest.mark.parametrize("workload", ["inference", "train"])
def test_the_vision_transformer_runs_beside_the_cnns_and_is_checked(workload):
    grid = {"model": ["vit_b_16"], "batch": [2], "image_size": [32, 40]}
    fits, odd = measured(workload, grid)
    assert fits["status"] == "ok", fits["message"]
    # A head started at zero would pass any check: the outputs must be compared for real.
    assert fits["max_rel_err"] is not None and "mismatch" not in fits["flags"]
    assert odd["status"] == "skipped"
    assert odd["message"] == "vit_b_16 needs an image size that is a multiple of 16 px"


def test_a_vit_head_is_not_left_at_zero():
    from core.measure.workloads import models

    head = models.new_model("vit_b_16", False, 32).heads.head.weight
    assert head.abs().sum() > 0
