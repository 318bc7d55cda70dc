"""Which devices this machine has, what they are called, and how to wait for them.

Generic over ``torch.accelerator`` (PyTorch 2.6+): CUDA, MPS, XPU and whatever
else it reports go through the same calls. The Apple-only figures live in
``core.measure.mps_adapter``.
"""

from __future__ import annotations

import os
import platform
import re
from dataclasses import asdict, dataclass

import psutil
import torch

from core.errors import BadInput
from core.measure import mps_adapter


def accelerator_type() -> str | None:
    """The accelerator's device type if one is usable now, else None.

    A CUDA build on a machine with no GPU still names ``cuda`` as its accelerator,
    so availability is always checked.
    """
    acc = getattr(torch, "accelerator", None)
    if acc is not None and hasattr(acc, "current_accelerator"):
        try:
            device = acc.current_accelerator(check_available=True)
        except TypeError:  # torch 2.6 has no check_available
            device = acc.current_accelerator() if acc.is_available() else None
        return device.type if device is not None else None
    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    return None


def accelerator_count() -> int:
    kind = accelerator_type()
    if kind is None:
        return 0
    acc = getattr(torch, "accelerator", None)
    if acc is not None and hasattr(acc, "device_count"):
        return int(acc.device_count())
    return int(getattr(torch, kind).device_count())


def device_strings() -> list[str]:
    """Every device this process can time: cpu, then each accelerator index."""
    kind = accelerator_type()
    if kind is None:
        return ["cpu"]
    if kind == "mps":
        return ["cpu", "mps"]
    return ["cpu", *[f"{kind}:{i}" for i in range(accelerator_count())]]


def parse_device(text: str) -> torch.device:
    """A user's device string, checked against what this machine has."""
    available = device_strings()
    wanted = text.strip().lower()
    kind = accelerator_type()
    if wanted in ("accelerator", "gpu") and kind is not None:
        wanted = available[1]
    if wanted == kind and kind not in (None, "mps"):
        wanted = f"{kind}:0"
    if wanted not in available:
        raise BadInput(
            f"device: '{text}' is not available here; choose from {', '.join(available)}"
        )
    return torch.device(wanted)


def synchronize(device: torch.device | str) -> None:
    """Wait until all work queued on ``device`` has finished. A no-op for the CPU."""
    device = torch.device(device)
    if device.type == "cpu":
        return
    acc = getattr(torch, "accelerator", None)
    if acc is not None and hasattr(acc, "synchronize"):
        acc.synchronize(device)
    else:
        getattr(torch, device.type).synchronize()


def cpu_model_name() -> str:
    if platform.system() == "Darwin":
        return mps_adapter.chip_name()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "CPU"


def accelerator_name(device: torch.device) -> str:
    if device.type == "mps":
        return f"{mps_adapter.chip_name()} GPU"
    module = getattr(torch, device.type, None)
    get_name = getattr(module, "get_device_name", None)
    if get_name is not None:
        try:
            return str(get_name(device.index or 0))
        except (RuntimeError, AssertionError):
            pass
    return str(device)


def memory_info_bytes(device: torch.device) -> tuple[int | None, int | None]:
    """(free, total) memory this device can use, or None where the backend cannot tell.

    On Apple silicon the memory is unified: the total is what Metal recommends the
    GPU may use, and the free part is that less what the driver already holds.
    """
    if device.type == "cpu":
        memory = psutil.virtual_memory()
        return int(memory.available), int(memory.total)
    if device.type == "mps":
        total = mps_adapter.recommended_max_memory_bytes()
        return max(total - mps_adapter.driver_allocated_bytes(), 0), total
    acc = getattr(torch, "accelerator", None)
    try:
        if acc is not None and hasattr(acc, "get_memory_info"):
            free, total = acc.get_memory_info(device)
        else:
            free, total = getattr(torch, device.type).mem_get_info(device)
        return int(free), int(total)
    except (RuntimeError, AttributeError, TypeError):
        return None, None


def cpu_threads() -> int:
    return torch.get_num_threads()


def cpu_core_counts() -> tuple[int, int]:
    """(physical, logical) cores."""
    logical = os.cpu_count() or 1
    return psutil.cpu_count(logical=False) or logical, logical


@dataclass(frozen=True)
class DeviceInfo:
    device: str
    kind: str
    index: int | None
    name: str
    total_memory_bytes: int | None
    free_memory_bytes: int | None
    unified_memory: bool
    threads: int
    torch_version: str
    system_memory_bytes: int
    note: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def describe(device: torch.device | str) -> DeviceInfo:
    device = torch.device(device)
    free, total = memory_info_bytes(device)
    note = ""
    if device.type == "cpu":
        physical, logical = cpu_core_counts()
        name = cpu_model_name()
        note = f"{physical} physical / {logical} logical cores"
        if platform.system() == "Darwin":
            split = mps_adapter.core_split()
            if split is not None:
                note += f"; {split[0]} performance + {split[1]} efficiency cores"
    else:
        name = accelerator_name(device)
    return DeviceInfo(
        device=str(device),
        kind=device.type,
        index=device.index,
        name=name,
        total_memory_bytes=total,
        free_memory_bytes=free,
        unified_memory=device.type == "mps",
        threads=cpu_threads(),
        torch_version=torch.__version__,
        system_memory_bytes=int(psutil.virtual_memory().total),
        note=note,
    )


