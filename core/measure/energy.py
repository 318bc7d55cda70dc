"""Energy meters that need no special rights, and the energy of one point's calls.

- CUDA devices: NVML's total energy counter (``nvmlDeviceGetTotalEnergyConsumption``, in
  mJ, Volta and newer), from the ``nvidia-ml-py`` package (module ``pynvml``) where it is
  installed. It counts the whole GPU board.
- The CPU on Linux: RAPL's package counters (/sys/class/powercap/intel-rapl:N/energy_uj),
  which count the whole CPU package, other programs' work included. Linux made them
  root-only in 5.10 (CVE-2020-8694), so they are often "not readable here".
- macOS (CPU and MPS): no counter is readable without root: "not available here".

Counters update coarsely (NVML every 20-100 ms, RAPL about every millisecond), so energy
per call is only reported when the calls it covers took at least ``MIN_SPAN_S``.
"""

from __future__ import annotations

import functools
import glob
import math
import platform
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# With a counter that moves every 100 ms at worst, half a second reads to about ±20%, and
# the usual 20 ms to ±4%: shorter spans are "too short to read".
MIN_SPAN_S = 0.5
RAPL_ROOT = "/sys/class/powercap"
_RAPL_PACKAGE = re.compile(r"intel-rapl:\d+$")  # a package; intel-rapl:0:1 is a sub-zone
MACOS_WHY = "not available here (macOS has no energy counter readable without root)"


def _read_text(path: str) -> str:
    """A sysfs file's text; raises OSError (PermissionError when root-only). Tests substitute it."""
    with open(path, encoding="ascii") as handle:
        return handle.read()


def _glob(pattern: str) -> list[str]:
    return sorted(glob.glob(pattern))


def _system() -> str:
    return platform.system()


def _import_pynvml():
    import pynvml  # from the nvidia-ml-py package; optional

    return pynvml


@functools.cache
def nvml() -> Any | None:
    """The ``pynvml`` module, initialised once per process; None without the package or a
    driver. Machine state reads GPU clocks and the driver version through it too."""
    try:
        module = _import_pynvml()
        module.nvmlInit()
        return module
    except Exception:  # no package, no driver, no GPU: NVML is simply not here
        return None


def nvml_why_not() -> str:
    try:
        _import_pynvml()
    except Exception:
        return "not available (the nvidia-ml-py package is not installed)"
    return "not available (NVML did not start: no NVIDIA driver?)"


@dataclass(frozen=True)
class Meter:
    """One energy counter: ``read()`` gives an opaque reading (None when it fails) and
    ``joules(start, end)`` the energy between two readings. Without a counter, ``method``
    is empty and ``why_not`` says why, in words."""

    method: str = ""
    why_not: str = ""
    read_counter: Callable[[], Any] | None = None
    between: Callable[[Any, Any], float] | None = None

    @property
    def available(self) -> bool:
        return self.read_counter is not None

    def read(self) -> Any | None:
        if self.read_counter is None:
            return None
        try:
            return self.read_counter()
        except Exception:  # a meter is decoration; a failed read only loses the energy
            return None

    def joules(self, start: Any, end: Any) -> float:
        if start is None or end is None or self.between is None:
            return math.nan
        try:
            return float(self.between(start, end))
        except Exception:
            return math.nan


def _none(why: str) -> Meter:
    return Meter(why_not=why)


@functools.cache
def meter_for(device: str) -> Meter:
    """The meter that counts ``device``'s energy here, probed once per device and process."""
    import torch  # not at import time: the report and machine state need no torch

    kind = torch.device(device).type
    if kind == "cuda":
        return _nvml_meter(torch.device(device))
    if _system() == "Darwin":
        return _none(MACOS_WHY)
    if kind == "cpu":
        return _rapl_meter() if _system() == "Linux" else _none("not available here")
    return _none(f"not available here (no energy counter known for {kind})")


def _nvml_handle(module, device):
    import torch

    index = device.index if device.index is not None else 0
    try:  # NVML counts every GPU; CUDA_VISIBLE_DEVICES may renumber torch's, the UUID does not
        uuid = torch.cuda.get_device_properties(index).uuid
        return module.nvmlDeviceGetHandleByUUID(f"GPU-{uuid}")
    except Exception:
        return module.nvmlDeviceGetHandleByIndex(index)


def _nvml_meter(device) -> Meter:
    module = nvml()
    if module is None:
        return _none(nvml_why_not())
    try:
        handle = _nvml_handle(module, device)
        module.nvmlDeviceGetTotalEnergyConsumption(handle)
    except Exception as error:
        name = type(error).__name__
        if "NotSupported" in name or "not supported" in str(error).lower():
            return _none("not supported by this GPU (NVML's energy counter needs Volta or newer)")
        return _none(f"not readable here (NVML: {str(error) or name})")
    return Meter(
        method="nvml",
        read_counter=lambda: module.nvmlDeviceGetTotalEnergyConsumption(handle),
        between=lambda start, end: (end - start) / 1e3 if end >= start else math.nan,  # mJ
    )


