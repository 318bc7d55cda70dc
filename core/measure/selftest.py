"""The self-test: does this machine's timing path tell the truth? A minute of small checks,
each with a verdict (pass, fail, not applicable) and one line why, that the first user of a
new machine (a Mac, say) runs before trusting any number. ``rows`` gives them in the result
table's shape, so that the report is exported, imported and compared like any run."""

from __future__ import annotations

import math
import re
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

import psutil
import torch

from core import units
from core.measure import ceilings, devices, sweep, timing
from core.measure.workloads import OPS, REGISTRY, Cost, Prepared, Workload
from core.measure.workloads.base import TOLERANCE, relative_error

PASS, FAIL, NOT_APPLICABLE = "pass", "fail", "not applicable"
# How each verdict is stored in the result table's status column.
STATUS = {PASS: "ok", FAIL: "failed", NOT_APPLICABLE: "skipped"}


@dataclass(frozen=True)
class Check:
    name: str
    device: str
    verdict: str  # PASS, FAIL or NOT_APPLICABLE
    why: str  # one line
    seconds: float = 0.0  # the check's own wall time

    @property
    def line(self) -> str:
        return f"{self.name} on {self.device}: {self.verdict} ({self.why})"


# An unsynchronized call of a large op returns once it is queued; past this share of the
# synchronized time, the synchronize did not wait (or the device is not asynchronous).
SYNC_SHARE = 0.25


