"""What changes a laptop's numbers while its fingerprint stays the same: the power source,
low-power modes, thermal pressure, Rosetta, and the versions under torch. Each is read
without special rights and cheaply (a few file reads, on macOS three ``pmset`` calls);
what cannot change within a process is read once. Every OS call goes through the small
functions below, which tests substitute; any failure gives None or "not reported", never
an exception.
"""

from __future__ import annotations

import functools
import glob
import platform
import re
import subprocess

from core.measure import energy

# A pmset or sysctl call takes a few milliseconds; one that hangs must not hold up a run.
COMMAND_TIMEOUT_S = 1.0
LOW_POWER_PROFILES = ("low-power", "quiet", "cool")
# NVML's clocks event (throttle) reasons, bit by bit; GPU idle and the applications
# clock setting are not a slowdown.
GPU_REASONS = {
    0x4: "power cap",
    0x8: "hardware slowdown",
    0x10: "sync boost",
    0x20: "software thermal slowdown",
    0x40: "hardware thermal slowdown",
    0x80: "power brake",
    0x100: "display clock setting",
}
GPU_THERMAL_REASONS = 0x8 | 0x40 | 0x80 | 0x20
NOT_REPORTED = "not reported"


def _run(command: list[str]) -> str | None:
    """A command's output, or None when it fails, is missing or takes too long."""
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    return done.stdout if done.returncode == 0 else None


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except (OSError, ValueError):
        return None


def _glob(pattern: str) -> list[str]:
    return sorted(glob.glob(pattern))


def _system() -> str:
    return platform.system()


def _mac_version() -> str:
    return platform.mac_ver()[0]


def _battery():
    import psutil

    return psutil.sensors_battery()


def _nvml():
    return energy.nvml()


def _safe(read, default=None):
    try:
        return read()
    except Exception:  # a state is decoration: it never fails a run
        return default


# -- power


def power() -> tuple[str, float | None]:
    """("ac" | "battery" | "unknown", battery percent or None)."""
    battery = _safe(_battery)
    if battery is not None:
        plugged = getattr(battery, "power_plugged", None)
        source = "unknown" if plugged is None else "ac" if plugged else "battery"
        percent = getattr(battery, "percent", None)
        return source, float(percent) if percent is not None else None
    system = _system()
    if system == "Darwin":
        return _pmset_battery(_run(["pmset", "-g", "batt"]) or "")
    if system == "Linux":
        # No battery that psutil sees: a desktop or a server runs on mains, unless the
        # power-supply class says otherwise.
        kinds = [(_read(f"{p}/type") or "").strip() for p in _glob("/sys/class/power_supply/*")]
        return ("unknown" if "Battery" in kinds else "ac"), None
    return "unknown", None


def _pmset_battery(text: str) -> tuple[str, float | None]:
    source = "unknown"
    if "'AC Power'" in text:
        source = "ac"
    elif "'Battery Power'" in text:
        source = "battery"
    found = re.search(r"(\d+(?:\.\d+)?)%", text)
    return source, float(found.group(1)) if found else None


# -- low-power modes


def low_power_mode() -> bool | None:
    """macOS Low Power Mode (``pmset -g``: ``lowpowermode 1``, or ``powermode 1`` on Macs
    with several modes); None elsewhere or when unreadable."""
    if _system() != "Darwin":
        return None
    text = _run(["pmset", "-g"])
    if text is None:
        return None
    found = re.search(r"^\s*(?:low)?powermode\s+(\d+)", text, re.MULTILINE)
    return None if found is None else found.group(1) == "1"


def platform_profile() -> str | None:
    """Linux's ACPI platform profile (low-power, balanced, performance...), where present."""
    if _system() != "Linux":
        return None
    text = _read("/sys/firmware/acpi/platform_profile")
    return text.strip() or None if text is not None else None


# -- heat


def thermal() -> tuple[str, bool | None]:
    """(words, whether the OS reports thermal pressure now)."""
    system = _system()
    if system == "Darwin":
        return _pmset_therm(_run(["pmset", "-g", "therm"]))
    if system == "Linux":
        return _linux_thermal()
    return NOT_REPORTED, None


