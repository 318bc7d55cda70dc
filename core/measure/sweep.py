"""A grid of parameter values times a list of backends, measured into a tidy DataFrame."""

from __future__ import annotations

import itertools
import json
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone

import pandas as pd
import torch

from core.errors import BadInput
from core.keep import results
from core.measure import ceilings, devices, locks, memory, timing
from core.measure.workloads import Workload, dtype_name, parse_dtype
from core.measure.workloads.base import TOLERANCE, relative_error, skip_reason


@dataclass(frozen=True)
class Backend:
    """A device, and for the CPU the intra-op thread count it runs with."""

    device: str
    threads: int | None = None  # None: torch's default for this process

    @property
    def resolved_threads(self) -> int:
        return self.threads or torch.get_num_threads()

    @property
    def label(self) -> str:
        if torch.device(self.device).type == "cpu":
            count = self.resolved_threads
            return f"cpu ({count} thread{'s' if count != 1 else ''})"
        return self.device


def default_backends(threads: int | None = None) -> list[Backend]:
    """CPU against every accelerator; with none, one CPU thread against all of them."""
    found = devices.device_strings()
    if len(found) > 1:
        return [Backend("cpu", threads), *[Backend(d) for d in found[1:]]]
    all_threads = threads or torch.get_num_threads()
    if all_threads == 1:
        return [Backend("cpu", 1)]
    return [Backend("cpu", 1), Backend("cpu", all_threads)]


def parse_backends(text: str, threads: int | None = None) -> list[Backend]:
    """'cpu,cuda' -> backends; 'cpu:1,cpu:8' gives two CPU backends with 1 and 8 threads."""
    chosen = []
    for part in [p.strip() for p in str(text).split(",") if p.strip()]:
        if part.lower().startswith("cpu:"):
            count = part.split(":", 1)[1]
            if not count.isdigit() or int(count) < 1:
                raise BadInput(f"devices: '{part}' needs a thread count of 1 or more, e.g. cpu:4")
            chosen.append(Backend("cpu", int(count)))
        else:
            device = devices.parse_device(part)
            chosen.append(Backend(str(device), threads if device.type == "cpu" else None))
    if not chosen:
        raise BadInput("devices: none given; e.g. cpu,cuda or cpu,mps")
    # 'cpu,cpu' or 'cpu,cpu:8' on an 8-thread default would time the same thing twice.
    return list({backend.label: backend for backend in chosen}.values())


@dataclass
class SweepSettings:
    """Everything besides the grid that shapes a sweep's numbers."""

    dtype: str = "float32"
    timing: timing.TimingSettings = field(default_factory=timing.TimingSettings)
    memory_budget_bytes: int | None = None  # None: each device's safe default
    sweep_budget_s: float | None = None
    check_outputs: bool = True

    def as_dict(self) -> dict:
        return {
            "dtype": self.dtype,
            "memory_budget_bytes": self.memory_budget_bytes,
            "sweep_budget_s": self.sweep_budget_s,
            "check_outputs": self.check_outputs,
            **self.timing.as_dict(),
        }


def expand_grid(workload: Workload, grid: dict[str, list]) -> list[dict]:
    """Every combination of the given values, defaults for the rest, each value checked."""
    for name in grid:
        workload.param(name)
    axes = []
    for param in workload.params:
        values = grid.get(param.name) or [param.default]
        axes.append([param.parse(v) for v in values])
    return [
        dict(zip(workload.param_names, combo, strict=True)) for combo in itertools.product(*axes)
    ]


# Building models and checking them against a float64 CPU reference costs more than
# the timed calls themselves for small models.
SETUP_S = {"train": 0.6, "inference": 0.4}
DEFAULT_SETUP_S = 0.02


