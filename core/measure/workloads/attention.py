"""Scaled dot-product attention (``torch.nn.functional.scaled_dot_product_attention``) on
q, k, v of shape (batch, heads, seq_len, head_dim): the kernel of every transformer.

Each row names the kernel torch's dispatcher picked for that point (flash, memory-efficient,
cuDNN or math on CUDA; its own flash kernel or math on the CPU), since the choice changes
with the device, the dtype and the shape, and with it the time and the memory.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from core.measure.workloads.base import (
    CHECK_MAX_FLOPS,
    WORKSPACE_BYTES,
    Cost,
    Param,
    Prepared,
    Workload,
    itemsize,
)

if TYPE_CHECKING:
    import torch

# Float64 attention scores the CPU reference may hold at once (128 MiB): at long sequences
# it checks a block of query rows rather than whole heads.
CHECK_MAX_SCORES = 1 << 24
# Kernel names by torch's SDPBackend, as rows and charts show them.
KERNELS = {
    "MATH": "math",
    "FLASH_ATTENTION": "flash",
    "EFFICIENT_ATTENTION": "memory-efficient",
    "CUDNN_ATTENTION": "cudnn",
    "OVERRIDEABLE": "overrideable",
}


def _shape(params: dict) -> tuple[int, int, int, int]:
    return params["batch"], params["heads"], params["seq_len"], params["head_dim"]


def _cost(params: dict, dtype: torch.dtype) -> Cost:
    batch, heads, seq, dim = _shape(params)
    pairs, width = batch * heads, itemsize(dtype)
    # The math path computes float16 and bfloat16 in float32 (torch's default).
    acc = max(width, 4)
    # Causal attention counts only the scores the mask keeps, s(s+1)/2 of s², as
    # FlashAttention's papers do: the rate is useful work, whatever a kernel skips.
    scores = seq * (seq + 1) / 2 if params["causal"] == "yes" else float(seq * seq)
    return Cost(
        flops=4.0 * pairs * scores * dim,  # q·kᵀ and the weights times v: 2 FLOPs per MAC
        bytes_moved=4.0 * pairs * seq * dim * width,  # q, k, v read and the output written
        # An upper bound for any kernel torch may pick here (it is not known before the
        # device is): the math path holds per head about four s×s blocks of scores, softmax
        # and its mask, in float32 at least, and the causal mask once as bool and as
        # float; q, k, v and the output, their float32 copies and the products' temporaries;
        # the fused kernels need only the first of these.
        memory_bytes=float(
            pairs * seq * dim * (4 * width + 6 * acc)
            + (4 * pairs + 2) * seq * seq * acc
            + WORKSPACE_BYTES
        ),
        items=batch,
        # On CUDA the dispatcher picks a fused kernel for every head size offered here
        # (cuDNN, flash or memory-efficient, which takes float32 too): q, k, v, the output
        # and per-row softmax statistics, doubled for the kernel's own buffers. Measured on
        # an H200: 1.07 GB at 4×16 heads × 16384 × 128 in float16, where the bound above
        # says 282 GB and would refuse what fits.
        memory_bytes_on=(
            (
                "cuda",
                float(2 * (4 * pairs * seq * dim * width + pairs * seq * 4)) + WORKSPACE_BYTES,
            ),
        ),
    )


def kernel_name(q, k, v, causal: bool) -> str:
    """The kernel ``scaled_dot_product_attention`` runs for these inputs, as the dispatcher
    itself chooses it; "" where that is not known (MPS, other devices, or a torch without
    the choice function).

    ``torch._fused_sdp_choice`` is the very function the dispatcher calls, on CUDA and on
    the CPU. The public ``torch.backends.cuda.can_use_*_attention`` only say which kernels
    could run: which of them wins follows a priority order that is only readable through a
    private call and that torch sets at the first call (cuDNN first on Hopper and Blackwell
    with a recent cuDNN), so trying kernels in a fixed order could name the wrong one.
    ``torch.profiler`` names what ran exactly (the tests use it to confirm this), but its
    first use takes seconds and writes log lines to stderr.
    """
    import torch

    choose = getattr(torch, "_fused_sdp_choice", None)
    if choose is None or q.device.type not in ("cpu", "cuda"):
        return ""
    try:
        code = int(choose(q, k, v, None, 0.0, causal))
        name = KERNELS.get(torch.nn.attention.SDPBackend(code).name, "")
    except Exception:  # a name is a label: never let it fail a point
        return ""
    if q.device.type == "cpu":  # the CPU has its own flash kernel, not CUDA's
        return {"flash": "flash (cpu)", "math": "math"}.get(name, "")
    return name


def _reference(q, k, v, causal: bool):
    """Attention written out in float64: softmax(q kᵀ / √d) v, the causal mask keeping each
    query's keys up to its own position. Independent of every SDPA kernel."""
    import torch

    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if causal:  # query i sees keys 0..i: exact for a block of the first query rows
        rows, keys = scores.shape[-2:]
        scores.masked_fill_(torch.ones(rows, keys, dtype=torch.bool).triu(1), -math.inf)
    return scores.softmax(-1) @ v


def _checked(pairs: int, seq: int, dim: int) -> tuple[int, int]:
    """(heads, query rows) the reference checks: whole heads while they fit the budgets,
    else a block of the first query rows of one head (rows do not depend on each other)."""
    rows = int(min(CHECK_MAX_FLOPS // (4 * seq * dim), CHECK_MAX_SCORES // seq))
    if rows >= seq:
        return min(pairs, rows // seq), seq
    return 1, max(rows, 1)


def _build(params: dict, device: torch.device, dtype: torch.dtype) -> Prepared:
    import torch
    import torch.nn.functional as F

    batch, heads, seq, dim = _shape(params)
    causal = params["causal"] == "yes"
    torch.manual_seed(0)
    q, k, v = (torch.randn(batch, heads, seq, dim, device=device, dtype=dtype) for _ in "qkv")

    def fn():
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal)

    pairs, rows = _checked(batch * heads, seq, dim)

    def check():
        def first(x, n):  # the first heads (over batch × heads), their first n rows
            return x.reshape(batch * heads, seq, dim)[:pairs, :n]

        inputs = [first(x, n).cpu().double() for x, n in ((q, rows), (k, seq), (v, seq))]
        return first(fn(), rows).cpu(), _reference(*inputs, causal)

    if rows < seq:
        note = f"checked the first {rows} of {seq} queries of one head"
    elif pairs < batch * heads:
        note = f"checked {pairs} of the {batch * heads} heads (batch × heads)"
    else:
        note = ""
    return Prepared(
        fn=fn, check=check, check_note=note, implementation=kernel_name(q, k, v, causal)
    )


ATTENTION = Workload(
    name="attention",
    title="Attention",
    question="From what sequence length does the accelerator win at attention, with which kernel?",
    params=(
        Param(
            "seq_len",
            int,
            1024,
            low=16,
            high=65536,
            log=True,
            unit="tokens",
            axis="sequence length (tokens)",
        ),
        Param("heads", int, 8, low=1, high=128, log=True, axis="heads"),
        Param("head_dim", int, 64, choices=(32, 64, 128, 256), axis="head size"),
        Param("batch", int, 1, low=1, high=256, log=True, axis="batch size"),
        Param("causal", str, "no", choices=("no", "yes"), help="mask later tokens"),
    ),
    cost=_cost,
    build=_build,
    x_param="seq_len",
)
