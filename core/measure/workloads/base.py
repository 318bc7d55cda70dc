"""What a workload is: parameters as data, a cost stated before anything is allocated,
and a builder that returns the closure to time.

Importing the registry does not import torch: charts, the post's reference and the CLI
read titles, parameters and axis titles from it without paying for torch. Functions that
build tensors import torch when they run.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from core import units
from core.errors import BadInput

if TYPE_CHECKING:
    import torch

# Bytes per element of each dtype a workload runs in.
DTYPE_SIZES: dict[str, int] = {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8}
DTYPE_NAMES: tuple[str, ...] = tuple(DTYPE_SIZES)


def parse_dtype_name(text: str) -> str:
    """A dtype's name, checked, without importing torch; raises BadInput naming the choices."""
    name = str(text).strip().lower()
    if name not in DTYPE_SIZES:
        raise BadInput(f"dtype: '{text}' is not known; choose from {', '.join(DTYPE_NAMES)}")
    return name


def parse_dtype(text: str) -> torch.dtype:
    import torch

    return getattr(torch, parse_dtype_name(text))


def dtype_name(dtype: torch.dtype | str) -> str:
    """'float32' for torch.float32 or for 'float32'."""
    return str(dtype).removeprefix("torch.")


def itemsize(dtype: torch.dtype | str) -> int:
    return DTYPE_SIZES[dtype_name(dtype)]


class _ByDtype(dict):
    """Keyed by dtype name; a torch dtype works as a key too."""

    def __missing__(self, dtype):
        return dict(self)[dtype_name(dtype)]  # a plain dict: an unknown name raises KeyError


@dataclass(frozen=True)
class Param:
    """One parameter of a workload, with what is allowed and how a slider should show it."""

    name: str
    kind: type  # int, float or str
    default: Any
    low: float | None = None
    high: float | None = None
    choices: tuple = ()
    log: bool = False
    unit: str = ""
    help: str = ""
    axis: str = ""  # a chart axis title, when the name and unit do not read well
    # Left out of a point's name, and of tables, at its default: parameters added after
    # the post (a variant, a stride) keep the post's points named and shown as before.
    quiet: bool = False

    @property
    def axis_title(self) -> str:
        """How a chart's axis names this parameter, with its unit: "size (elements)"."""
        label = self.name.replace("_", " ")
        return self.axis or (f"{label} ({self.unit})" if self.unit else label)

    def allowed(self) -> str:
        if self.choices:
            return ", ".join(map(str, self.choices))
        return f"{units.compact(self.low)}..{units.compact(self.high)}"

    def parse(self, value: Any) -> Any:
        """A user's value, as text or number, checked; raises BadInput naming what is allowed."""
        if self.kind is str:
            text = str(value).strip().lower()
            if self.choices and text not in self.choices:
                raise BadInput(f"{self.name}: '{value}' is not known; choose from {self.allowed()}")
            return text
        name, allowed = self.name, self.allowed()
        try:
            number = float(str(value).strip())
        except ValueError:
            raise BadInput(f"{name}: '{value}' is not a number; allowed {allowed}") from None
        if not math.isfinite(number):
            raise BadInput(f"{name}: '{value}' is not finite; allowed {allowed}")
        if self.kind is int:
            if number != int(number):
                raise BadInput(f"{name}: '{value}' is not a whole number")
            number = int(number)
        if self.choices and number not in self.choices:
            raise BadInput(f"{name}: {value} is not allowed; choose from {allowed}")
        if (self.low is not None and number < self.low) or (
            self.high is not None and number > self.high
        ):
            raise BadInput(f"{name}: {value} is out of range; allowed {allowed}")
        return number


@dataclass(frozen=True)
class Cost:
    """Known before anything is allocated: work done, bytes moved, memory needed."""

    flops: float
    bytes_moved: float
    memory_bytes: float
    items: int = 1  # images or samples per call, for throughput
    # Tighter bounds for device types whose kernels need less (attention's fused kernels
    # on CUDA hold no s×s block): (device type, bytes) pairs.
    memory_bytes_on: tuple[tuple[str, float], ...] = ()

    def memory_for(self, device_type: str) -> float:
        """The memory bound on this device type."""
        return dict(self.memory_bytes_on).get(device_type, self.memory_bytes)


@dataclass
class Prepared:
    """The timed closure and an output check, with every input already built."""

    fn: Callable[[], Any]
    # Returns (device output, CPU reference), both float64 on the CPU, or None when the
    # reference would cost too much; ``check_note`` says what was compared.
    check: Callable[[], tuple[torch.Tensor, torch.Tensor] | None] | None = None
    check_note: str = ""
    # Which implementation torch ran, where it is known and differs by point or device
    # (attention's flash, memory-efficient or math kernel): the row's ``implementation``.
    implementation: str = ""


@dataclass(frozen=True)
class Workload:
    """A registry entry. Adding a workload is one of these and its place in ``REGISTRY``."""

    name: str
    title: str
    question: str
    params: tuple[Param, ...]
    cost: Callable[[dict, torch.dtype], Cost]
    build: Callable[[dict, torch.device, torch.dtype], Prepared]
    # A reason this combination cannot run on this device type, or None.
    unsupported: Callable[[dict, str, torch.dtype], str | None] = lambda p, d, t: None
    x_param: str = ""  # the parameter charts put on the x axis by default

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    @property
    def x_title(self) -> str:
        return self.param(self.x_param).axis_title

    def param(self, name: str) -> Param:
        found = {p.name: p for p in self.params}
        if name not in found:
            raise BadInput(f"{self.name}: no parameter '{name}'; parameters are {', '.join(found)}")
        return found[name]

    def defaults(self) -> dict:
        return {p.name: p.default for p in self.params}

    def validate(self, values: dict) -> dict:
        """Defaults filled in and every value parsed; unknown names are refused."""
        for name in values:
            self.param(name)
        return {p.name: p.parse(values.get(p.name, p.default)) for p in self.params}


def skip_reason(device_type: str, dtype: torch.dtype | str) -> str | None:
    """Combinations no workload can run, whatever its parameters."""
    return "MPS has no float64" if device_type == "mps" and dtype_name(dtype) == "float64" else None


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """Largest absolute difference over the reference's largest magnitude.

    Scaled by the whole reference rather than per element, so values near zero do
    not turn rounding into huge ratios. NaN or inf anywhere gives inf.
    """
    import torch

    actual, expected = actual.double().reshape(-1), expected.double().reshape(-1)
    if not (torch.isfinite(actual).all() and torch.isfinite(expected).all()):
        return math.inf
    scale = expected.abs().max().item() if expected.numel() else 0.0
    diff = (actual - expected).abs().max().item() if actual.numel() else 0.0
    return diff / scale if scale > 0 else diff


# Beyond these, the accelerator's output does not match the CPU's. float32 allows for
# TF32, which cuDNN uses for convolutions by default. Keyed by name or torch dtype.
TOLERANCE: dict[str, float] = _ByDtype(float64=1e-9, float32=5e-3, float16=2e-2, bfloat16=8e-2)

# cuDNN, cuBLAS and MPSGraph workspaces and allocator rounding, beyond the tensors a
# workload counts (a 7x7 convolution took about 100 MB of workspace on an H200).
WORKSPACE_BYTES = 256 * 1024**2

# Above this many FLOPs the CPU reference is computed on a slice, or not at all,
# so that checking never costs more than about a second on a laptop.
CHECK_MAX_FLOPS = 2e10