def _rapl_meter() -> Meter:
    zones = [z for z in _glob(f"{RAPL_ROOT}/intel-rapl:*") if _RAPL_PACKAGE.search(z)]
    if not zones:
        return _none("not available here (no RAPL counter on this machine)")
    try:
        ranges = [int(_read_text(f"{z}/max_energy_range_uj")) for z in zones]
        [int(_read_text(f"{z}/energy_uj")) for z in zones]
    except PermissionError:
        return _none("not readable here (RAPL is root-only since Linux 5.10)")
    except (OSError, ValueError) as error:
        return _none(f"not readable here (RAPL: {type(error).__name__})")

    def read() -> tuple[int, ...]:
        return tuple(int(_read_text(f"{z}/energy_uj")) for z in zones)

    def between(start: tuple[int, ...], end: tuple[int, ...]) -> float:
        # Each counter wraps at its range (a few minutes of a busy package): once is fine.
        steps = zip(start, end, ranges, strict=True)
        return sum((e - s) % (r + 1) if r > 0 else e - s for s, e, r in steps) / 1e6

    return Meter(method="rapl package", read_counter=read, between=between)


class Span:
    """The energy of one ``timing.measure``'s calls, read through its ``after_call`` hook:
    the first hook (right after the first call, which may compile, and its synchronize)
    reads the meter, and ``result`` reads it again once measuring is over. Every call of
    the closure in between counts: warm-up, launch tries, repeats (twice each, pipelined).
    The hook itself adds no time to a timed call: after_call runs outside the interval."""

    def __init__(self, meter: Meter, then: Callable[[], None] | None = None) -> None:
        self.meter, self.then = meter, then
        self.hooks = 0
        self.start: Any = None
        self.start_s = math.nan

    def after_call(self) -> None:
        if self.then is not None:
            self.then()
        self.hooks += 1
        if self.hooks == 1 and self.meter.available:
            self.start, self.start_s = self.meter.read(), time.perf_counter()

    def calls(self, measurement) -> int:
        """The closure's calls after the first, as ``timing.measure`` makes them."""
        from core.measure import timing

        per_hook = 2 if measurement.timer == "events-pipelined" else 1
        launched = measurement.warmup_s and math.isfinite(measurement.launch_s)
        tries = timing.launch_tries(min(measurement.warmup_s)) if launched else 0
        return max(self.hooks - 1, 0) * per_hook + tries

    def result(self, measurement) -> dict:
        """``energy_j`` (joules per call, NaN when not read) and ``energy_method``."""
        meter = self.meter
        if not meter.available:
            return {"energy_j": math.nan, "energy_method": meter.why_not}
        end, span_s = meter.read(), time.perf_counter() - self.start_s
        calls = self.calls(measurement)
        if not span_s >= MIN_SPAN_S:
            said = f"{span_s:.2g} s" if math.isfinite(span_s) else "nothing"
            why = f"too short to read ({said} timed; {meter.method} needs {MIN_SPAN_S:g} s)"
            return {"energy_j": math.nan, "energy_method": why}
        joules = meter.joules(self.start, end)
        if not (math.isfinite(joules) and joules > 0 and calls > 0):
            return {"energy_j": math.nan, "energy_method": f"{meter.method}: counter unreadable"}
        extras = [f"{calls} calls in {span_s:.2g} s"]
        if measurement.guard_s > 0:
            extras.append("spin kernels before each call included")
        if measurement.cold_cache:
            extras.append("cache flushes included")
        return {"energy_j": joules / calls, "energy_method": f"{meter.method}: {'; '.join(extras)}"}


def method_name(text: object) -> str:
    """'nvml' of 'nvml: 412 calls in 0.93 s'; the whole text when it says why not."""
    text = text if isinstance(text, str) else ""
    return text.split(":", 1)[0] if text.startswith(("nvml", "rapl")) else text


def note(frame) -> str:
    """One line: how each backend's energy was read, or why not, e.g. 'Energy: cuda nvml;
    cpu (8 threads) not readable here (...)'. Empty for a table without the column."""
    if "energy_method" not in frame or frame.empty:
        return ""
    found: dict[str, str] = {}
    for backend, method in zip(frame["backend"], frame["energy_method"], strict=True):
        if isinstance(method, str) and method:
            found.setdefault(str(backend), method_name(method))
    return ("Energy: " + "; ".join(f"{b} {m}" for b, m in found.items())) if found else ""