def describe_all() -> list[DeviceInfo]:
    return [describe(d) for d in device_strings()]


_CPU_NOISE = re.compile(
    r"\((R|TM|tm|r)\)|\bCPU\b|\bProcessor\b|\b\d+-Core\b|@\s*[\d.]+\s*GHz|\bwith Radeon.*$"
)


def short_cpu_name(model: str) -> str:
    """'Intel(R) Xeon(R) Processor' -> 'Intel Xeon': what a chart legend has room for."""
    short = re.sub(r"\s+", " ", _CPU_NOISE.sub(" ", model)).strip()
    return short or model


def machine_label() -> str:
    """A short name for this machine in titles, legends and the store: the same everywhere,
    so that rows measured here are recognised as this machine's."""
    devices = device_strings()
    cpu = short_cpu_name(cpu_model_name())
    if len(devices) > 1:
        return f"{accelerator_name(torch.device(devices[1]))} + {cpu}"
    return cpu


def _accelerator_entry(devices_info: object) -> dict | None:
    """The first non-CPU device in what the caller knows about its devices.

    Accepts one ``DeviceInfo.as_dict()``, a list of them, or a mapping from device
    string to one.
    """
    if not devices_info:
        return None
    if isinstance(devices_info, dict) and ("name" in devices_info or "kind" in devices_info):
        entries = [devices_info]
    elif isinstance(devices_info, dict):
        entries = [
            {"device": key, **value} if isinstance(value, dict) else {"device": key, "name": value}
            for key, value in devices_info.items()
        ]
    else:
        entries = [e for e in devices_info if isinstance(e, dict)]
    for entry in entries:
        kind = entry.get("kind") or str(entry.get("device", "")).split(":")[0]
        if kind and kind != "cpu":
            return {**entry, "kind": kind}
    return None


def machine_fingerprint(devices_info: object = None) -> dict:
    """What a reader needs to judge a run's numbers: OS, CPU, memory, torch, accelerator.

    Describes this machine (``describe_all()``) unless ``devices_info`` says which
    devices to name. The ``machine`` key is a short label for chart legends. No host
    or user names are recorded, because fingerprints travel inside exported files.
    """
    if devices_info is None:
        devices_info = [d.as_dict() for d in describe_all()]
    physical, logical = cpu_core_counts()
    cpu_model = cpu_model_name()
    accelerator = _accelerator_entry(devices_info)
    shown_name = accelerator.get("name") if accelerator else None
    fingerprint = {
        "os": platform.platform(),
        "system": platform.system(),
        "arch": platform.machine(),
        "python": platform.python_version(),
        "cpu_model": cpu_model,
        "cpu_cores_physical": physical,
        "cpu_cores_logical": logical or psutil.cpu_count(),
        "ram_bytes": int(psutil.virtual_memory().total),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "accelerator": shown_name,
        "accelerator_type": accelerator.get("kind") if accelerator else None,
        "accelerator_memory_bytes": (
            accelerator.get("total_memory_bytes") if accelerator else None
        ),
    }
    cpu = short_cpu_name(cpu_model)
    fingerprint["machine"] = f"{shown_name} + {cpu}" if shown_name else cpu
    return fingerprint


# --- memory counters used by the guard -------------------------------------------------


def reset_peak_memory(device: torch.device) -> None:
    if device.type in ("cpu", "mps"):
        return
    acc = getattr(torch, "accelerator", None)
    if acc is not None and hasattr(acc, "reset_peak_memory_stats"):
        acc.reset_peak_memory_stats(device)
    else:
        getattr(torch, device.type).reset_peak_memory_stats(device)


def peak_memory_bytes(device: torch.device) -> int | None:
    """Peak memory of the last point, as well as the backend can tell.

    CUDA-like devices report the allocator's peak since the last reset; MPS reports
    what its driver holds now; the CPU reports this process's resident set.
    """
    try:
        if device.type == "cpu":
            return int(psutil.Process().memory_info().rss)
        if device.type == "mps":
            return mps_adapter.driver_allocated_bytes()
        acc = getattr(torch, "accelerator", None)
        if acc is not None and hasattr(acc, "max_memory_allocated"):
            return int(acc.max_memory_allocated(device))
        return int(getattr(torch, device.type).max_memory_allocated(device))
    except (RuntimeError, AttributeError):
        return None


def empty_cache(device: torch.device) -> None:
    """Give cached blocks back, so one point's leftovers do not count against the next."""
    if device.type == "cpu":
        return
    if device.type == "mps":
        mps_adapter.empty_cache()
        return
    acc = getattr(torch, "accelerator", None)
    if acc is not None and hasattr(acc, "empty_cache"):
        acc.empty_cache()
    else:
        getattr(torch, device.type).empty_cache()
