"""The few Apple-only calls; everything else runs MPS through the same code as CUDA. Tests
substitute ``torch.mps`` and ``_sysctl`` here, because the project's CI has no Mac."""

from __future__ import annotations

import os
import re
import subprocess

import torch

from core import units


def _sysctl(name: str) -> str | None:
    try:
        done = subprocess.run(
            ["sysctl", "-n", name], capture_output=True, text=True, timeout=2, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None


def chip_name() -> str:
    """The Apple chip, e.g. "Apple A18 Pro"; the GPU is on the same die."""
    return _sysctl("machdep.cpu.brand_string") or "Apple silicon"


def core_split() -> tuple[int, int] | None:
    """(performance, efficiency) core counts, or None where macOS does not tell."""
    try:
        performance = int(_sysctl("hw.perflevel0.physicalcpu"))  # None: TypeError
        return performance, int(_sysctl("hw.perflevel1.physicalcpu") or 0)
    except (TypeError, ValueError):
        return None


def recommended_max_memory_bytes() -> int:
    """What Metal suggests the GPU may use of the unified memory."""
    return int(torch.mps.recommended_max_memory())


def current_allocated_bytes() -> int:
    """Memory held by live tensors now; sampled after each call for a point's peak."""
    return int(torch.mps.current_allocated_memory())


def driver_allocated_bytes() -> int:
    """Everything the Metal driver holds for this process, caches included."""
    return int(torch.mps.driver_allocated_memory())


def empty_cache() -> None:
    torch.mps.empty_cache()


# M1 and M2 (and the A14-A16 of their generation) have no bfloat16 arithmetic: MPS converts
# to float32 and back, so bfloat16 runs but is not faster (huggingface/transformers#40458).
# M3, A17 Pro and later compute it natively.
_BFLOAT16_EMULATED = re.compile(r"\bApple (M[12]|A1[4-6])\b")


def bfloat16_emulated(chip: str | None = None) -> bool:
    """Whether this chip (by its name) emulates bfloat16."""
    return bool(_BFLOAT16_EMULATED.search(chip or chip_name()))


# PyTorch's MPS allocator (docs: "MPS Environment Variables"): the high watermark ratio is a
# hard limit on all allocations, as a multiple of recommended_max_memory() (0 disables it);
# the low one is a soft limit that must not be above it, so lowering the high ratio below
# 1.4 takes both variables (pytorch#96814).
HIGH_WATERMARK_ENV, LOW_WATERMARK_ENV = (
    "PYTORCH_MPS_HIGH_WATERMARK_RATIO",
    "PYTORCH_MPS_LOW_WATERMARK_RATIO",
)
DEFAULT_HIGH_WATERMARK_RATIO = 1.7
DEFAULT_LOW_WATERMARK_RATIO = 1.4  # unified memory; 1.0 on discrete GPUs, which Macs with MPS lack


def _ratio(name: str, default: float) -> float:
    try:
        value = float(os.environ.get(name, default))
    except ValueError:  # torch reads it with the same rules; an unreadable value is not in force
        return default
    return value if value >= 0 else default


def watermark_ratios() -> tuple[float, float]:
    """(high, low) watermark ratios in force for this process, from the environment."""
    return (
        _ratio(HIGH_WATERMARK_ENV, DEFAULT_HIGH_WATERMARK_RATIO),
        _ratio(LOW_WATERMARK_ENV, DEFAULT_LOW_WATERMARK_RATIO),
    )


def watermark_limit_bytes() -> int | None:
    """PyTorch's hard limit on MPS allocations ("max allowed" in its out-of-memory error),
    or None where the ratio 0 disables it."""
    high, _ = watermark_ratios()
    return int(high * recommended_max_memory_bytes()) if high > 0 else None


def memory_note() -> str:
    """Both limits in words, for the machine card."""
    high, low = watermark_ratios()
    recommended = recommended_max_memory_bytes()
    source = f"{HIGH_WATERMARK_ENV}=" + os.environ.get(HIGH_WATERMARK_ENV, f"{high:g} (default)")
    if high > 0:
        limit = f"PyTorch's hard limit is {high:g} x that, {units.bytes_si(high * recommended)}"
    else:
        limit = "PyTorch sets no hard limit"
    note = f"Metal recommends at most {units.bytes_si(recommended)}; {limit} ({source})"
    if 0 < high < low:
        note += (
            f"; the low watermark ratio {low:g} is above it, which torch refuses: "
            f"set {LOW_WATERMARK_ENV} too"
        )
    return note
