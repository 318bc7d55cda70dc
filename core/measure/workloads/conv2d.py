"""A single Conv2d forward pass with padding k//2; in = out channels by default, as in the
post, or separate output channels and a stride."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from core.measure.workloads import variants
from core.measure.workloads.base import WORKSPACE_BYTES, Cost, Param, Prepared, Workload, itemsize
from core.measure.workloads.forward import batch_forward, seeded_twin

if TYPE_CHECKING:
    import torch


def _shape(params: dict) -> tuple[int, int, int, int, int, int, int]:
    """(batch, in channels, out channels, input size, output size, kernel, stride)."""
    batch, channels, size, kernel = (params[k] for k in ("batch", "channels", "size", "kernel"))
    out_channels, stride = params.get("out_channels") or channels, params.get("stride") or 1
    out = (size + 2 * (kernel // 2) - kernel) // stride + 1
    return batch, channels, out_channels, size, out, kernel, stride


def _cost(params: dict, dtype: torch.dtype) -> Cost:
    batch, channels, out_channels, size, out, kernel, _ = _shape(params)
    width, copies = itemsize(dtype), 1 if variants.of(params) == variants.EAGER else 2
    input_bytes = batch * channels * size * size * width
    output_bytes = batch * out_channels * out * out * width
    weight_bytes = out_channels * channels * kernel * kernel * width
    return Cost(
        flops=2.0 * batch * out_channels * out * out * channels * kernel * kernel,
        bytes_moved=float(input_bytes + output_bytes + weight_bytes),
        # Any variant but eager may hold a second copy of the input: reordered
        # (channels_last), cast (autocast) or in a compiled graph's own buffer.
        memory_bytes=float(
            copies * input_bytes + 3 * output_bytes + weight_bytes + WORKSPACE_BYTES
        ),
        items=batch,
    )


def _build(params: dict, device: torch.device, dtype: torch.dtype) -> Prepared:
    from torch import nn

    batch, channels, out_channels, size, _, kernel, stride = _shape(params)
    make = functools.partial(
        nn.Conv2d, channels, out_channels, kernel, stride=stride, padding=kernel // 2
    )
    twin = seeded_twin(make, (batch, channels, size, size), device, dtype)
    return batch_forward(*twin, _cost(params, dtype).flops / batch, variants.of(params))


CONV2D = Workload(
    name="conv2d",
    title="Conv2d",
    question="How do channel count, kernel size and input size change the accelerator's lead?",
    params=(
        Param("batch", int, 1, low=1, high=256, log=True, axis="batch size"),
        Param("channels", int, 64, low=1, high=1024, log=True, help="input channels"),
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
        Param(
            "out_channels",
            int,
            0,
            low=0,
            high=1024,
            help="output channels; 0: as many as the input has",
            axis="output channels",
            quiet=True,
        ),
        Param("stride", int, 1, low=1, high=8, help="the convolution's stride", quiet=True),
        variants.param(),
    ),
    cost=_cost,
    build=_build,
    x_param="channels",
)
