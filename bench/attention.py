"""Attention (scaled dot-product) against the sequence length, timed by the engine and by
``triton.testing.do_bench``, with the kernel torch picked for each point.

    python bench/attention.py --out DIR           # CUDA: seq_len 256..16384, 84 points
    python bench/attention.py --out DIR --tiny    # the CPU, tiny shapes: checks the path only

For each point: the engine's median (``core.measure.timing``, warm, as bench/fidelity.py
calls it), do_bench's median (CUDA only), their ratio, TFLOP/s, the output's error against
the float64 reference, the memory bound against the measured peak, and the kernel: as the
workload names it (the dispatcher's own choice) and as ``torch.profiler`` saw it run.
Writes DIR/attention.json and DIR/attention.md. No streamlit.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch

from core.measure import devices, sweep, timing, workloads

SEQ_LENS = (256, 512, 1024, 2048, 4096, 8192, 16384)
SHAPES = ((1, 8, 64), (4, 16, 128))  # (batch, heads, head_dim): a small and a large model
DTYPES = ("float16", "bfloat16", "float32")
# The aten op each named kernel runs as, which the profiler records.
OPS = {
    "flash": "aten::_scaled_dot_product_flash_attention",
    "memory-efficient": "aten::_scaled_dot_product_efficient_attention",
    "cudnn": "aten::_scaled_dot_product_cudnn_attention",
    "math": "aten::_scaled_dot_product_attention_math",
    "flash (cpu)": "aten::_scaled_dot_product_flash_attention_for_cpu",
}


def points(tiny: bool) -> list[dict]:
    if tiny:
        return [
            {"seq_len": s, "batch": 1, "heads": 2, "head_dim": 32, "causal": c, "dtype": t}
            for t in ("float32", "bfloat16")
            for c in ("no", "yes")
            for s in (16, 32, 64)
        ]
    return [
        {"seq_len": s, "batch": b, "heads": h, "head_dim": d, "causal": c, "dtype": t}
        for b, h, d in SHAPES
        for t in DTYPES
        for c in ("no", "yes")
        for s in SEQ_LENS
    ]


def profiled_kernel(fn) -> str:
    """The kernel the profiler saw one call run, by the names above; "" if none matched."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    ran = {event.name for event in prof.events()}
    return next((name for name, op in OPS.items() if op in ran), "")


def measure(point: dict, device: torch.device, budget_s: float, do_bench) -> dict:
    workload = workloads.get("attention")
    params = workload.validate({k: v for k, v in point.items() if k != "dtype"})
    dtype = workloads.parse_dtype(point["dtype"])
    cost = workload.cost(params, dtype)
    row = {**point, "memory_estimate_gb": cost.memory_bytes / 1e9}
    devices.empty_cache(device)
    peak = devices.PeakMemory(device)
    prepared = None
    try:
        prepared = workload.build(params, device, dtype)
        how = timing.TimingSettings(budget_s=budget_s)
        warm = timing.measure(prepared.fn, device, how, after_call=peak.sample)
        peak_bytes = peak.peak_bytes()
        pair = prepared.check()
        error = workloads.base.relative_error(*pair) if pair else float("nan")
        profiled = profiled_kernel(prepared.fn)
        bench_s = None
        if do_bench is not None:
            bench_s = do_bench(prepared.fn, warmup=25, rep=200, return_mode="median") / 1e3
        named, note = prepared.implementation, prepared.check_note
    except RuntimeError as failure:  # out of memory, or no kernel for this point
        return {**row, "status": "failed", "message": " ".join(str(failure).split())[:200]}
    finally:
        del prepared
        devices.empty_cache(device)
    return {
        **row,
        "status": "ok",
        "implementation": named,
        "profiled": profiled,
        "agrees": named == profiled,
        "engine_ms": warm.median_s * 1e3,
        "do_bench_ms": bench_s * 1e3 if bench_s is not None else None,
        "engine_over_do_bench": warm.median_s / bench_s if bench_s else None,
        "tflops_engine": cost.flops / warm.median_s / 1e12,
        "n": warm.n,
        "rel_precision": warm.rel_precision,
        "flags": ",".join(sorted(sweep._figures_flags(warm, device.type))),
        "peak_memory_gb": (peak_bytes or 0) / 1e9,
        "max_rel_err": error,
        "check_note": note,
    }