def estimate_point_seconds(
    workload: Workload, params: dict, backend: Backend, settings: SweepSettings
) -> float:
    """Rough seconds to measure one point on one backend, as a laptop CPU would take it.

    Used to decide whether to run on every change and what fits a time budget: set-up,
    the first call, the minimum warm-up and repeats, then repeats up to the point
    budget. A point the memory guard will refuse costs nothing.
    """
    try:
        cost = workload.cost(params, parse_dtype(settings.dtype))
    except Exception:  # a cost that cannot be computed fails fast when measured
        return DEFAULT_SETUP_S
    budget = settings.memory_budget_bytes
    if budget is None:
        budget = memory.default_budget_bytes(backend.device)
    if memory.refusal(cost.memory_bytes, budget, backend.device):
        return 0.0
    call_s = cost.flops / 50e9 + cost.bytes_moved / 10e9
    timing_settings = settings.timing
    calls = 1 + timing_settings.min_warmup + timing_settings.min_repeats
    if timing_settings.pipelined:
        calls = 2 * calls - 1
    setup_s = SETUP_S.get(workload.name, DEFAULT_SETUP_S)
    return setup_s + calls * call_s + min(timing_settings.budget_s, 40 * call_s)


def new_run_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]


# torch.OutOfMemoryError is newer than some torch versions this supports.
_OUT_OF_MEMORY = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)
_SKIP_MARKERS = ("not implemented for", "not supported", "unsupported", "does not support")