def _pmset_therm(text: str | None) -> tuple[str, bool | None]:
    if text is None:
        return NOT_REPORTED, None
    said, pressure = [], False
    if speed := re.search(r"CPU_Speed_Limit\s*=\s*(\d+)", text):
        limit = int(speed.group(1))
        pressure |= limit < 100
        said.append(f"CPU speed limited to {limit}%" if limit < 100 else "CPU at full speed")
    if level := re.search(r"thermal warning level\D{0,12}(\d+)", text, re.IGNORECASE):
        value = int(level.group(1))
        pressure |= value > 0
        said.append(f"thermal warning level {value}" if value else "no thermal warning")
    elif re.search(r"no thermal warning level has been recorded", text, re.IGNORECASE):
        said.append("no thermal warning")
    if not said:
        return NOT_REPORTED, None
    return ", ".join(said), pressure


def _linux_thermal() -> tuple[str, bool | None]:
    said, pressure = [], None
    hottest = None
    for zone in _glob("/sys/class/thermal/thermal_zone*"):
        temp = _int(_read(f"{zone}/temp"))
        if temp is None:
            continue
        name = (_read(f"{zone}/type") or "").strip() or zone.rsplit("/", 1)[-1]
        if hottest is None or temp > hottest[0]:
            hottest = (temp, name)
        trips = [
            _int(_read(path.replace("_type", "_temp")))
            for path in _glob(f"{zone}/trip_point_*_type")
            if (_read(path) or "").strip() in ("passive", "hot")
        ]
        limits = [t for t in trips if t]
        if limits:
            pressure = bool(pressure) or temp >= min(limits)
    if hottest is not None:
        said.append(f"hottest sensor {hottest[0] / 1000:.0f} °C ({hottest[1]})")
    throttles = _glob("/sys/devices/system/cpu/cpu*/thermal_throttle/*_throttle_count")
    counts = [c for c in (_int(_read(p)) for p in throttles) if c is not None]
    if counts:  # counted since boot: history, not the state now
        said.append(f"CPU throttled {max(counts)} times since boot")
    return (", ".join(said) or NOT_REPORTED), pressure


def _int(text: str | None) -> int | None:
    try:
        return int(str(text).strip())
    except (TypeError, ValueError):
        return None


def gpu_clocks() -> tuple[str | None, bool | None]:
    """NVIDIA GPUs' clock slowdown reasons now, in words, and whether any is thermal; None
    without NVML."""
    module = _nvml()
    if module is None:
        return None, None
    read = getattr(module, "nvmlDeviceGetCurrentClocksEventReasons", None) or getattr(
        module, "nvmlDeviceGetCurrentClocksThrottleReasons", None
    )
    parts, thermal_now = [], False
    for index in range(module.nvmlDeviceGetCount()):
        mask = int(read(module.nvmlDeviceGetHandleByIndex(index)))
        names = [name for bit, name in GPU_REASONS.items() if mask & bit]
        thermal_now |= bool(mask & GPU_THERMAL_REASONS)
        parts.append(f"GPU {index}: {', '.join(names) or 'no slowdown'}")
    if not parts:
        return None, None
    text = parts[0].split(": ", 1)[1] if len(parts) == 1 else "; ".join(parts)
    return text, thermal_now


# -- what cannot change within a process


@functools.cache
def rosetta() -> bool | None:
    """Whether this process runs translated by Rosetta 2 (x86-64 Python on Apple silicon)."""
    if _system() != "Darwin":
        return False
    text = _run(["sysctl", "-n", "sysctl.proc_translated"])
    # Intel Macs lack the key, and nothing runs translated there.
    return None if text is None else text.strip() == "1"


@functools.cache
def versions() -> dict:
    import torch

    mac = _mac_version() if _system() == "Darwin" else ""
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "os": platform.platform(),
        "macos": mac or None,
        "nvidia_driver": _nvidia_driver(),
    }


def _nvidia_driver() -> str | None:
    module = _nvml()
    if module is not None:
        version = _safe(module.nvmlSystemGetDriverVersion)
        if version:
            return version.decode() if isinstance(version, bytes) else str(version)
    text = _read("/proc/driver/nvidia/version") or ""
    found = re.search(r"Kernel Module(?:\s+for\s+\S+)?\s+(\d+(?:\.\d+)+)", text)
    return found.group(1) if found else None


def clear_cache() -> None:
    """Forget what is read once (for tests that substitute the OS)."""
    rosetta.cache_clear()
    versions.cache_clear()