def check_synchronization(
    device: torch.device | str,
    work: Callable[[], object] | None = None,
    sync: Callable[[torch.device], None] = devices.synchronize,
    clock: Callable[[], float] = time.perf_counter,
    repeats: int = 5,
) -> tuple[str, str]:
    """Time a large op with and without a synchronize: on an asynchronous device the
    unsynchronized time (the launch) must come out far below the synchronized one."""
    device = torch.device(device)
    if device.type == "cpu":
        return NOT_APPLICABLE, "the CPU runs synchronously: a call returns when its work is done"
    if work is None:
        a = torch.randn(4096, 4096, device=device)
        work = lambda: a @ a  # noqa: E731  137 GFLOP: milliseconds anywhere, a launch is µs
    work()  # the first call compiles or loads kernels
    sync(device)
    unsynced_s, synced_s = [], []
    for _ in range(repeats):
        start = clock()
        work()
        unsynced_s.append(clock() - start)
        sync(device)
        start = clock()
        work()
        sync(device)
        synced_s.append(clock() - start)
    unsynced, synced = sorted(unsynced_s)[repeats // 2], sorted(synced_s)[repeats // 2]
    said = f"unsynchronized {units.seconds(unsynced)}, synchronized {units.seconds(synced)}"
    if unsynced <= SYNC_SHARE * synced:
        return PASS, f"{said}: the synchronize waits for the device"
    return FAIL, f"{said}: the synchronize does not wait, so times would count only the launch"


def check_timers(device: torch.device | str) -> tuple[str, str]:
    """Device events against perf_counter around a synchronize, where both are used."""
    device = torch.device(device)
    if device.type == "cpu":
        return NOT_APPLICABLE, "the CPU has no device events; perf_counter is its timer"
    if not hasattr(torch, "Event"):
        return NOT_APPLICABLE, f"torch {torch.__version__} has no torch.Event"
    if device.type == "mps" and not timing._events_usable(device, timing.TimingSettings()):
        return NOT_APPLICABLE, (
            f"MPS events are not used with torch {torch.__version__} (pytorch#162872): "
            "perf_counter around a synchronize times MPS"
        )
    agree, why = timing.events_agree(str(device))
    return (PASS if agree else FAIL), why


# Every workload at a size that takes milliseconds on a laptop CPU.
SMALL_GRIDS = {
    "elementwise": {"op": list(OPS), "size": [1000]},
    "matmul": {"size": [64]},
    # The layouts and precisions a Mac user compares, checked where they may go wrong
    # (channels_last convolution on MPS, pytorch#193349); compiling is left out: too slow.
    "conv2d": {"channels": [8], "size": [16], "variant": ["eager", "channels_last", "autocast"]},
    "attention": {"seq_len": [64], "causal": ["no", "yes"]},
    "inference": {"batch": [1], "image_size": [32]},
    "train": {"batch": [2], "image_size": [32]},  # batch norm needs two images to train
}
_BAD_FLAGS = ("mismatch", "nonfinite")


def check_outputs(device: torch.device | str, point_budget_s: float = 0.05) -> tuple[str, str]:
    """Every workload at a small size through the sweep itself, outputs checked against
    the float64 CPU reference."""
    settings = sweep.SweepSettings(timing=timing.TimingSettings(budget_s=point_budget_s))
    tasks = [
        task
        for name, grid in SMALL_GRIDS.items()
        for task in sweep.plan(REGISTRY[name], grid, [sweep.Backend(str(device))], settings)
    ]
    rows = sweep.measure(tasks, settings).rows
    bad = [
        f"{row['workload']} {row['status']}: {row['message'] or row['flags']}"
        for row in rows
        if row["status"] == "failed" or set(str(row["flags"]).split(",")) & set(_BAD_FLAGS)
    ]
    ok = sum(row["status"] == "ok" for row in rows)
    if bad:
        return FAIL, f"{len(bad)} of {len(rows)} points wrong; first: {units.echo(bad[0], 160)}"
    skipped = len(rows) - ok
    return PASS, f"{ok} points match the float64 CPU reference" + (
        f" ({skipped} skipped: not run on this device)" if skipped else ""
    )


MEMORY_PROBE_BYTES = 64 * 1024**2  # above glibc's largest mmap threshold: fresh CPU pages
# Allocators round blocks up (CUDA to 2 MiB); more than this beyond the size is not it.
MEMORY_SLACK_BYTES = 8 * 1024**2


def judge_memory(
    size_bytes: int,
    before_bytes: int,
    allocated_bytes: int,
    peak_bytes: int | None,
    driver_bytes: int | None,
    exact: bool = True,
) -> tuple[str, str]:
    """Whether the memory figures agree with a tensor of ``size_bytes`` allocated between
    ``before`` and ``allocated``: the allocation shows (exactly, on an accelerator's
    allocator), the peak still counts it after the tensor is gone, and the driver holds at
    least what is allocated."""
    grown = allocated_bytes - before_bytes
    said = f"{units.bytes_(size_bytes)} allocated: the figure grew by {units.bytes_(grown)}"
    if grown < (size_bytes if exact else size_bytes // 2):
        return FAIL, f"{said}, less than allocated"
    if exact and grown > size_bytes + MEMORY_SLACK_BYTES:
        return FAIL, f"{said}, more than allocated"
    if peak_bytes is None:
        return FAIL, f"{said}; no peak figure"
    said += f", peak {units.bytes_(peak_bytes)}"
    if peak_bytes < before_bytes + size_bytes:
        return FAIL, f"{said}: the peak missed the tensor"
    if exact and peak_bytes > before_bytes + size_bytes + MEMORY_SLACK_BYTES:
        return FAIL, f"{said}: the peak counts more than was ever allocated"
    if driver_bytes is not None:
        said += f", driver {units.bytes_(driver_bytes)}"
        if driver_bytes < allocated_bytes:
            return FAIL, f"{said}: the driver holds less than the live tensors"
    return PASS, said


def check_memory(device: torch.device | str, size_bytes: int = MEMORY_PROBE_BYTES):
    """Allocate a known size and read the memory figures the rows carry."""
    device = torch.device(device)
    devices.empty_cache(device)
    devices.synchronize(device)
    process = psutil.Process()
    on_cpu = device.type == "cpu"
    before = process.memory_info().rss if on_cpu else devices.allocated_bytes(device)
    peak = devices.PeakMemory(device)
    x = torch.ones(size_bytes // 4, device=device)  # ones() writes, so every page is touched
    devices.synchronize(device)
    if peak.sample is not None:
        peak.sample()
    allocated = process.memory_info().rss if on_cpu else devices.allocated_bytes(device)
    driver = devices.driver_memory_bytes(device)
    peak_bytes = allocated if on_cpu else None
    del x
    devices.synchronize(device)
    if not on_cpu:
        peak_bytes = peak.peak_bytes()  # after the tensor is gone: the peak must keep it
    devices.empty_cache(device)
    # The CPU's resident set also moves with other threads, so only its growth is judged.
    return judge_memory(size_bytes, before, allocated, peak_bytes, driver, exact=not on_cpu)


# What torch says when an op runs on the CPU instead (the MPS fallback, pytorch#77764).
FALLBACK_WARNING = (
    "The operator 'aten::selftest_op' is not currently supported on the MPS backend and will "
    "fall back to run on the CPU. This may have performance implications."
)


def warning_workload(message: str | None) -> Workload:
    """A tiny workload whose first call warns with ``message`` (None: stays silent)."""

    def build(params, device, dtype):
        x = torch.ones(16, device=device, dtype=dtype)

        calls = []

        def fn():
            if message is not None and not calls:  # once, as torch warns of a fallback
                warnings.warn(message, UserWarning, stacklevel=1)
            calls.append(1)
            return x + 1

        return Prepared(fn=fn)

    cost = Cost(flops=16, bytes_moved=128, memory_bytes=128)
    return Workload("selftest_op", "Self-test op", "", (), lambda p, d: cost, build)


def check_fallback(device: torch.device | str) -> tuple[str, str]:
    """A synthetic op that warns as torch does when an op falls back to the CPU must flag
    its row ``cpu-fallback``; the same op without the warning must not."""
    settings = sweep.SweepSettings(timing=timing.TimingSettings(budget_s=0.01))
    flagged = {}
    for message in (FALLBACK_WARNING, None):
        plan = sweep.plan(warning_workload(message), {}, [sweep.Backend(str(device))], settings)
        row = sweep.measure_task(plan[0], settings)
        flagged[message] = "cpu-fallback" in str(row.get("flags"))
    if flagged[FALLBACK_WARNING] and not flagged[None]:
        return PASS, "a fallback warning in the first call flags the row cpu-fallback"
    if not flagged[FALLBACK_WARNING]:
        return FAIL, "a fallback warning in the first call went unnoticed"
    return FAIL, "a row was flagged cpu-fallback without any warning"


def check_dtypes(device: torch.device | str) -> tuple[str, str]:
    """What the sweep will say of float16 and bfloat16 here, and whether a small product
    in each matches float32's."""
    device = torch.device(device)
    said, wrong = [], []
    a = torch.randn(64, 64, generator=torch.Generator().manual_seed(0))
    for name in ("float16", "bfloat16"):
        support = devices.dtype_support(device, name)[0]
        said.append(f"{name} {support}")
        if support == "unsupported":
            continue  # its rows are skipped with the probe's reason
        dtype = getattr(torch, name)
        try:
            x = a.to(device=device, dtype=dtype)
            error = relative_error((x @ x).cpu(), a.double() @ a.double())
        except (RuntimeError, TypeError, NotImplementedError) as failure:
            wrong.append(f"{name} raised {units.one_line(failure, limit=80)}")
            continue
        if not error <= TOLERANCE[name]:  # NaN fails too
            wrong.append(f"{name} off by {error:.2g}")
    if wrong:
        return FAIL, f"{', '.join(said)}; but {', '.join(wrong)}"
    return PASS, ", ".join(said)


# A trivial op slower than this means a wait in the timing path (or a machine too busy to
# time anything small): real floors are microseconds to tens of microseconds.
FLOOR_MAX_S = 1e-3


def check_floor(device: torch.device | str) -> tuple[str, str]:
    floor_s = timing.dispatch_floor_s(device)
    said = f"a trivial op takes {units.seconds(floor_s)}"
    if not 0 < floor_s < FLOOR_MAX_S:
        return FAIL, f"{said}; expected above 0 and below {units.seconds(FLOOR_MAX_S)}"
    return PASS, said


# Vendor figures per chip: memory bandwidth (bytes/s) and dense matrix peaks (FLOP/s).
# Sources: NVIDIA H100 and H200 Tensor Core GPU datasheets (SXM unless named PCIe; dense
# BF16, the datasheets' headline figures being with sparsity, twice as high); Apple's press
# releases: M1 8-core GPU "2.6 teraflops" (Nov 2020), M2 "100GB/s" and "3.6 teraflops"
# (WWDC, June 2022), M3 "100GB/s" (Oct 2023), M4 "120GB/s" (May 2024). Apple states no M1
# bandwidth (68.25 GB/s is its LPDDR4X-4266 on a 128-bit bus) nor any A18 Pro figure (60 GB/s
# is its LPDDR5X-7500 on a 64-bit bus): both derived from the memory, not published.
PUBLISHED = (
    (r"\bH200\b", "NVIDIA H200", {"bandwidth": 4.8e12, "float32": 67e12, "bfloat16": 989e12}),
    (
        r"\bH100\b.*\bPCIe\b",
        "NVIDIA H100 PCIe",
        {"bandwidth": 2.0e12, "float32": 51e12, "bfloat16": 756e12},
    ),
    (r"\bH100\b", "NVIDIA H100 SXM", {"bandwidth": 3.35e12, "float32": 67e12, "bfloat16": 989e12}),
    (r"^Apple M1( GPU)?$", "Apple M1", {"bandwidth": 68.25e9, "float32": 2.6e12}),
    (r"^Apple M2( GPU)?$", "Apple M2", {"bandwidth": 100e9, "float32": 3.6e12}),
    (r"^Apple M3( GPU)?$", "Apple M3", {"bandwidth": 100e9}),
    (r"^Apple M4( GPU)?$", "Apple M4", {"bandwidth": 120e9}),
    (r"^Apple A18 Pro( GPU)?$", "Apple A18 Pro", {"bandwidth": 60e9}),
)
# Measured above the published figure by more than this share: the clock or the
# synchronize is wrong, since no chip beats its own datasheet.
ABOVE_PUBLISHED_SHARE = 0.1


def published_for(name: str) -> tuple[str, dict[str, float]] | None:
    """(chip, figures) for a device name, or None for a chip not in the table."""
    for pattern, chip, figures in PUBLISHED:
        if re.search(pattern, name.strip()):
            return chip, figures
    return None


def judge_ceilings(chip: str, published: dict[str, float], measured: dict[str, float]):
    """Each measured roof as a share of the published one; above it by more than
    ``ABOVE_PUBLISHED_SHARE`` fails."""
    parts, above = [], []
    for what, figure in published.items():
        rate = measured.get(what, math.nan)
        if not math.isfinite(rate):
            continue
        unit = "B" if what == "bandwidth" else "FLOP"
        part = (
            f"{what} {units.rate(rate, unit)} = {rate / figure:.0%} of {units.rate(figure, unit)}"
        )
        parts.append(part)
        if rate > figure * (1 + ABOVE_PUBLISHED_SHARE):
            above.append(what)
    said = f"{chip}: " + "; ".join(parts)
    if above:
        return FAIL, f"{said}; {', '.join(above)} above the published figure: a missing wait"
    return PASS, said


def check_ceilings(device: torch.device | str, budget_s: float = 0.2) -> tuple[str, str]:
    device = torch.device(device)
    if device.type == "cpu":
        return NOT_APPLICABLE, "published figures are kept for accelerators only"
    name = devices.accelerator_name(device)
    found = published_for(name)
    if found is None:
        return NOT_APPLICABLE, f"unknown chip ({units.echo(name)}): no published figure"
    roofs = ceilings.measure_ceilings(device, budget_s=budget_s)
    measured = {"bandwidth": roofs.bandwidth_bytes_per_s, **roofs.peak_flops_per_s}
    return judge_ceilings(*found, measured)


CHECKS: dict[str, Callable[[torch.device | str], tuple[str, str]]] = {
    "synchronization": check_synchronization,
    "timer agreement": check_timers,
    "output check": check_outputs,
    "memory figures": check_memory,
    "fallback detection": check_fallback,
    "dtype support": check_dtypes,
    "dispatch floor": check_floor,
    "ceilings": check_ceilings,
}


def run(
    device_names: Sequence[str] | None = None,
    on_check: Callable[[Check], None] | None = None,
    checks: dict[str, Callable] | None = None,
) -> list[Check]:
    """Every check on every device (this machine's by default). A check that raises
    fails, with the error as its reason: the self-test itself never crashes."""
    done = []
    for device in device_names or devices.device_strings():
        for name, check in (checks or CHECKS).items():
            start = time.perf_counter()
            try:
                verdict, why = check(device)
            except Exception as error:  # a broken path is what this is here to find
                verdict, why = FAIL, f"raised {units.one_line(error, typed=True, limit=200)}"
            done.append(Check(name, device, verdict, why, time.perf_counter() - start))
            if on_check is not None:
                on_check(done[-1])
    return done


def passed(checks: Sequence[Check]) -> bool:
    return all(check.verdict != FAIL for check in checks)


def rows(checks: Sequence[Check]) -> list[dict]:
    """The checks in the result table's shape (``check`` and ``verdict`` are its parameter
    columns): a pass is an ok row, a fail a failed one, not applicable a skipped one, each
    check's own seconds its median, and the reason its message."""
    stamp = datetime.now(timezone.utc)
    run_id = stamp.strftime("selftest-%Y%m%dT%H%M%S")
    return [
        {
            "run_id": run_id,
            "timestamp": stamp.isoformat(timespec="seconds"),
            "workload": "selftest",
            "check": check.name,
            "verdict": check.verdict,
            "backend": check.device,
            "device": check.device,
            "device_name": _device_name(check.device),
            "dtype": "",
            "median_s": check.seconds,
            "flags": "",
            "status": STATUS[check.verdict],
            "message": check.why,
        }
        for check in checks
    ]


def _device_name(device: str) -> str:
    kind = torch.device(device)
    return devices.cpu_model_name() if kind.type == "cpu" else devices.accelerator_name(kind)
