"""The accelerator path on real hardware. Skips where this machine has no accelerator."""

import pytest
import torch

from core.keep import results
from core.measure import ceilings, devices, sweep, timing, workloads
from tests.helpers import measure_point, run_sweep

ACCELERATOR = devices.device_strings()[1] if len(devices.device_strings()) > 1 else None
pytestmark = pytest.mark.skipif(ACCELERATOR is None, reason="no accelerator on this machine")

QUICK = sweep.SweepSettings(timing=timing.TimingSettings(budget_s=0.2))


def test_every_workload_matches_the_cpu_on_the_accelerator():
    grids = {
        "elementwise": {"op": list(workloads.OPS), "size": [1_000_000]},
        "conv2d": {"channels": [32], "size": [64], "kernel": [3, 7]},
        "matmul": {"size": [512]},
        "inference": {"model": list(workloads.MODELS), "batch": [2], "image_size": [64]},
        "train": {"model": ["resnet18", "mobilenet_v2"], "batch": [4], "image_size": [64]},
    }
    for name, grid in grids.items():
        for dtype in ("float32", "bfloat16"):
            settings = sweep.SweepSettings(dtype=dtype, timing=QUICK.timing)
            rows = run_sweep(workloads.get(name), grid, [sweep.Backend(ACCELERATOR)], settings)
            frame = results.to_frame(rows, workloads.get(name).param_names)
            bad = frame[(frame["status"] != "ok") | frame["flags"].str.contains("mismatch|nonf")]
            assert bad.empty, bad[["backend", "status", "flags", "message"]].to_string()


def test_one_synchronize_per_timed_repeat_on_the_real_device():
    calls = []

    def counting_sync(device):
        calls.append(device)
        devices.synchronize(device)

    a = torch.randn(2048, 2048, device=ACCELERATOR)
    result = timing.measure(
        lambda: a @ a, ACCELERATOR, timing.TimingSettings(budget_s=0.3), sync=counting_sync
    )
    # One before the first call, one after it, one per warm-up and timed repeat, and one
    # after each call that measures the launch time.
    launches = timing.launch_tries(min(result.warmup_s))
    assert len(calls) == 2 + len(result.warmup_s) + result.n + launches
    assert result.timer == ("perf_counter" if ACCELERATOR == "mps" else "events")


def test_the_memory_estimate_covers_the_measured_peak():
    for name, values in (
        ("train", {"model": "resnet18", "batch": 16, "image_size": 128}),
        ("inference", {"model": "mobilenet_v2", "batch": 16, "image_size": 128}),
        ("conv2d", {"channels": 64, "size": 256, "kernel": 7}),
        ("matmul", {"size": 4096}),
    ):
        workload = workloads.get(name)
        row = measure_point(workload, workload.validate(values), sweep.Backend(ACCELERATOR), QUICK)
        assert row["status"] == "ok", row["message"]
        assert row["peak_memory_bytes"] <= row["memory_estimate_bytes"], (name, row)


def test_a_refused_point_allocates_nothing_on_the_device():
    before = torch.accelerator.memory_allocated(ACCELERATOR)
    workload = workloads.get("matmul")
    row = measure_point(
        workload,
        workload.validate({"size": 32768}),
        sweep.Backend(ACCELERATOR),
        sweep.SweepSettings(memory_budget_bytes=10**6),
    )
    assert row["status"] == "refused"
    assert torch.accelerator.memory_allocated(ACCELERATOR) == before


def test_real_rows_are_not_suspect_and_an_unsynced_one_is():
    roofs = ceilings.measure_ceilings(ACCELERATOR, budget_s=0.3)
    rows = run_sweep(workloads.get("matmul"), {"size": [4096]}, [sweep.Backend(ACCELERATOR)], QUICK)
    frame = results.to_frame(rows, ["size"])
    judged = ceilings.apply(frame, {ACCELERATOR: roofs})
    assert "suspect" not in judged["flags"].iloc[0]
    # The same row as an unsynchronized timer would report it: the enqueue time only.
    faked = frame.assign(
        **{c: frame[c] / 1000 for c in ("median_s", "median_low_s", "median_high_s")}
    )
    assert "suspect" in ceilings.apply(faked, {ACCELERATOR: roofs})["flags"].iloc[0]


def test_pipelined_timing_runs_an_untimed_call_before_each_timed_one():
    if ACCELERATOR == "mps":
        pytest.skip("MPS is timed with perf_counter, which cannot pipeline")
    calls = []
    a = torch.randn(1024, 1024, device=ACCELERATOR)

    def fn():
        calls.append(1)
        return a @ a

    settings = timing.TimingSettings(budget_s=0.2, pipelined=True)
    result = timing.measure(fn, ACCELERATOR, settings)
    assert result.timer == "events-pipelined"
    launches = timing.launch_tries(min(result.warmup_s))  # untimed calls, launch time
    assert len(calls) == 1 + 2 * (len(result.warmup_s) + result.n) + launches
