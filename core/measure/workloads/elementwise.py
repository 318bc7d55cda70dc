"""Element-wise ops on one or two vectors, and row-wise ops (softmax, layer norm, a sum, a
sort) along rows of a fixed width: memory-bound, they show dispatch cost and bandwidth."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.measure.workloads.base import Cost, Param, Prepared, Workload, itemsize

if TYPE_CHECKING:
    import torch

CHECK_MAX_ELEMENTS = 1 << 20
# Rounding and the random generator's state: 35 MB above four vectors at 1e8 on an H200.
ALLOCATOR_SLACK_BYTES = 64 * 1024**2
# Row-wise ops see the vector as rows of this many elements (every size the pages offer is
# a multiple), so that a block of rows is an exact check, as a prefix is for element-wise.
ROW_WIDTH = 1000


@dataclass(frozen=True)
class Op:
    """What one op takes, does and costs."""

    arity: int = 1  # number of input vectors
    positive: bool = False  # inputs must be positive (sqrt)
    rows: bool = False  # works along rows of ROW_WIDTH elements, not element by element
    flops_per_element: float = 1.0  # transcendental ones count as one
    reduces: bool = False  # writes one value per row (a sum), not one per element
    index_bytes_per_element: int = 0  # a sort also writes int64 indices


def _call(name: str):
    """The torch function an op runs, taking its input vectors (rows already shaped)."""
    import torch
    import torch.nn.functional as F

    row_wise = {
        "softmax": lambda x: torch.softmax(x, dim=-1),
        "layer_norm": lambda x: F.layer_norm(x, (ROW_WIDTH,)),  # no affine weights
        "sum": lambda x: x.sum(dim=-1),
        # torch.sort always computes the indices too; the check compares the values.
        "sort": lambda x: torch.sort(x, dim=-1).values,
    }
    return row_wise.get(name) or getattr(torch, name, None) or getattr(F, name)


_ELEMENT_WISE = ("add", "mul", "exp", "sin", "relu", "sqrt", "tanh", "sigmoid", "gelu")
# The post's ops first: charts colour ops in this order, and stored results use these names.
OPS: dict[str, Op] = {
    **{
        op: Op(arity=2 if op in ("add", "mul") else 1, positive=op == "sqrt")
        for op in _ELEMENT_WISE
    },
    # max, subtract, exp, sum, divide
    "softmax": Op(rows=True, flops_per_element=5),
    # the mean, the variance (subtract, square, add), the scaling
    "layer_norm": Op(rows=True, flops_per_element=5),
    "sum": Op(rows=True, reduces=True),
    # a comparison sort's log2(n) comparisons per element, counted as operations
    "sort": Op(rows=True, flops_per_element=math.log2(ROW_WIDTH), index_bytes_per_element=8),
}


def _cost(params: dict, dtype: torch.dtype) -> Cost:
    op, size, width = OPS[params["op"]], params["size"], itemsize(dtype)
    indices = op.index_bytes_per_element * size
    outputs = size // ROW_WIDTH if op.reduces else size
    # Inputs, the output, and up to two more vector-sized blocks the allocator and the
    # random generator held at the peak measured on an H200; a sort's indices up to four
    # times over (its output, and the double buffers of a radix sort's keys and values).
    return Cost(
        flops=float(op.flops_per_element * size),
        bytes_moved=float((op.arity * size + outputs) * width + indices),
        memory_bytes=float((op.arity + 3) * size * width + 4 * indices + ALLOCATOR_SLACK_BYTES),
        items=size,
    )


def _unsupported(params: dict, device_type: str, dtype) -> str | None:
    name, size = params["op"], params["size"]
    if OPS[name].rows and size % ROW_WIDTH:
        return f"{name} works along rows of {ROW_WIDTH} elements; {size} is not a multiple"
    return None


def _build(params: dict, device: torch.device, dtype: torch.dtype) -> Prepared:
    import torch

    name, size = params["op"], params["size"]
    spec, op = OPS[name], _call(name)
    torch.manual_seed(0)
    inputs = [torch.randn(size, device=device, dtype=dtype) for _ in range(spec.arity)]
    if spec.positive:
        inputs = [x.abs_().add_(0.1) for x in inputs]
    # An element's result depends on that element alone, a row's on that row alone, so a
    # prefix of elements or of rows is an exact check.
    block, unit = (ROW_WIDTH, "rows") if spec.rows else (1, "elements")
    if spec.rows:
        inputs = [x.view(-1, ROW_WIDTH) for x in inputs]
    count = max(CHECK_MAX_ELEMENTS // block, 1)
    head = [x[:count] for x in inputs]
    note = "" if size <= count * block else f"checked the first {count} {unit}"
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
        Param(
            "op",
            str,
            "add",
            choices=tuple(OPS),
            help=f"the operation; {', '.join(n for n, o in OPS.items() if o.rows)} work along "
            f"rows of {ROW_WIDTH} elements",
        ),
        Param("size", int, 10_000_000, low=1e3, high=1e9, log=True, unit="elements"),
    ),
    cost=_cost,
    build=_build,
    unsupported=_unsupported,
    x_param="size",
)
