"""A single Conv2d forward pass, in = out channels and padding k//2, as in the post."""

from __future__ import annotations

import copy

import torch
from torch import nn

from core.measure.workloads.base import (
    CHECK_MAX_FLOPS,
    WORKSPACE_BYTES,
    Cost,
    Param,
    Prepared,
    Workload,
)


def _output_size(params: dict) -> int:
    kernel = params["kernel"]
    return params["size"] + 2 * (kernel // 2) - kernel + 1


def _cost(params: dict, dtype: torch.dtype) -> Cost:
    batch, channels, size, kernel = (params[k] for k in ("batch", "channels", "size", "kernel"))
    out = _output_size(params)
    itemsize = torch.empty((), dtype=dtype).element_size()
    input_bytes = batch * channels * size * size * itemsize
    output_bytes = batch * channels * out * out * itemsize
    weight_bytes = channels * channels * kernel * kernel * itemsize
    return Cost(
        flops=2.0 * batch * channels * out * out * channels * kernel * kernel,
        bytes_moved=float(input_bytes + output_bytes + weight_bytes),
        memory_bytes=float(input_bytes + 3 * output_bytes + weight_bytes + WORKSPACE_BYTES),
        items=batch,
    )


def _build(params: dict, device: torch.device, dtype: torch.dtype) -> Prepared:
    batch, channels, size, kernel = (params[k] for k in ("batch", "channels", "size", "kernel"))
    torch.manual_seed(0)
    reference = nn.Conv2d(channels, channels, kernel, padding=kernel // 2)
    conv = copy.deepcopy(reference).to(device=device, dtype=dtype)
    x = torch.randn(batch, channels, size, size, device=device, dtype=dtype)
    per_image_flops = _cost(params, dtype).flops / batch
    images = int(min(batch, CHECK_MAX_FLOPS // max(per_image_flops, 1)))

    def fn():
        with torch.no_grad():
            return conv(x)

    def check():
        if images < 1:
            return None
        with torch.no_grad():
            actual = conv(x[:images]).cpu()
            expected = reference.double()(x[:images].cpu().double())
        return actual, expected

    note = ""
    if images < 1:
        note = "not checked: the CPU reference would take too long"
    elif images < batch:
        note = f"checked the first {images} images"
    return Prepared(fn=fn, check=check, check_note=note, keep=[conv, x])


CONV2D = Workload(
    name="conv2d",
    title="Conv2d",
    question="How do channel count, kernel size and input size change the accelerator's lead?",
    params=(
        Param("batch", int, 1, low=1, high=256, log=True),
        Param("channels", int, 64, low=1, high=1024, log=True, help="in = out channels"),
        Param("size", int, 128, low=4, high=1024, log=True, unit="pixels (H = W)"),
        Param("kernel", int, 3, low=1, high=15, help="padding is kernel // 2"),
    ),
    cost=_cost,
    build=_build,
    x_param="channels",
)
