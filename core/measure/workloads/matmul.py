"""Dense N x N matrix product: compute-bound, the accelerator's best case."""

from __future__ import annotations

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


def _cost(params: dict, dtype: torch.dtype) -> Cost:
    n, width = params["size"], itemsize(dtype)
    return Cost(
        flops=2.0 * n**3,
        bytes_moved=3.0 * n * n * width,
        memory_bytes=4.0 * n * n * width + WORKSPACE_BYTES,
    )


def _build(params: dict, device: torch.device, dtype: torch.dtype) -> Prepared:
    import torch

    n = params["size"]
    torch.manual_seed(0)
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    # Rows of a product depend only on their own rows of a: a block of rows is exact.
    rows = max(1, min(n, int(CHECK_MAX_FLOPS // (2 * n * n))))
    return Prepared(
        fn=lambda: a @ b,
        check=lambda: ((a[:rows] @ b).cpu(), a[:rows].cpu().double() @ b.cpu().double()),
        check_note="" if rows == n else f"checked the first {rows} rows",
    )


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
    ),
    cost=_cost,
    build=_build,
    x_param="size",
)
