"""Variants against eager on one accelerator, through the engine: torch.compile and
channels_last for the post's convolution and ResNet-18 points, autocast bfloat16 against
float32 for matmul and ResNet-18.

    python bench/variants.py --out OUTDIR [--tiny]

Each point's variants are measured one after another on the same card in one process;
the ratio is the eager median over the variant's (above 1: the variant is faster), with
the 95% interval from ``core.stats``. Compiling is the first call, reported apart.
``--tiny`` runs a few small points on the CPU, to check the script. Writes
OUTDIR/variants.md and variants.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch

from core import stats, units
from core.measure import devices, sweep, timing
from core.measure.workloads import get

CONV = {"batch": [1], "size": [128], "kernel": [3]}
# (what, workload, grid, variants): the first variant is what the others are read against.
POINTS = (
    ("conv2d 3×3 128² by channels", "conv2d", {**CONV, "channels": [32, 64, 128, 256]},
     ["eager", "channels_last", "compile"]),
    ("conv2d 64ch 7×7 512²", "conv2d", {"channels": [64], "size": [512], "kernel": [7]},
     ["eager", "channels_last", "compile"]),
    ("ResNet-18 inference", "inference", {"model": ["resnet18"], "batch": [1, 32, 64]},
     ["eager", "channels_last", "compile"]),
    ("ResNet-18 training step", "train", {"model": ["resnet18"], "batch": [32]},
     ["eager", "channels_last", "compile"]),
    ("matmul", "matmul", {"size": [1024, 4096, 8192]}, ["eager", "autocast_bf16"]),
    ("ResNet-18 inference", "inference", {"model": ["resnet18"], "batch": [32, 64]},
     ["eager", "autocast_bf16"]),
    ("ResNet-18 training step", "train", {"model": ["resnet18"], "batch": [32]},
     ["eager", "autocast_bf16"]),
)  # fmt: skip
# Every convolution and ResNet-18 point of the post (core.measure.suites.POST).
LAYOUTS = ["eager", "channels_last", "compile"]
POST_POINTS = (
    ("conv2d 3×3 128² by channels", "conv2d", {**CONV, "channels": [32, 64, 128, 256]}, LAYOUTS),
    ("conv2d 64ch kernel × input", "conv2d",
     {"batch": [1], "channels": [64], "size": [64, 128, 256, 512], "kernel": [3, 5, 7]}, LAYOUTS),
    ("ResNet-18 inference", "inference", {"model": ["resnet18"], "batch": [1, 8, 32, 64]}, LAYOUTS),
    ("ResNet-18 training step", "train", {"model": ["resnet18"], "batch": [1, 8, 32]}, LAYOUTS),
    ("matmul", "matmul", {"size": [256, 512, 1024, 2048, 4096, 8192]}, ["eager", "autocast_bf16"]),
    ("ResNet-18 inference", "inference", {"model": ["resnet18"], "batch": [1, 8, 32, 64]},
     ["eager", "autocast_bf16"]),
    ("ResNet-18 training step", "train", {"model": ["resnet18"], "batch": [1, 8, 32]},
     ["eager", "autocast_bf16"]),
)  # fmt: skip
TINY = (
    ("conv2d tiny", "conv2d", {"channels": [8], "size": [16]}, ["eager", "channels_last"]),
    ("matmul tiny", "matmul", {"size": [64]}, ["eager", "autocast_bf16", "compile"]),
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path("."))
    parser.add_argument("--tiny", action="store_true", help="small points on the CPU")
    parser.add_argument("--post", action="store_true", help="every point of the post's grid")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    device = "cpu" if args.tiny else str(devices.device_strings()[-1])
    backend = sweep.Backend(device)
    settings = sweep.SweepSettings(timing=timing.TimingSettings(budget_s=0.2 if args.tiny else 1.0))
    card = devices.accelerator_name(torch.device(device)) if device != "cpu" else "CPU"
    lines = [
        f"Card: {card}; torch {torch.__version__}; each ratio is eager's median over the "
        "variant's, from one process, with its 95% interval.",
        "",
        "| point | variant | median | vs eager | first call | max rel err | flags |",
        "|---|---|---|---|---|---|---|",
    ]
    records = []
    for what, name, grid, chosen in TINY if args.tiny else POST_POINTS if args.post else POINTS:
        workload = get(name)
        tasks = sweep.plan(workload, {**grid, "variant": chosen}, [backend], settings)
        started = time.perf_counter()
        rows = sweep.measure(tasks, settings).rows
        print(f"{what}: {len(rows)} rows in {time.perf_counter() - started:.0f} s", flush=True)
        base = {_key(r, workload): r for r in rows if r.get("variant") == chosen[0]}
        for row in rows:
            eager = base.get(_key(row, workload))
            ratio = _ratio(eager, row)
            records.append({"what": what, **row, "vs_first": ratio})
            said = units.point_label(None, {k: row[k] for k in grid}, all_named=True)
            shown = units.speedup_range(*ratio) if ratio else "—"
            if row["status"] != "ok":
                lines.append(f"| {what} {said} | {row['variant']} | {row['status']}: "
                             f"{row['message']} | | | | |")  # fmt: skip
                continue
            err = row.get("max_rel_err")
            lines.append(
                f"| {what} {said} | {row['variant']} | {units.seconds(row['median_s'])} | "
                f"{shown} | {units.seconds(row['first_call_s'])} | "
                f"{'' if err is None else f'{err:.1e}'} | {row.get('flags') or ''} |"
            )
        # After each group: a run cut short by its time limit keeps what it measured.
        (args.out / "variants.md").write_text("\n".join(lines) + "\n")
        (args.out / "variants.json").write_text(json.dumps(records, indent=1, default=str))
    print("\n".join(lines))


def _key(row: dict, workload) -> tuple:
    return tuple(row.get(p) for p in workload.param_names if p != "variant")


def _ratio(first: dict | None, row: dict) -> tuple[float, float, float] | None:
    """First-variant median over this row's, with the interval from both medians' ends."""
    if first is None or first.get("status") != "ok" or row.get("status") != "ok":
        return None
    low, high = stats.ratio_interval(
        first["median_low_s"], first["median_high_s"], row["median_low_s"], row["median_high_s"]
    )
    return first["median_s"] / row["median_s"], low, high


if __name__ == "__main__":
    main()
