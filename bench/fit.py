"""Will it fit: the memory estimate against the measured peak, per model, mode and batch.

    python bench/fit.py --out DIR [--device cuda|cpu] [--dtype float32] [--tiny]

For each model, inference (no_grad) and one SGD training step, and each batch: the upper-bound
estimate (``core.measure.fit.estimate``, traced on the meta device), the measured peak
(``fit.measure_peak``: on CUDA max_memory_allocated less what was allocated before; on the
CPU the allocator's allocations and frees from torch.profiler), their ratio, and whether the
estimate held as an upper bound. Writes DIR/fit.json and DIR/fit.md. A point over the
device's memory budget is refused before anything is allocated, and listed as such.

On the CPU the grid is 224 px at batches 1, 4 and 8 (a few minutes on 2 cores); on a GPU,
batches 1 to 256. ``--tiny`` is two small models at 64 px, for a quick check.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MODELS = ("resnet18", "resnet50", "mobilenet_v2", "efficientnet_b0", "vit_b_16", "convnext_tiny")
GRIDS = {  # device type: (image size, batches)
    "cpu": (224, (1, 4, 8)),
    "gpu": (224, (1, 16, 64, 256)),
    "tiny": (64, (2,)),
}
COLUMNS = (
    "model", "mode", "batch", "image_size", "estimate", "measured", "estimate / measured",
    "estimate >= measured", "seconds",
)  # fmt: skip


def run_point(fit, model: str, train: bool, batch: int, size: int, dtype: str, device) -> dict:
    row = {
        "model": model,
        "mode": "train" if train else "inference",
        "batch": batch,
        "image_size": size,
        "dtype": dtype,
        "device": str(device),
    }
    start = time.perf_counter()
    try:
        row["estimate_bytes"] = fit.estimate(model, batch, size, dtype, train)
        row["measured_bytes"] = fit.measure_peak(model, batch, size, dtype, train, device)
    except fit.BadInput as error:  # refused (over the budget) or not runnable: say why
        row |= {"status": "refused" if "not measured" in str(error) else "error"}
        row["message"] = str(error)
    else:
        row["status"] = "ok"
        row["ratio"] = row["estimate_bytes"] / row["measured_bytes"]
        row["holds"] = row["estimate_bytes"] >= row["measured_bytes"]
    row["seconds"] = round(time.perf_counter() - start, 2)
    return row


def markdown(rows: list[dict], units) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in rows:
        ok = r["status"] == "ok"
        cells = [
            r["model"], r["mode"], r["batch"], r["image_size"],
            units.bytes_si(r.get("estimate_bytes")),
            units.bytes_si(r["measured_bytes"]) if ok else r["status"],
            units.ratio(r["ratio"]) if ok else "-",
            ("yes" if r["holds"] else "**NO**") if ok else "-",
            r["seconds"],
        ]  # fmt: skip
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    failed = [r for r in rows if r["status"] == "ok" and not r["holds"]]
    lines.append("")
    lines.append(
        f"{sum(r['status'] == 'ok' for r in rows)} points measured; "
        + (f"{len(failed)} with the estimate below the measured peak." if failed else
           "the estimate is at or above the measured peak in every one.")
    )  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="folder for fit.json, fit.md")
    parser.add_argument("--device", default=None, help="cuda or cpu (default: cuda if present)")
    parser.add_argument("--dtype", default="float32", choices=("float32", "float16", "bfloat16"))
    parser.add_argument("--tiny", action="store_true", help="two small models at 64 px")
    args = parser.parse_args(argv)

    import torch

    from core import units
    from core.measure import devices, fit

    wanted = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = devices.parse_device(wanted)
    except fit.BadInput as error:
        print(f"bench/fit.py: {error}", file=sys.stderr)
        return 2
    grid = "tiny" if args.tiny else ("cpu" if device.type == "cpu" else "gpu")
    size, batches = GRIDS[grid]
    models = ("resnet18", "mobilenet_v3_small") if args.tiny else MODELS
    rows = []
    for model in models:
        for train in (False, True):
            for batch in batches:
                row = run_point(fit, model, train, batch, size, args.dtype, device)
                rows.append(row)
                shown = units.ratio(row.get("ratio")) if row["status"] == "ok" else row["status"]
                print(f"{model} {row['mode']} batch {batch}: {shown} ({row['seconds']} s)")
    args.out.mkdir(parents=True, exist_ok=True)
    report = {
        "machine": devices.machine_fingerprint(),
        "device": str(device),
        "dtype": args.dtype,
        "method": fit.measurement_method(device),
        "rows": rows,
    }
    (args.out / "fit.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    head = f"Estimate against measured peak on {device} ({args.dtype}).\n\nMeasured: "
    head += f"{report['method']}.\n\n"
    (args.out / "fit.md").write_text(head + markdown(rows, units), encoding="utf-8")
    print((args.out / "fit.md").read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
