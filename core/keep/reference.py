"""The post's published figures as a tidy result table, to overlay on one's own runs.

The data ship in ``data/post_reference.csv`` beside this module; ``data/PROVENANCE.md`` says
where they come from and how they were measured.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import pandas as pd

from core.keep import results
from core.measure import workloads  # the registry, which does not import torch

DATA_PATH = Path(__file__).parent / "data" / "post_reference.csv"
SOURCE_REPOSITORY = "cicorias/pytorch-metal-mps"
POST_TITLE = "MacBook Neo 8GB: MPS/Metal Actually Works"
POST_DATE = "2026-03-21"

NEO = "MacBook Neo 8 GB (post)"
RYZEN = "Ryzen AI HX 370 (post)"

_MODELS = {"ResNet-18": "resnet18", "MobileNetV2": "mobilenet_v2"}
_RUN_IDS = {NEO: "post-macbook-neo", RYZEN: "post-ryzen-ai-hx370"}
_IN_FILE = {"MacBook Neo A18 Pro 8GB": NEO, "Ryzen AI HX 370": RYZEN}
# What each (machine, device in the file) becomes: device, backend, device_name, threads.
_BACKENDS = {
    (NEO, "mps"): ("mps", "mps", "Apple A18 Pro GPU", None),
    # Never set in the notebooks: PyTorch's default there is the 2 performance cores.
    (NEO, "cpu"): ("cpu", "cpu (post default, 2 threads)", "Apple A18 Pro", 2),
    (RYZEN, "cuda-rocm"): ("cuda", "cuda (rocm)", "AMD Radeon 890M (ROCm 7.1)", None),
    (RYZEN, "cpu"): ("cpu", "cpu (post default threads)", "AMD Ryzen AI 9 HX 370", None),
}
_IMAGE = {"model": "model", "batch": "batch", "image_size": "image_size"}
_CONV = {"batch": "batch", "channels": "in_channels", "size": "height", "kernel": "kernel"}
# Each family's workload, and the file's column for each of its parameters.
_FAMILIES = {
    "matmul": ("matmul", {"size": "height"}),
    "inference": ("inference", _IMAGE),
    "train": ("train", _IMAGE),
    "conv2d_kernel": ("conv2d", _CONV),
    "conv2d_channels": ("conv2d", _CONV),
    "elementwise": ("elementwise", {"op": "op", "size": "elements"}),
}

# The two machines as the post describes them, in the fingerprint's keys.
_MACHINES: dict[str, dict] = json.loads((DATA_PATH.parent / "post_machines.json").read_text())


def _note(machine: str, device: str, family: str, params: dict) -> str:
    """Where the post's prose or a second measurement tells a different story."""
    if machine == NEO and device == "mps":
        if family == "conv2d_kernel" and params["size"] == 512 and params["kernel"] == 7:
            return "the post's text says \"~60 ms\"; the notebook's figure is kept"
        if family == "inference" and params["model"] == "mobilenet_v2" and params["batch"] == 64:
            return "the post's text says \"under 200 ms\"; the notebook's figure is kept"
    conv = family.startswith("conv2d_")
    if conv and (params["size"], params["kernel"], params["channels"]) == (128, 3, 64):
        return "this point was measured in both conv2d sweeps; the two differ by run-to-run spread"
    return ""


def reference_machines() -> list[str]:
    """The machine labels the reference table uses, as chart legends show them."""
    return [NEO, RYZEN]


def reference_fingerprints() -> dict[str, dict]:
    """What the post says about each machine, keyed like ``machine_fingerprint()``."""
    return {label: dict(info) for label, info in _MACHINES.items()}


def _int(value: object) -> int | None:
    return None if pd.isna(value) else int(value)


def _tidy_row(item: dict) -> dict:
    family = item["family"]
    if family not in _FAMILIES:
        raise ValueError(f"reference data: unknown family {family!r}")
    workload, columns = _FAMILIES[family]
    cast = {"model": _MODELS.__getitem__, "op": str}
    params = {name: cast.get(name, _int)(item[column]) for name, column in columns.items()}
    machine = _IN_FILE[item["machine"]]
    device, backend, device_name, threads = _BACKENDS[(machine, item["device"])]
    mean_s = float(item["mean_ms"]) / 1000.0
    message = (
        f"published mean of {_int(item['runs'])} timed runs after {_int(item['warmup'])} "
        "warm-up; the post printed only the mean, so median_s and mean_s both hold it"
    )
    if note := _note(machine, device, family, params):
        message += f"; {note}"
    return {
        "run_id": _RUN_IDS[machine],
        "timestamp": None,
        "workload": workload,
        **params,
        "backend": backend,
        "device": device,
        "device_name": device_name,
        "dtype": item["dtype"],
        "threads": threads,
        "median_s": mean_s,
        "mean_s": mean_s,
        "n": _int(item["runs"]),
        "flags": "",
        "status": "ok",
        "message": message,
        "machine": machine,
        "source": "reference",
        # The sweep tells apart the conv2d point that both conv2d sweeps measured.
        "provenance": f"{SOURCE_REPOSITORY} {item['source_file']} ({family})",
    }


@lru_cache(maxsize=1)
def _all_rows() -> tuple[dict, ...]:
    table = pd.read_csv(DATA_PATH, dtype={"op": str, "model": str, "source_file": str})
    return tuple(_tidy_row(item) for item in table.to_dict(orient="records"))


def reference_frame(workload: str | None = None) -> pd.DataFrame:
    """The post's figures in the tidy result schema, all workloads or one.

    Beyond the result columns the table has ``machine``, ``source`` ("reference") and
    ``provenance`` (repository, notebook and sweep of each figure).
    """
    rows = [dict(r) for r in _all_rows() if workload is None or r["workload"] == workload]
    if workload is not None and workload not in workloads.REGISTRY:
        raise ValueError(f"the post has no figures for workload {workload!r}")
    # Parameter columns as the registry names them (matmul's is "size": "n" is the number
    # of timed repeats).
    param_names = list(workloads.param_names(workload) if workload else workloads.param_names())
    frame = results.to_frame(rows, param_names)
    # Integers, kept integral where another workload leaves the column empty.
    kinds = {p.name: p.kind for w in workloads.REGISTRY.values() for p in w.params}
    frame = frame.astype({name: "Int64" for name in param_names if kinds.get(name) is int})
    trailing = ["machine", "source", "provenance"]
    return frame[[c for c in frame.columns if c not in trailing] + trailing]
