"""Variants: the same work done another way, one parameter of the workloads that allow it.

- ``eager``: as written, op by op.
- ``compile``: ``torch.compile`` in its default mode. Compiling is the first call, reported
  apart as every first call is; the steady time is what is compared.
- ``channels_last``: the input and the weights in NHWC order (convolutions and CNNs).
- ``autocast``: float32 work under ``torch.autocast`` at torch's default lower precision
  for the device (bfloat16 on the CPU, float16 on accelerators); ``autocast_bf16`` and
  ``autocast_fp16`` name the precision.

A variant a backend cannot run is a reason (a skipped row), never a crash. Importing this
module does not import torch.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from core.measure.workloads.base import Param, dtype_name

if TYPE_CHECKING:
    import torch

EAGER, COMPILE, CHANNELS_LAST = "eager", "compile", "channels_last"
AUTOCAST = ("autocast", "autocast_bf16", "autocast_fp16")
VARIANTS: tuple[str, ...] = (EAGER, COMPILE, CHANNELS_LAST, *AUTOCAST)
# Without an image layout, channels_last means nothing.
FLAT_VARIANTS: tuple[str, ...] = tuple(v for v in VARIANTS if v != CHANNELS_LAST)

# What compiling costs before the first timed call, for estimates until this machine has
# measured its own: about 17 s for a one-line function on a 2-core laptop CPU, and a CNN's
# forward and backward graphs take several times that.
COMPILE_SETUP_S = {"matmul": 20.0, "conv2d": 25.0, "inference": 60.0, "train": 150.0}
COMPILE_DEFAULT_S = 60.0


def param(choices: tuple[str, ...] = VARIANTS) -> Param:
    return Param(
        "variant",
        str,
        EAGER,
        choices=choices,
        help="eager, torch.compile, channels_last memory format, or float32 under autocast",
        quiet=True,
    )


def of(params: dict) -> str:
    """A point's variant; rows stored before variants existed ran eagerly."""
    variant = params.get("variant")
    return variant if isinstance(variant, str) and variant else EAGER


def autocast_dtype(variant: str, device_type: str) -> str | None:
    """The precision an autocast variant computes in on this device type, or None."""
    if variant == "autocast":
        return "bfloat16" if device_type == "cpu" else "float16"
    return {"autocast_bf16": "bfloat16", "autocast_fp16": "float16"}.get(variant)


def check_dtype(params: dict, device_type: str, dtype: torch.dtype | str) -> str:
    """The dtype whose tolerance the output check allows: the autocast precision, if any."""
    return autocast_dtype(of(params), device_type) or dtype_name(dtype)


def unsupported(params: dict, device: torch.device, dtype: torch.dtype | str) -> str | None:
    """Why this backend cannot run this point's variant, in words; None when it can."""
    from core.measure import devices

    variant = of(params)
    if low := autocast_dtype(variant, device.type):
        if dtype_name(dtype) != "float32":
            return f"{variant} lowers float32 work; this point is already {dtype_name(dtype)}"
        status, note = devices.dtype_support(device, low)
        return f"{variant}: {note}" if status == "unsupported" else None
    if variant == COMPILE:
        return compile_unsupported(device.type)
    return None


@functools.cache
def compile_unsupported(device_type: str) -> str | None:
    """Why ``torch.compile`` cannot run here: no Dynamo for this Python, or no Inductor
    backend for MPS in the installed torch (pytorch#150121)."""
    import torch

    supported = getattr(torch._dynamo, "is_dynamo_supported", lambda: True)
    try:
        if not supported():
            return f"torch.compile does not support this Python with torch {torch.__version__}"
    except Exception as error:  # the probe raises where Dynamo is unsupported
        return f"torch.compile is not available here: {error}"
    if device_type == "mps" and importlib.util.find_spec("torch._inductor.codegen.mps") is None:
        return f"torch {torch.__version__} has no torch.compile backend for MPS"
    return None


def compiled(work: Callable) -> Callable:
    """``torch.compile(work)`` in the default mode, from a clean slate. Dynamo keeps a few
    compiled versions per function and, past that limit, quietly runs eagerly: a figure
    labelled compiled would then be eager. Resetting before each point prevents that;
    Inductor's caches on disk still reuse the kernels of a shape compiled before."""
    import torch

    torch.compiler.reset()
    return torch.compile(work)


def laid_out(model: Any, x: torch.Tensor, variant: str) -> tuple[Any, torch.Tensor]:
    """The module and input in the variant's memory format (NHWC for channels_last)."""
    import torch

    if variant != CHANNELS_LAST:
        return model, x
    nhwc = torch.channels_last
    return model.to(memory_format=nhwc), x.contiguous(memory_format=nhwc)


def under(work: Callable[[], Any], variant: str, device: torch.device) -> Callable[[], Any]:
    """``work`` run under the variant's autocast, when it has one."""
    if autocast_dtype(variant, device.type) is None:
        return work

    def run() -> Any:
        with context(variant, device):
            return work()

    return run


def context(variant: str, device: torch.device):
    """The autocast context of a variant, or a context that does nothing."""
    import torch

    low = autocast_dtype(variant, device.type)
    if low is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=getattr(torch, low))