def _number(value, fmt: str, unit: str = "") -> str:
    return "-" if value is None else f"{value:{fmt}}{unit}"


def markdown(rows: list[dict], header: str) -> str:
    lines = [
        header,
        "",
        "| batch×heads×seq×dim | dtype | causal | kernel (named) | kernel (profiler) | "
        "engine median | do_bench median | engine/do_bench | TFLOP/s | est. / peak memory | "
        "max_rel_err | flags |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        shape = f"{r['batch']}×{r['heads']}×{r['seq_len']}×{r['head_dim']}"
        if r["status"] != "ok":
            lines.append(f"| {shape} | {r['dtype']} | {r['causal']} | {r['message']} |")
            continue
        lines.append(
            f"| {shape} | {r['dtype']} | {r['causal']} | {r['implementation'] or '?'} | "
            f"{r['profiled'] or '?'} | {r['engine_ms']:.4g} ms | "
            f"{_number(r['do_bench_ms'], '.4g', ' ms')} | "
            f"{_number(r['engine_over_do_bench'], '.3f')} | {r['tflops_engine']:.3g} | "
            f"{r['memory_estimate_gb']:.3g} / {r['peak_memory_gb']:.3g} GB | "
            f"{r['max_rel_err']:.2g} | {r['flags'] or '-'} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("."))
    parser.add_argument("--tiny", action="store_true", help="the CPU at tiny shapes")
    parser.add_argument("--budget-s", type=float, default=None, help="engine budget per point")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.tiny:
        device = torch.device("cpu")
    elif torch.cuda.is_available():
        device = torch.device("cuda:0")
    else:
        sys.exit("no CUDA device here: run with --tiny for the CPU path")
    do_bench = None
    if device.type == "cuda":
        try:
            from triton.testing import do_bench
        except ImportError:
            print("triton does not import: no do_bench column", flush=True)
    budget_s = args.budget_s or (0.05 if args.tiny else 1.0)
    card = devices.cpu_model_name() if device.type == "cpu" else devices.accelerator_name(device)
    cudnn = torch.backends.cudnn.version() if device.type == "cuda" else None
    print(f"device: {card}; torch {torch.__version__}; cuDNN {cudnn}", flush=True)
    rows = []
    for point in points(args.tiny):
        row = measure(point, device, budget_s, do_bench)
        rows.append(row)
        print(json.dumps(row), flush=True)
    # The dispatcher's priority order once it has run (cuDNN first on some GPUs); a
    # private call, read here only to explain the kernels above.
    order = getattr(torch._C, "_get_sdp_priority_order", lambda: [])()
    order_names = [torch.nn.attention.SDPBackend(int(c)).name for c in order]
    header = (
        f"Device: {card}; host CPU: {devices.cpu_model_name()}; torch {torch.__version__}; "
        f"cuDNN {cudnn}; Python {platform.python_version()}; {date.today().isoformat()}. "
        f"SDPA priority order after the run: {', '.join(order_names) or 'not known'}. "
        f"Engine budget {budget_s:g} s per point; do_bench warmup 25 ms, rep 200 ms, median. "
        "Peak memory: the allocator's peak (the process's resident set on the CPU)."
    )
    agree = sum(r.get("agrees", False) for r in rows)
    summary = f"\nThe named kernel matched the profiler's on {agree} of {len(rows)} points.\n"
    table = markdown(rows, header) + summary
    (args.out / "attention.md").write_text(table)
    found = {"device": card, "torch": torch.__version__, "cudnn": cudnn}
    found |= {"priority_order": order_names, "rows": rows}
    (args.out / "attention.json").write_text(json.dumps(found, indent=1))
    print(table)


if __name__ == "__main__":
    start = time.perf_counter()
    main()
    print(f"attention bench took {time.perf_counter() - start:.0f} s")
