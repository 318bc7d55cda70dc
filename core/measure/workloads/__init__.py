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
    """A point's parameters as its name says them: quiet parameters at their default (or
    at the value they stand for) left out, so "size=256" stays "size=256"."""
    workload = REGISTRY.get(str(workload_name))
    if workload is None:
        return dict(params)
    quiet = {p.name: p for p in workload.params if p.quiet}

    def plain(name, value) -> bool:
        param = quiet.get(name)
        if param is None:
            return False
        same = params.get(param.same_as) if param.same_as else param.default
        return value == param.default or value == same

    return {name: value for name, value in params.items() if not plain(name, value)}


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
    "said",
]
