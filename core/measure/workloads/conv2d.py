"""A single Conv2d forward pass, in = out channels and padding k//2, as in the post."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from core.measure.workloads.base import WORKSPACE_BYTES, Cost, Param, Prepared, Workload, itemsize
from core.measure.workloads.forward import batch_forward, seeded_twin

if TYPE_CHECKING:
    import torch


def _cost(params: dict, dtype: torch.dtype) -> Cost:
    batch, channels, size, kernel = (params[k] for k in ("batch", "channels", "size", "kernel"))
    out, width = size + 2 * (kernel // 2) - kernel + 1, itemsize(dtype)
    input_bytes = batch * channels * size * size * width
    output_bytes = batch * channels * out * out * width
    weight_bytes = channels * channels * kernel * kernel * width
    return Cost(
        flops=2.0 * batch * channels * out * out * channels * kernel * kernel,
        bytes_moved=float(input_bytes + output_bytes + weight_bytes),
        memory_bytes=float(input_bytes + 3 * output_bytes + weight_bytes + WORKSPACE_BYTES),
        items=batch,
    )


def _build(params: dict, device: torch.device, dtype: torch.dtype) -> Prepared:
    from torch import nn

    batch, channels, size, kernel = (params[k] for k in ("batch", "channels", "size", "kernel"))
    make = functools.partial(nn.Conv2d, channels, channels, kernel, padding=kernel // 2)
    twin = seeded_twin(make, (batch, channels, size, size), device, dtype)
    return batch_forward(*twin, _cost(params, dtype).flops / batch)


CONV2D = Workload(
    name="conv2d",
    title="Conv2d",
    question="How do channel count, kernel size and input size change the accelerator's lead?",
    params=(
        Param("batch", int, 1, low=1, high=256, log=True, axis="batch size"),
        Param("channels", int, 64, low=1, high=1024, log=True, help="in = out channels"),
        Param(
            "size",
            int,
            128,
            low=4,
            high=1024,
            log=True,
            unit="pixels (H = W)",
            axis="image size H=W (px)",
        ),
        Param("kernel", int, 3, low=1, high=15, help="padding is kernel // 2", axis="kernel size"),
    ),
    cost=_cost,
    build=_build,
    x_param="channels",
)