def measure_point(
    workload: Workload,
    params: dict,
    backend: Backend,
    settings: SweepSettings,
    run_id: str = "",
    on_wait: Callable[[str], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> dict:
    """One row: measured, or skipped, failed or refused with a message saying why."""
    device = torch.device(backend.device)
    dtype = parse_dtype(settings.dtype)
    row = {
        "run_id": run_id,
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "workload": workload.name,
        **params,
        "backend": backend.label,
        "device": str(device),
        "device_name": _device_name(device),
        "dtype": dtype_name(dtype),
        "threads": backend.resolved_threads,
        "cold_cache": settings.timing.cold_cache and device.type != "cpu",  # CPUs are not flushed
        "flags": "",
        "message": "",
    }
    reason = skip_reason(device.type, dtype) or workload.unsupported(params, device.type, dtype)
    if reason:
        return {**row, "status": "skipped", "message": reason}
    try:
        cost = workload.cost(params, dtype)
    except Exception as error:  # a cost that cannot be computed is this point's failure only
        return {**row, "status": "failed", "message": f"cost estimate failed: {_one_line(error)}"}
    row.update(flops=cost.flops, bytes=cost.bytes_moved, memory_estimate_bytes=cost.memory_bytes)
    budget = settings.memory_budget_bytes
    if budget is None:
        budget = memory.default_budget_bytes(device)
    refused = memory.refusal(cost.memory_bytes, budget, device)
    if refused:
        return {**row, "status": "refused", "message": refused}
    with locks.device_lock(str(device), on_wait):
        measured = _measure(workload, params, cost, backend, device, dtype, settings, should_stop)
    return ceilings.judge_row({**row, **measured})


def _measure(workload, params, cost, backend, device, dtype, settings, should_stop) -> dict:
    prepared = None
    try:
        devices.empty_cache(device)
        devices.reset_peak_memory(device)
        with timing.cpu_threads(backend.threads):
            prepared = workload.build(params, device, dtype)
            result = timing.measure(
                prepared.fn, device, settings.timing, backend.threads, should_stop=should_stop
            )
            peak = devices.peak_memory_bytes(device)
            check = _check(prepared, dtype) if settings.check_outputs else {}
            floor_s = timing.dispatch_floor_s(device, backend.threads)
    except _OUT_OF_MEMORY as error:
        return {"status": "failed", "message": f"out of memory: {_one_line(error)}"}
    except (NotImplementedError, RuntimeError, TypeError) as error:
        text = _one_line(error)
        status = "skipped" if any(m in text.lower() for m in _SKIP_MARKERS) else "failed"
        return {"status": status, "message": text}
    except Exception as error:  # any other failure belongs to this point, not the sweep
        return {"status": "failed", "message": f"{type(error).__name__}: {_one_line(error)}"}
    finally:
        del prepared
        devices.empty_cache(device)
    median_s = result.median_s
    flags = (["noisy"] if result.noisy else []) + check.get("flags", [])
    return {
        "median_s": median_s,
        "p25_s": result.p25_s,
        "p75_s": result.p75_s,
        "min_s": result.min_s,
        "max_s": result.max_s,
        "mean_s": result.mean_s,
        "n": result.n,
        "rel_precision": result.rel_precision,
        "noisy": result.noisy,
        "first_call_s": result.first_call_s,
        "times_s": json.dumps([round(t, 9) for t in result.times_s]),
        "threads": result.threads,
        "dispatch_floor_s": floor_s,
        "gflops_per_s": cost.flops / median_s / 1e9 if median_s > 0 else math.nan,
        "gb_per_s": cost.bytes_moved / median_s / 1e9 if median_s > 0 else math.nan,
        "peak_memory_bytes": peak,
        "max_rel_err": check.get("max_rel_err"),
        "flags": ",".join(flags),
        "status": "ok",
        "message": check.get("note", ""),
    }


def _check(prepared, dtype: torch.dtype) -> dict:
    """Compare the device's output with a CPU reference from the same inputs and weights."""
    if prepared.check is None:
        return {}
    pair = prepared.check()
    if pair is None:
        return {"note": prepared.check_note}
    actual, expected = pair
    error = relative_error(actual, expected)
    flags = []
    if not math.isfinite(error):
        flags.append("nonfinite")
    elif error > TOLERANCE[dtype]:
        flags.append("mismatch")
    note = prepared.check_note
    if flags:
        note = (
            f"output differs from the CPU reference: max_rel_err {error:.2g} > "
            f"{TOLERANCE[dtype]:g} allowed for {dtype_name(dtype)}" + (f" ({note})" if note else "")
        )
    # A NaN or inf output has no meaningful error size; the nonfinite flag says what happened,
    # and an infinite number would not survive export to CSV or Parquet.
    return {"max_rel_err": error if math.isfinite(error) else None, "flags": flags, "note": note}


def _device_name(device: torch.device) -> str:
    try:
        if device.type == "cpu":
            return devices.cpu_model_name()
        return devices.accelerator_name(device)
    except Exception:  # a name is decoration; never let it fail a point
        return str(device)


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:300] if text else type(error).__name__


def run_sweep(
    workload: Workload,
    grid: dict[str, list],
    backends: list[Backend] | None = None,
    settings: SweepSettings | None = None,
    on_row: Callable[[dict, int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_wait: Callable[[str], None] | None = None,
    run_id: str | None = None,
) -> pd.DataFrame:
    """Measure every point on every backend; finished rows are returned on a stop or budget.

    Backends alternate order from point to point, so that drift in clocks or heat
    falls on both sides alike.
    """
    settings = settings or SweepSettings()
    backends = backends or default_backends()
    parse_dtype(settings.dtype)
    points = expand_grid(workload, grid)
    run_id = run_id or new_run_id()
    total = len(points) * len(backends)
    rows: list[dict] = []
    start = time.perf_counter()
    for index, params in enumerate(points):
        order = backends if index % 2 == 0 else list(reversed(backends))
        for backend in order:
            if should_stop is not None and should_stop():
                return results.to_frame(rows, workload.param_names)
            if (
                rows
                and settings.sweep_budget_s is not None
                and time.perf_counter() - start >= (settings.sweep_budget_s)
            ):
                return results.to_frame(rows, workload.param_names)
            row = measure_point(workload, params, backend, settings, run_id, on_wait, should_stop)
            rows.append(row)
            if on_row is not None:
                on_row(row, len(rows), total)
    return results.to_frame(rows, workload.param_names)


def thread_counts(limit: int | None = None) -> list[int]:
    """1, 2, 4, ... up to every logical core, which is always included."""
    _, logical = devices.cpu_core_counts()
    top = min(limit or logical, logical)
    counts = [1]
    while counts[-1] * 2 < top:
        counts.append(counts[-1] * 2)
    if counts[-1] != top:
        counts.append(top)
    return counts


def thread_backends(limit: int | None = None) -> list[Backend]:
    """One CPU backend per thread count: answers "is my CPU baseline fair?"."""
    return [Backend("cpu", count) for count in thread_counts(limit)]
