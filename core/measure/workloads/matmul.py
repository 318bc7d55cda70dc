"""Matrix product (M x K) @ (K x N), square N x N by default, optionally batched:
compute-bound, the accelerator's best case."""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.measure.workloads import variants
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


def _shape(params: dict) -> tuple[int, int, int, int]:
    """(batch, M, K, N); M and K of 0 mean N, the square product of the post."""
    n = params["size"]
    return params.get("batch") or 1, params.get("m") or n, params.get("k") or n, n


def _cost(params: dict, dtype: torch.dtype) -> Cost:
    batch, m, k, n = _shape(params)
    width = itemsize(dtype)
    operands = batch * (m * k + k * n + m * n) * width
    # The operands, a second output (the check's), and a cast copy of each operand
    # under any variant but eager (autocast's half-width copies, a compiled buffer).
    copies = 0 if variants.of(params) == variants.EAGER else batch * (m * k + k * n) * width
    return Cost(
        flops=2.0 * batch * m * n * k,
        bytes_moved=float(operands),
        memory_bytes=float(operands + batch * m * n * width + copies + WORKSPACE_BYTES),
        items=batch,
    )


def _product(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return a @ b


def _build(params: dict, device: torch.device, dtype: torch.dtype) -> Prepared:
    import torch

    batch, m, k, n = _shape(params)
    variant = variants.of(params)
    torch.manual_seed(0)
    lead = (batch,) if batch > 1 else ()
    a = torch.randn(*lead, m, k, device=device, dtype=dtype)
    b = torch.randn(*lead, k, n, device=device, dtype=dtype)
    product = variants.compiled(_product) if variant == variants.COMPILE else _product
    fn = variants.under(lambda: product(a, b), variant, device)
    # Rows of a product depend only on their own rows of a: a block of rows of the first
    # matrix in the batch is exact.
    rows = max(1, min(m, int(CHECK_MAX_FLOPS // (2 * n * k))))
    first_a, first_b = (a[0], b[0]) if lead else (a, b)

    def check():
        # The timed call itself, so that a compiled or autocast variant is what is checked.
        got = fn()
        got = got[0] if lead else got
        return got[:rows].cpu(), first_a[:rows].cpu().double() @ first_b.cpu().double()

    where = "the first product" if lead else ""
    if rows < m:
        where = f"the first {rows} rows" + (f" of {where}" if where else "")
    return Prepared(fn=fn, check=check, check_note=f"checked {where}" if where else "")


MATMUL = Workload(
    name="matmul",
    title="Matrix multiply",
    question="How large must a matrix product be before the accelerator pays off?",
    params=(
        Param(
            "size",
            int,
            1024,
            low=16,
            high=32768,
            log=True,
            unit="N (N x N matrices)",
            axis="matrix size N",
        ),
        Param(
            "m",
            int,
            0,
            low=0,
            high=32768,
            help="rows of the product; 0: N",
            axis="M",
            quiet=True,
        ),
        Param(
            "k",
            int,
            0,
            low=0,
            high=32768,
            help="the inner dimension; 0: N",
            axis="K",
            quiet=True,
        ),
        Param("batch", int, 1, low=1, high=4096, log=True, help="products at once", quiet=True),
        variants.param(variants.FLAT_VARIANTS),
    ),
    cost=_cost,
    build=_build,
    x_param="size",
)
