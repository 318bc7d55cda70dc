"""The few Apple-only calls; everything else runs MPS through the same code as CUDA. Tests
substitute ``torch.mps`` and ``_sysctl`` here, because the project's CI has no Mac."""

from __future__ import annotations

import subprocess

import torch


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
