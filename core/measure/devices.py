"""Which devices this machine has, what they are called, and how to wait for them: generic
over ``torch.accelerator`` (PyTorch 2.6+), so CUDA, MPS, XPU and whatever else it reports go
through the same calls. The Apple-only figures live in ``core.measure.mps_adapter``."""

from __future__ import annotations

import functools
import os
import platform
import re
from dataclasses import asdict, dataclass

import psutil
import torch

from core import units
from core.errors import BadInput
from core.measure import mps_adapter


def accelerator_type() -> str | None:
    """The accelerator's device type if one is usable now, else None (a CUDA build on a
    machine with no GPU still names ``cuda`` as its accelerator)."""
    acc = torch.accelerator
    try:
        device = acc.current_accelerator(check_available=True)
    except TypeError:  # torch 2.6 has no check_available
        device = acc.current_accelerator() if acc.is_available() else None
    return device.type if device is not None else None


def device_strings() -> list[str]:
    """Every device this process can time: cpu, then each accelerator index."""
    kind = accelerator_type()
    if kind in (None, "mps"):  # MPS has one device, named without an index
        return ["cpu"] if kind is None else ["cpu", "mps"]
    return ["cpu", *[f"{kind}:{i}" for i in range(torch.accelerator.device_count())]]


ACCELERATOR_WORDS = ("accel", "accelerator", "gpu")


def parse_device(text: str) -> torch.device:
    """A user's device string, checked against what this machine has."""
    available = device_strings()
    wanted = text.strip().lower()
    kind = accelerator_type()
    plain = wanted in ACCELERATOR_WORDS  # the same link or command on a Mac and a CUDA box
    if plain and kind is not None:
        wanted = available[1]
    if wanted == kind and kind not in (None, "mps"):
        wanted = f"{kind}:0"
    if wanted not in available:
        why = "this machine has no accelerator" if plain else "it is not available here"
        raise BadInput(
            f"device: '{units.echo(text)}': {why}; choose from {', '.join(available)}"
            + ("" if plain else ", or accel for whatever accelerator a machine has")
        )
    return torch.device(wanted)


def synchronize(device: torch.device | str) -> None:
    """Wait until all work queued on ``device`` has finished. A no-op for the CPU."""
    device = torch.device(device)
    if device.type != "cpu":
        torch.accelerator.synchronize(device)


def _backend_call(device: torch.device, name: str, *args, own_name: str | None = None):
    """``torch.accelerator.<name>`` where this torch has it (its memory calls came after
    2.6), else the backend's own ``torch.<type>.<own_name or name>``."""
    if hasattr(torch.accelerator, name):
        return getattr(torch.accelerator, name)(*args)
    return getattr(getattr(torch, device.type), own_name or name)(*args)


def cpu_model_name() -> str:
    if platform.system() == "Darwin":
        return mps_adapter.chip_name()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            found = (ln.split(":", 1)[1] for ln in cpuinfo if ln.startswith("model name"))
            return next(found).strip()
    except (OSError, StopIteration):
        return platform.processor() or platform.machine() or "CPU"


def accelerator_name(device: torch.device) -> str:
    if device.type == "mps":
        return f"{mps_adapter.chip_name()} GPU"
    try:
        return str(getattr(torch, device.type).get_device_name(device.index or 0))
    except (AttributeError, RuntimeError, AssertionError):  # no name to be had
        return str(device)


def memory_info_bytes(device: torch.device) -> tuple[int | None, int | None]:
    """(free, total) memory this device can use, or None where the backend cannot tell.
    On Apple silicon (unified memory) the total is what Metal recommends the GPU may use,
    and the free part is that less what the driver already holds."""
    if device.type == "cpu":
        memory = psutil.virtual_memory()
        return int(memory.available), int(memory.total)
    if device.type == "mps":
        total = mps_adapter.recommended_max_memory_bytes()
        return max(total - mps_adapter.driver_allocated_bytes(), 0), total
    try:
        free, total = _backend_call(device, "get_memory_info", device, own_name="mem_get_info")
        return int(free), int(total)
    except (RuntimeError, AttributeError, TypeError):
        return None, None


