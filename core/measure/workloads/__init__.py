"""The workload registry. Adding a workload is one ``Workload`` and one entry below."""

from __future__ import annotations

from core.errors import BadInput
from core.measure.workloads.base import (
    DTYPES,
    Cost,
    Param,
    Prepared,
    Workload,
    dtype_name,
    parse_dtype,
)
from core.measure.workloads.conv2d import CONV2D
from core.measure.workloads.elementwise import ELEMENTWISE, OPS
from core.measure.workloads.matmul import MATMUL
from core.measure.workloads.models import INFERENCE, MODELS, TRAIN

REGISTRY: dict[str, Workload] = {w.name: w for w in (ELEMENTWISE, CONV2D, MATMUL, INFERENCE, TRAIN)}


def get(name: str) -> Workload:
    try:
        return REGISTRY[str(name).strip().lower()]
    except KeyError:
        raise BadInput(
            f"workload: '{name}' is not known; choose from {', '.join(REGISTRY)}"
        ) from None


__all__ = [
    "DTYPES",
    "MODELS",
    "OPS",
    "REGISTRY",
    "BadInput",
    "Cost",
    "Param",
    "Prepared",
    "Workload",
    "dtype_name",
    "get",
    "parse_dtype",
]
