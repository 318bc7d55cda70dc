"""Fidelity of the engine's timings against two independent timers, on an NVIDIA GPU.

For each point: the engine's median (warm, and with the L2 flushed between repeats),
``triton.testing.do_bench`` (median; it flushes L2 between calls) and
``torch.utils.benchmark.Timer.adaptive_autorange``; the ratios; the engine's
efficiency (repeats x median / wall time of the point); and the memory estimate
against the allocator's measured peak.

    python bench/fidelity.py --out OUTDIR

Writes OUTDIR/fidelity.md (the table for BENCHMARKS.md), fidelity.json and a log.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch

from core.measure import ceilings, devices, sweep, timing, workloads

POINTS = (
    ("add 1e8 fp32", "elementwise", {"op": "add", "size": 100_000_000}, "float32"),
    ("sin 1e8 fp32", "elementwise", {"op": "sin", "size": 100_000_000}, "float32"),
    ("add 1e5 fp32", "elementwise", {"op": "add", "size": 100_000}, "float32"),
    ("conv2d 256ch 3x3 128²", "conv2d", {"channels": 256, "size": 128, "kernel": 3}, "float32"),
    ("conv2d 64ch 7x7 512²", "conv2d", {"channels": 64, "size": 512, "kernel": 7}, "float32"),
    ("matmul 4096 bf16", "matmul", {"size": 4096}, "bfloat16"),
    ("resnet18 inference b1", "inference", {"model": "resnet18", "batch": 1}, "float32"),
    ("resnet18 inference b8", "inference", {"model": "resnet18", "batch": 8}, "float32"),
    ("resnet18 inference b32", "inference", {"model": "resnet18", "batch": 32}, "float32"),
    ("resnet18 inference b64", "inference", {"model": "resnet18", "batch": 64}, "float32"),
    ("resnet18 train b32", "train", {"model": "resnet18", "batch": 32}, "float32"),
)


def engine(fn, device, cold: bool, pipelined: bool = False) -> timing.Measurement:
    settings = timing.TimingSettings(budget_s=2.0, cold_cache=cold, pipelined=pipelined)
    return timing.measure(fn, device, settings)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path("."))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    from torch.utils.benchmark import Timer
    from triton.testing import do_bench

    device = torch.device("cuda:0")
    card = devices.accelerator_name(device)
    cpu = devices.cpu_model_name()
    print(f"card: {card}; host CPU: {cpu}; torch {torch.__version__}", flush=True)
    floor_engine = timing.dispatch_floor_s(device)
    tiny = torch.zeros(1, device=device)
    floor_do_bench = do_bench(lambda: tiny.add_(1.0), return_mode="median") / 1e3
    floors_us = (floor_engine * 1e6, floor_do_bench * 1e6)
    print("dispatch floor: engine {:.1f} µs, do_bench {:.1f} µs".format(*floors_us))
    roofs = ceilings.measure_ceilings(device)
    print(f"ceilings: {json.dumps(roofs.as_dict())}", flush=True)

    rows = []
    for label, name, values, dtype_name in POINTS:
        workload = workloads.get(name)
        params = workload.validate(values)
        dtype = workloads.parse_dtype(dtype_name)
        cost = workload.cost(params, dtype)
        devices.empty_cache(device)
        peak_memory = devices.PeakMemory(device)
        prepared = workload.build(params, device, dtype)
        warm = engine(prepared.fn, device, cold=False)
        peak = peak_memory.peak_bytes()
        cold = engine(prepared.fn, device, cold=True)
        pipelined = engine(prepared.fn, device, cold=False, pipelined=True)
        bench_s = do_bench(prepared.fn, warmup=100, rep=1000, return_mode="median") / 1e3
        timer = Timer(stmt="fn()", globals={"fn": prepared.fn})
        timer_s = timer.adaptive_autorange(min_run_time=1.0).median
        actual_expected = prepared.check() if prepared.check else None
        error = workloads.base.relative_error(*actual_expected) if actual_expected else float("nan")
        row = {
            "point": label,
            "engine_warm_ms": warm.median_s * 1e3,
            "engine_cold_ms": cold.median_s * 1e3,
            "engine_pipelined_ms": pipelined.median_s * 1e3,
            "pipelined_over_do_bench": pipelined.median_s / bench_s,
            "do_bench_ms": bench_s * 1e3,
            "timer_ms": timer_s * 1e3,
            "cold_over_do_bench": cold.median_s / bench_s,
            "warm_over_do_bench": warm.median_s / bench_s,
            "warm_over_timer": warm.median_s / timer_s,
            "n": warm.n,
            "rel_precision": warm.rel_precision,
            "efficiency": warm.efficiency,
            "loop_efficiency": warm.loop_efficiency,
            "first_call_ms": warm.first_call_s * 1e3,
            "launch_ms": warm.launch_s * 1e3,
            "flags": ",".join(sorted(sweep._figures_flags(warm, device.type))),
            "busy_share": warm.busy_share,
            "gb_per_s_engine": cost.bytes_moved / warm.median_s / 1e9,
            "gb_per_s_do_bench": cost.bytes_moved / bench_s / 1e9,
            "tflops_engine": cost.flops / warm.median_s / 1e12,
            "memory_estimate_gb": cost.memory_bytes / 1e9,
            "peak_memory_gb": (peak or 0) / 1e9,
            "max_rel_err": error,
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
        del prepared
    loaded = _with_every_core_busy(device, do_bench)
    table = _markdown(rows, card, cpu, floor_engine, floor_do_bench, roofs) + loaded
    (args.out / "fidelity.md").write_text(table)
    (args.out / "fidelity.json").write_text(
        json.dumps({"card": card, "cpu": cpu, "rows": rows, "ceilings": roofs.as_dict()}, indent=1)
    )
    print(table)


def _with_every_core_busy(device, do_bench) -> str:
    """ResNet-18 inference at batch 1 while a spinning process takes every host core: the
    launch-bound point slows down, and the engine must say why (busy, host-bound)."""
    import subprocess

    workload = workloads.get("inference")
    params = workload.validate({"model": "resnet18", "batch": 1})
    prepared = workload.build(params, device, torch.float32)
    lines = ["", "ResNet-18 inference, batch 1, quiet and with every host core busy:", "",
             "| host | engine warm | launch | do_bench | busy share | flags |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    spinners = []
    for state in ("quiet", "every core busy"):
        if spinners == [] and state != "quiet":
            spin = [sys.executable, "-c", "while True: pass"]
            spinners = [subprocess.Popen(spin) for _ in range(os.cpu_count() or 1)]
            time.sleep(1.0)
        try:
            warm = engine(prepared.fn, device, cold=False)
            bench_s = do_bench(prepared.fn, warmup=100, rep=1000, return_mode="median") / 1e3
        finally:
            if state != "quiet":
                for process in spinners:
                    process.kill()
                    process.wait()
        flags = ",".join(sorted(sweep._figures_flags(warm, device.type))) or "-"
        lines.append(f"| {state} | {warm.median_s * 1e3:.3g} ms | {warm.launch_s * 1e3:.3g} ms | "
                     f"{bench_s * 1e3:.3g} ms | {warm.busy_share:.2f} | {flags} |")  # fmt: skip
        print(lines[-1], flush=True)
    return "\n".join(lines) + "\n"


def _markdown(rows, card, cpu, floor_engine, floor_do_bench, roofs) -> str:
    lines = [
        f"Card: {card}; host CPU: {cpu}; torch {torch.__version__}; "
        f"Python {platform.python_version()}; {date.today().isoformat()}.",
        "",
        f"Dispatch floor: engine {floor_engine * 1e6:.1f} µs, do_bench "
        f"{floor_do_bench * 1e6:.1f} µs. Copy bandwidth "
        f"{roofs.bandwidth_bytes_per_s / 1e12:.2f} TB/s; bf16 matmul "
        f"{roofs.peak_flops_per_s.get('bfloat16', float('nan')) / 1e12:.0f} TFLOP/s.",
        "",
        "| point | engine warm | engine cold-L2 | engine pipelined | do_bench | Timer | "
        "warm/do_bench | cold/do_bench | pipelined/do_bench | warm/Timer | n | efficiency | "
        "launch | flags | GB/s engine | GB/s do_bench | est. / peak memory |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['point']} | {r['engine_warm_ms']:.4g} ms | {r['engine_cold_ms']:.4g} ms | "
            f"{r['engine_pipelined_ms']:.4g} ms | {r['do_bench_ms']:.4g} ms | "
            f"{r['timer_ms']:.4g} ms | {r['warm_over_do_bench']:.3f} | "
            f"{r['cold_over_do_bench']:.3f} | {r['pipelined_over_do_bench']:.3f} | "
            f"{r['warm_over_timer']:.3f} | {r['n']} | "
            f"{r['efficiency']:.2f} ({r['loop_efficiency']:.2f} loop) | {r['launch_ms']:.3g} ms | "
            f"{r['flags'] or '-'} | "
            f"{r['gb_per_s_engine']:.0f} | {r['gb_per_s_do_bench']:.0f} | "
            f"{r['memory_estimate_gb']:.2f} / {r['peak_memory_gb']:.2f} GB |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    start = time.perf_counter()
    main()
    print(f"fidelity run took {time.perf_counter() - start:.0f} s")