def snapshot() -> dict:
    """This machine's state now, as plain JSON values (stored with every run)."""
    source, percent = _safe(power, ("unknown", None))
    thermal_text, pressure = _safe(thermal, (NOT_REPORTED, None))
    gpu_text, gpu_thermal = _safe(gpu_clocks, (None, None))
    return {
        "power_source": source,
        "battery_percent": percent,
        "low_power_mode": _safe(low_power_mode),
        "platform_profile": _safe(platform_profile),
        "thermal": thermal_text,
        "thermal_pressure": pressure,
        "gpu_clocks": gpu_text,
        "gpu_thermal": gpu_thermal,
        "rosetta": _safe(rosetta),
        **_safe(versions, {}),
    }


# -- in words


def describe(state: dict | None) -> list[tuple[str, str]]:
    """The state as (what, value) lines for a machine card; unknown fields left out."""
    state = state if isinstance(state, dict) else {}
    lines = [("Power", _power_words(state))]
    if (low := state.get("low_power_mode")) is not None:
        lines.append(("Low Power Mode", "on" if low else "off"))
    if profile := state.get("platform_profile"):
        lines.append(("Platform profile", str(profile)))
    lines.append(("Thermal", str(state.get("thermal") or NOT_REPORTED)))
    if gpu := state.get("gpu_clocks"):
        lines.append(("GPU clocks", str(gpu)))
    if (translated := state.get("rosetta")) or (translated is not None and state.get("macos")):
        lines.append(("Rosetta", "yes: x86-64 Python, translated" if translated else "no"))
    names = {"macos": "macOS", "nvidia_driver": "NVIDIA driver", "os": "OS",
             "python": "Python", "torch": "PyTorch"}  # fmt: skip
    lines += [(label, str(state[key])) for key, label in names.items() if state.get(key)]
    return lines


def _power_words(state: dict) -> str:
    source, percent = state.get("power_source"), state.get("battery_percent")
    battery = f"{percent:.0f}%" if isinstance(percent, (int, float)) else None
    if source == "battery":
        return f"on battery ({battery})" if battery else "on battery"
    if source == "ac":
        return f"on AC power (battery {battery})" if battery else "on AC power"
    return NOT_REPORTED


def marks(state: dict | None) -> list[str]:
    """A few words each for what held a run back, for lists of runs: "on battery (45%)"."""
    state = state if isinstance(state, dict) else {}
    found = [_power_words(state)] if state.get("power_source") == "battery" else []
    found += ["Low Power Mode"] if state.get("low_power_mode") else []
    profile = state.get("platform_profile")
    found += [f"{profile} profile"] if profile in LOW_POWER_PROFILES else []
    found += ["thermal pressure"] if state.get("thermal_pressure") else []
    found += ["GPU clocks held back"] if state.get("gpu_thermal") else []
    return found + (["Rosetta"] if state.get("rosetta") else [])


def warnings(state: dict | None) -> list[str]:
    """One line each for what makes a long run's numbers slower than this machine can do."""
    state = state if isinstance(state, dict) else {}
    found = []
    if state.get("power_source") == "battery":
        level = _power_words(state).removeprefix("on battery").strip()
        found.append(
            f"On battery power{' ' + level if level else ''}: laptops often slow down on "
            "battery, so plug in for a long run whose numbers you will compare."
        )
    if state.get("low_power_mode"):
        found.append(
            "Low Power Mode is on: the CPU and GPU run slower. Turn it off (System Settings, "
            "Battery) for a long run."
        )
    if (profile := state.get("platform_profile")) in LOW_POWER_PROFILES:
        found.append(
            f"The platform profile is '{profile}': the CPU is held back. Choose 'balanced' or "
            "'performance' for a long run."
        )
    if state.get("thermal_pressure"):
        found.append(
            f"The machine reports thermal pressure ({state.get('thermal')}): numbers will be "
            "slower than a cool machine's. Let it cool down first."
        )
    if state.get("gpu_thermal"):
        found.append(f"The GPU's clocks are held back ({state.get('gpu_clocks')}).")
    if state.get("rosetta"):
        found.append(
            "Python runs translated by Rosetta (x86-64 on Apple silicon): numbers are far from "
            "native. Install an arm64 Python."
        )
    return found