def cpu_threads() -> int:
    """The thread count of a fair CPU baseline: the physical performance cores (Apple: the
    P cores, as PyTorch itself uses there), elsewhere the physical cores."""
    split = mps_adapter.core_split() if platform.system() == "Darwin" else None
    return split[0] if split else cpu_core_counts()[0]


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


def describe(device: torch.device | str) -> DeviceInfo:
    device = torch.device(device)
    free, total = memory_info_bytes(device)
    note = ""
    if device.type == "cpu":
        physical, logical = cpu_core_counts()
        note = f"{physical} physical / {logical} logical cores"
        split = mps_adapter.core_split() if platform.system() == "Darwin" else None
        if split is not None:
            note += f"; {split[0]} performance + {split[1]} efficiency cores"
    elif device.type == "mps":
        note = mps_adapter.memory_note()
    return DeviceInfo(
        device=str(device),
        kind=device.type,
        index=device.index,
        name=cpu_model_name() if device.type == "cpu" else accelerator_name(device),
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
    return re.sub(r"\s+", " ", _CPU_NOISE.sub(" ", model)).strip() or model


def _label(accelerator: str | None, cpu_model: str) -> str:
    cpu = short_cpu_name(cpu_model)
    return f"{accelerator} + {cpu}" if accelerator else cpu


def machine_label() -> str:
    """A short name for this machine in titles, legends and the store: the same everywhere,
    so that rows measured here are recognised as this machine's."""
    devices = device_strings()
    accelerator = accelerator_name(torch.device(devices[1])) if len(devices) > 1 else None
    return _label(accelerator, cpu_model_name())


def _accelerator_entry(devices_info: object) -> dict:
    """The first non-CPU device in one ``DeviceInfo`` as a dict, a list of them, or a
    mapping from device string to one (or to its name); {} where there is none."""
    if isinstance(devices_info, dict) and ("name" in devices_info or "kind" in devices_info):
        devices_info = [devices_info]
    elif isinstance(devices_info, dict):
        devices_info = [
            {"device": key, **(value if isinstance(value, dict) else {"name": value})}
            for key, value in devices_info.items()
        ]
    for entry in (e for e in devices_info or [] if isinstance(e, dict)):
        kind = entry.get("kind") or str(entry.get("device", "")).split(":")[0]
        if kind and kind != "cpu":
            return {**entry, "kind": kind}
    return {}


def machine_fingerprint(devices_info: object = None) -> dict:
    """What a reader needs to judge a run's numbers: OS, CPU, memory, torch, accelerator,
    of this machine's devices or those ``devices_info`` names, and a short label for legends
    (``machine``). No host or user names: fingerprints travel inside exported files."""
    if devices_info is None:
        devices_info = [asdict(info) for info in describe_all()]
    physical, logical = cpu_core_counts()
    cpu_model = cpu_model_name()
    accelerator = _accelerator_entry(devices_info)
    return {
        "os": platform.platform(),
        "system": platform.system(),
        "arch": platform.machine(),
        "python": platform.python_version(),
        "cpu_model": cpu_model,
        "cpu_cores_physical": physical,
        "cpu_cores_logical": logical,
        "ram_bytes": int(psutil.virtual_memory().total),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "accelerator": accelerator.get("name"),
        "accelerator_type": accelerator.get("kind"),
        "accelerator_memory_bytes": accelerator.get("total_memory_bytes"),
        "machine": _label(accelerator.get("name"), cpu_model),
    }


def reset_peak_memory(device: torch.device) -> None:
    if device.type not in ("cpu", "mps"):
        _backend_call(device, "reset_peak_memory_stats", device)


class PeakMemory:
    """The peak memory of one point, from its start. Allocators with a peak counter report
    theirs; MPS has none, and its driver figure holds every cache, far above the real peak
    (11,322 MiB against about 1,500, karpathy/nanochat#838), so there the allocated memory
    is sampled after every call. The CPU reports its resident set at the end."""

    def __init__(self, device: torch.device) -> None:
        self.device, self.sampled_bytes = device, 0
        reset_peak_memory(device)
        self.sample = self._sample if device.type == "mps" else None
        if self.sample is not None:
            self.sample()

    def _sample(self) -> None:
        self.sampled_bytes = max(self.sampled_bytes, mps_adapter.current_allocated_bytes())

    def peak_bytes(self) -> int | None:
        try:
            if self.device.type == "cpu":
                return int(psutil.Process().memory_info().rss)
            if self.device.type == "mps":
                self._sample()
                return self.sampled_bytes
            return int(_backend_call(self.device, "max_memory_allocated", self.device))
        except (RuntimeError, AttributeError):
            return None


def driver_memory_bytes(device: torch.device) -> int | None:
    """What the Metal driver holds for this process, caches included (MPS only)."""
    try:
        return mps_adapter.driver_allocated_bytes() if device.type == "mps" else None
    except (RuntimeError, AttributeError):
        return None


def empty_cache(device: torch.device) -> None:
    """Give cached blocks back, so one point's leftovers do not count against the next."""
    if device.type == "mps":
        mps_adapter.empty_cache()
    elif device.type != "cpu":
        _backend_call(device, "empty_cache")


def allocated_bytes(device: torch.device) -> int | None:
    """Memory held by live tensors on an accelerator now; None for the CPU."""
    if device.type == "cpu":
        return None
    if device.type == "mps":
        return mps_adapter.current_allocated_bytes()
    return int(_backend_call(device, "memory_allocated", device))


# x86 flags of the instructions that compute in these dtypes; without them a CPU converts
# to float32 and back.
_CPU_NATIVE_FLAGS = {
    "bfloat16": {"avx512_bf16", "amx_bf16"},
    "float16": {"avx512_fp16", "amx_fp16"},
}


def _cpu_flags() -> set[str] | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            line = next(ln for ln in cpuinfo if ln.startswith("flags"))
    except (OSError, StopIteration):  # not Linux on x86: no claim either way
        return None
    return set(line.split(":", 1)[1].split())


def _runs_tiny_op(device: torch.device, dtype: torch.dtype) -> None:
    """A small matrix product in ``dtype``; raises where the device cannot do it."""
    x = torch.ones(8, 8, device=device, dtype=dtype)
    (x @ x).sum().item()


@functools.cache
def _dtype_support(device: str, dtype_name: str) -> tuple[str, str]:
    device_ = torch.device(device)
    dtype = getattr(torch, dtype_name)
    try:
        _runs_tiny_op(device_, dtype)
    except (RuntimeError, TypeError, NotImplementedError) as error:
        return "unsupported", f"{dtype_name} does not run on {device}: {units.one_line(error)}"
    emulated = False
    where = device
    if device_.type == "mps":
        where = mps_adapter.chip_name()
        emulated = dtype_name == "bfloat16" and mps_adapter.bfloat16_emulated(where)
    elif device_.type == "cuda" and dtype_name == "bfloat16":
        emulated = not torch.cuda.is_bf16_supported(including_emulation=False)
    elif device_.type == "cpu":
        flags = _cpu_flags()
        emulated = flags is not None and not flags & _CPU_NATIVE_FLAGS[dtype_name]
        where = "this CPU"
    if emulated:
        return "emulated", (
            f"{dtype_name} is emulated on {where} (computed in float32 and converted): "
            "expect no speed-up over float32"
        )
    return "native", ""


def dtype_support(device: torch.device | str, dtype: torch.dtype | str) -> tuple[str, str]:
    """("native" | "emulated" | "unsupported", a note saying so): probed once per device
    and dtype with a tiny op, and judged from the chip where a dtype runs but is emulated
    (float32 and float64 are taken as native; the MPS float64 gap is ``skip_reason``'s)."""
    name = str(dtype).removeprefix("torch.")
    if name not in _CPU_NATIVE_FLAGS:
        return "native", ""
    return _dtype_support(str(torch.device(device)), name)
