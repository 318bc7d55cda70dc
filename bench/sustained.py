"""Why two fidelity points miss do_bench: sustained load and host-bound launches.

1. matmul 4096 bf16 timed by do_bench over 50 ms and over 1000 ms of back-to-back
   calls, with the SM clock read after each: a long run at full power lowers clocks.
2. The ResNet-18 training step's host launch time (median of 20) against its device
   time: when the host takes longer to launch a step than the device takes to run
   it, every timer that waits for the device measures the host.

    python bench/sustained.py
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch

from core.measure import devices, timing, workloads


def sm_clock_mhz() -> str:
    done = subprocess.run(
        ["nvidia-smi", "--query-gpu=clocks.sm,power.draw", "--format=csv,noheader"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip()


def main() -> None:
    from triton.testing import do_bench

    device = torch.device("cuda:0")
    matmul = workloads.get("matmul")
    prepared = matmul.build({"size": 4096}, device, torch.bfloat16)
    for rep_ms in (50, 1000, 50):
        median_ms = do_bench(prepared.fn, warmup=25, rep=rep_ms, return_mode="median")
        print(f"matmul 4096 bf16, do_bench rep={rep_ms} ms: {median_ms:.4f} ms; {sm_clock_mhz()}")
    engine = timing.measure(prepared.fn, device, timing.TimingSettings(budget_s=2.0))
    print(f"matmul 4096 bf16, engine: {engine.median_s * 1e3:.4f} ms (n={engine.n})")

    train = workloads.get("train")
    step = train.build(train.validate({"model": "resnet18", "batch": 32}), device, torch.float32)
    for _ in range(5):
        step.fn()
    devices.synchronize(device)
    launches_s = []
    for _ in range(20):
        start = time.perf_counter()
        step.fn()
        launches_s.append(time.perf_counter() - start)
        devices.synchronize(device)
    print(f"resnet18 train b32: host launch median {statistics.median(launches_s) * 1e3:.2f} ms")
    for name, settings in (
        ("synced", timing.TimingSettings(budget_s=2.0)),
        ("pipelined", timing.TimingSettings(budget_s=2.0, pipelined=True)),
    ):
        result = timing.measure(step.fn, device, settings)
        print(f"resnet18 train b32, engine {name}: {result.median_s * 1e3:.2f} ms")
    bench_ms = do_bench(step.fn, warmup=100, rep=1000, return_mode="median")
    print(f"resnet18 train b32, do_bench: {bench_ms:.2f} ms")


if __name__ == "__main__":
    main()
