"""The workload registry. Adding a workload is one ``Workload`` and one entry below.

The one source of what a workload is called, asks, puts on the x axis and how each
parameter's axis is titled. Importing it does not import torch.
"""

from __future__ import annotations

from core.errors import BadInput
from core.measure.workloads.attention import ATTENTION
from core.measure.workloads.base import (
    DTYPE_NAMES,
    Cost,
    Param,
    Prepared,
    Workload,
    dtype_name,
    parse_dtype,
    parse_dtype_name,
)
from core.measure.workloads.conv2d import CONV2D
from core.measure.workloads.elementwise import ELEMENTWISE, OPS
from core.measure.workloads.matmul import MATMUL
from core.measure.workloads.models import INFERENCE, MODELS, TRAIN

REGISTRY: dict[str, Workload] = {
    w.name: w for w in (ELEMENTWISE, CONV2D, MATMUL, INFERENCE, TRAIN, ATTENTION)
}


def get(name: str) -> Workload:
    try:
        return REGISTRY[str(name).strip().lower()]
    except KeyError:
        raise BadInput(
            f"workload: '{name}' is not known; choose from {', '.join(REGISTRY)}"
        ) from None


def said(workload_name: str | None, params: dict) -> dict:
    """A point's parameters as its name says them: quiet parameters at their default left
    out, so "size=256" stays "size=256"."""
    workload = REGISTRY.get(str(workload_name))
    quiet = {p.name: p.default for p in workload.params if p.quiet} if workload else {}
    return {name: v for name, v in params.items() if name not in quiet or v != quiet[name]}


def quiet_defaults(*names: str) -> dict:
    """The named workloads' quiet parameters and their defaults: a table shows one only
    where some row sets it otherwise."""
    return {
        p.name: p.default for n in names if n in REGISTRY for p in REGISTRY[n].params if p.quiet
    }


def param_names(*names: str) -> tuple[str, ...]:
    """The named workloads' parameter names, each once and in order; every workload's when
    none is named. A name the registry does not know adds none."""
    chosen = [REGISTRY[n] for n in names if n in REGISTRY] if names else REGISTRY.values()
    return tuple(dict.fromkeys(p for w in chosen for p in w.param_names))


__all__ = [
    "DTYPE_NAMES",
    "MODELS",
    "OPS",
    "REGISTRY",
    "Cost",
    "Param",
    "Prepared",
    "Workload",
    "dtype_name",
    "get",
    "param_names",
    "parse_dtype",
    "parse_dtype_name",
    "quiet_defaults",
    "said",
]
