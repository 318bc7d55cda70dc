"""Element-wise ops on one or two vectors: memory-bound, they show dispatch cost and bandwidth."""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.measure.workloads.base import Cost, Param, Prepared, Workload, itemsize

if TYPE_CHECKING:
    import torch

CHECK_MAX_ELEMENTS = 1 << 20
# Rounding and the random generator's state: 35 MB above four vectors at 1e8 on an H200.
ALLOCATOR_SLACK_BYTES = 64 * 1024**2

# name -> (number of inputs, whether inputs must be positive): add and mul take two, sqrt
# positive ones. The function is torch's own of that name (torch.nn.functional's for gelu).
OPS: dict[str, tuple[int, bool]] = {
    op: (2 if op in ("add", "mul") else 1, op == "sqrt")
    for op in ("add", "mul", "exp", "sin", "relu", "sqrt", "tanh", "sigmoid", "gelu")
}


def _cost(params: dict, dtype: torch.dtype) -> Cost:
    arity, size, width = OPS[params["op"]][0], params["size"], itemsize(dtype)
    # Inputs, the output, and up to two more vector-sized blocks the allocator and the
    # random generator held at the peak measured on an H200.
    return Cost(
        flops=float(size),  # one operation per element; transcendental ones count as one
        bytes_moved=float((arity + 1) * size * width),
        memory_bytes=float((arity + 3) * size * width + ALLOCATOR_SLACK_BYTES),
        items=size,
    )


def _build(params: dict, device: torch.device, dtype: torch.dtype) -> Prepared:
    import torch

    name, size = params["op"], params["size"]
    arity, positive = OPS[name]
    op = getattr(torch, name, None) or getattr(torch.nn.functional, name)
    torch.manual_seed(0)
    inputs = [torch.randn(size, device=device, dtype=dtype) for _ in range(arity)]
    if positive:
        inputs = [x.abs_().add_(0.1) for x in inputs]
    # Element-wise results do not depend on the length, so a prefix is an exact check.
    head = [x[:CHECK_MAX_ELEMENTS] for x in inputs]
    note = "" if size <= CHECK_MAX_ELEMENTS else f"checked the first {CHECK_MAX_ELEMENTS} elements"
    return Prepared(
        fn=lambda: op(*inputs),
        check=lambda: (op(*head).cpu(), op(*[x.cpu().double() for x in head])),
        check_note=note,
    )


ELEMENTWISE = Workload(
    name="elementwise",
    title="Element-wise ops",
    question="From what tensor size does the accelerator beat the CPU on simple element-wise ops?",
    params=(
        Param("op", str, "add", choices=tuple(OPS), help="the operation"),
        Param("size", int, 10_000_000, low=1e3, high=1e9, log=True, unit="elements"),
    ),
    cost=_cost,
    build=_build,
    x_param="size",
)
