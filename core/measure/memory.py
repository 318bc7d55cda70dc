"""The memory guard: every point's need is estimated and checked before anything is allocated."""

from __future__ import annotations

import math
import re

import torch

from core import units
from core.errors import BadInput
from core.measure import devices, mps_adapter

_UNITS = {"": 1, "b": 1} | {
    f"{prefix}{b}": base**power
    for power, prefix in enumerate("kmgt", 1)
    for b, base in (("b", 1000.0), ("ib", 1024))
}

# Share of what a device can use that a point may take by default: the rest is left
# for the OS, the desktop and this process's own caches.
DEFAULT_SHARE = {"cpu": 0.6, "mps": 0.8}
DEFAULT_ACCELERATOR_SHARE = 0.9

# "Act as an 8 GB laptop": macOS lets Metal use about two thirds of an 8 GB Mac's
# unified memory (its recommendedMaxWorkingSetSize), so that is the budget.
PRESETS_BYTES = {"8 GB laptop": int(8 * 1024**3 * 2 / 3), "16 GB laptop": int(16 * 1024**3 * 2 / 3)}


def parse_bytes(text: str | float | int) -> int:
    """'8GB', '512 MiB', '1e9' -> bytes. Raises BadInput with an example of what works."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value, unit = float(text), ""
    else:
        match = re.fullmatch(
            r"\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([a-z]*)\s*", str(text).lower()
        )
        if match is None or match.group(2) not in _UNITS:
            raise BadInput(
                f"memory budget: '{text}' is not a size; write e.g. 8GB, 512MB, 6GiB or 1e9"
            )
        value, unit = float(match.group(1)), match.group(2)
    result = value * _UNITS[unit]
    if not math.isfinite(result) or result <= 0:
        raise BadInput(f"memory budget: '{text}' must be a positive size, e.g. 8GB")
    return int(result)


format_bytes = units.bytes_si  # for ui/ until it calls core.units itself


def memory_limits_bytes(device: torch.device) -> tuple[int | None, int | None]:
    """(free, total) that a point on ``device`` may use. On MPS the total is what Metal
    recommends, lowered to PyTorch's hard limit (the high watermark ratio in force) where
    that is lower: past it allocations fail, past the recommendation the Mac swaps."""
    free, total = devices.memory_info_bytes(device)
    if device.type != "mps" or total is None:
        return free, total
    limit = mps_adapter.watermark_limit_bytes()
    if limit is None or limit >= total:
        return free, total
    return (None if free is None else max(free - (total - limit), 0)), limit


def default_budget_bytes(device: torch.device | str) -> int | None:
    """A safe share of what ``device`` can use now, or None where the backend cannot tell."""
    device = torch.device(device)
    free, total = memory_limits_bytes(device)
    available = free if free is not None else total
    if available is None:
        return None
    return int(available * DEFAULT_SHARE.get(device.type, DEFAULT_ACCELERATOR_SHARE))


def refusal(
    estimate_bytes: float, budget_bytes: int | None, device: torch.device | str
) -> str | None:
    """The message for a point that would not fit, or None when it fits."""
    if budget_bytes is None or estimate_bytes <= budget_bytes:
        return None
    return (
        f"needs about {units.bytes_si(estimate_bytes)} on {device}, "
        f"but the memory budget allows {units.bytes_si(budget_bytes)}"
    )


def capped_budget(budget_bytes: int | None, device: torch.device | str) -> tuple[int | None, str]:
    """A budget is at most what ``device`` has: a larger one (1e30TB, say) is clamped to
    the device's total, with a note saying so; None stays None."""
    _, total = memory_limits_bytes(torch.device(device))
    if budget_bytes is None or total is None or budget_bytes <= total:
        return budget_bytes, ""
    return total, (
        f"the memory budget {units.bytes_si(budget_bytes)} is more than {device} has; "
        f"using its {units.bytes_si(total)}"
    )
