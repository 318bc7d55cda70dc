"""Energy per image of ResNet-18 inference against the batch size, through the engine.

    python bench/energy.py --out DIR            # CUDA: batches 1, 8, 32, 64, 128
    python bench/energy.py --out DIR --tiny     # the CPU, tiny images: checks the path only

Each point is measured by ``core.measure.sweep`` as the app does, with a time budget long
enough for the energy counter (NVML on CUDA) to be read over at least
``energy.MIN_SPAN_S``: no precision stop, so every point runs its whole budget. Writes
``energy.json`` (machine, machine state, settings, rows) and ``energy.md`` (a table of
median time, joules per image, images per joule and the method) under DIR. No streamlit.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BATCHES = (1, 8, 32, 64, 128)


def _rows(device: str, batches, image_size: int, budget_s: float) -> list[dict]:
    from core.measure import sweep, timing, workloads

    workload = workloads.get("inference")
    # target_precision 0: the loop runs to the budget, so the counter has time to move.
    how = timing.TimingSettings(budget_s=budget_s, target_precision=0.0)
    settings = sweep.SweepSettings(timing=how, check_outputs=False)
    grid = {"model": ["resnet18"], "batch": list(batches), "image_size": [image_size]}
    tasks = sweep.plan(workload, grid, [sweep.Backend(device)], settings)
    rows = []
    for task in tasks:
        row = sweep.measure_task(task, settings)
        energy_j, batch = row.get("energy_j"), int(row["batch"])
        read = isinstance(energy_j, float) and math.isfinite(energy_j) and energy_j > 0
        rows.append({
            "batch": batch, "backend": row["backend"], "device_name": row.get("device_name"),
            "status": row["status"], "median_s": row.get("median_s"), "n": row.get("n"),
            "images_per_s": batch / row["median_s"] if row.get("median_s") else None,
            "energy_j_per_call": energy_j if read else None,
            "joules_per_image": energy_j / batch if read else None,
            "images_per_joule": batch / energy_j if read else None,
            "energy_method": row.get("energy_method"), "flags": row.get("flags"),
            "message": row.get("message"),
        })  # fmt: skip
        print(_line(rows[-1]), flush=True)
    return rows


def _number(value, spec: str) -> str:
    return format(value, spec) if isinstance(value, (int, float)) and math.isfinite(value) else "-"


def _line(row: dict) -> str:
    return (
        f"| {row['batch']} | {_number((row['median_s'] or math.nan) * 1e3, '.3f')} | "
        f"{_number(row['images_per_s'], '.0f')} | {_number(row['joules_per_image'], '.4g')} | "
        f"{_number(row['images_per_joule'], '.1f')} | {row['energy_method'] or row['message']} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--tiny", action="store_true", help="the CPU, 32x32 images, batch 1 and 2")
    parser.add_argument("--device", default=None, help="default: cuda (cpu with --tiny)")
    parser.add_argument("--budget-s", type=float, default=None, help="per point (default 2)")
    args = parser.parse_args()
    device = args.device or ("cpu" if args.tiny else "cuda")
    batches, image_size = ((1, 2), 32) if args.tiny else (BATCHES, 224)
    budget_s = args.budget_s or (0.1 if args.tiny else 2.0)

    from core.measure import devices, energy, machine_state

    state = machine_state.snapshot()
    meter = energy.meter_for(device)
    print(f"{device}: energy {meter.method or meter.why_not}; minimum span {energy.MIN_SPAN_S} s")
    print("| batch | median (ms) | images/s | J per image | images per J | energy method |")
    print("|---:|---:|---:|---:|---:|---|")
    rows = _rows(device, batches, image_size, budget_s)
    args.out.mkdir(parents=True, exist_ok=True)
    document = {
        "what": f"resnet18 inference, float32, {image_size}x{image_size}, on {device}",
        "budget_s_per_point": budget_s,
        "min_energy_span_s": energy.MIN_SPAN_S,
        "machine": devices.machine_fingerprint(),
        "machine_state": state,
        "rows": rows,
    }
    (args.out / "energy.json").write_text(json.dumps(document, indent=1, default=str))
    table = [
        f"{document['what']}; {budget_s:g} s per point; machine state: "
        + "; ".join(f"{k} {v}" for k, v in machine_state.describe(state)),
        "",
        "| batch | median (ms) | images/s | J per image | images per J | energy method |",
        "|---:|---:|---:|---:|---:|---|",
        *(_line(row) for row in rows),
    ]
    (args.out / "energy.md").write_text("\n".join(table) + "\n")
    print(f"wrote {args.out / 'energy.json'} and {args.out / 'energy.md'}")


if __name__ == "__main__":
    main()
