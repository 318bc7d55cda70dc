"""A module's forward pass on a batch of images, timed on the device and checked against
the same weights in float64 on the CPU: shared by Conv2d and the torchvision models."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from core.measure.workloads import variants
from core.measure.workloads.base import CHECK_MAX_FLOPS, Prepared

NOT_CHECKED = "not checked: the CPU reference would take too long"


def seeded_twin(make: Callable[[], Any], shape: tuple[int, ...], device, dtype):
    """(reference, model, x): a module with seeded random weights on the CPU, kept as the
    float64 reference, the same weights on the device, and a random input of ``shape``."""
    import torch

    torch.manual_seed(0)
    reference = make()
    model = copy.deepcopy(reference).to(device=device, dtype=dtype)
    return reference, model, torch.randn(*shape, device=device, dtype=dtype)


def checked_images(batch: int, flops_per_image: float) -> int:
    """How many images of a batch the CPU reference checks within ``CHECK_MAX_FLOPS``."""
    return int(min(batch, CHECK_MAX_FLOPS // max(flops_per_image, 1)))


def batch_forward(
    reference, model, x, flops_per_image: float, variant: str = variants.EAGER
) -> Prepared:
    """Times ``model(x)`` without gradients, done as ``variant`` says, and checks the first
    images of what the timed call returns against the reference in float64 on the CPU.
    Each image's output must depend on that image alone (a convolution, a CNN in eval
    mode), so that a slice is exact."""
    import torch

    images = checked_images(len(x), flops_per_image)
    model, x = variants.laid_out(model, x, variant)
    run = variants.compiled(model) if variant == variants.COMPILE else model
    forward = variants.under(lambda: run(x), variant, x.device)

    def fn():
        with torch.no_grad():
            return forward()

    @torch.no_grad()
    def check():
        # The timed call itself, so that a compiled or autocast variant is what is checked.
        if images >= 1:
            return fn()[:images].cpu(), reference.double()(x[:images].cpu().double())
        return None

    note = f"checked the first {images} images" if 0 < images < len(x) else ""
    return Prepared(fn=fn, check=check, check_note=NOT_CHECKED if images < 1 else note)
