"""What this machine can do at best, measured, and results checked against it.

Per device: memory bandwidth from a large device-to-device copy (bytes read plus
bytes written), the same from a cache-sized copy, and the matrix-multiply rate per
dtype. A result faster than these allow is flagged ``suspect``: the usual cause is
a missing synchronize, which makes numbers ten to a thousand times too fast.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd
import torch
from filelock import FileLock

from core.measure import devices, load, timing

# Caches, Winograd and FFT convolutions can beat the measured roofs by up to about
# twice; a missing synchronize is off by far more. Beyond this factor, a row is suspect.
SUSPECT_FACTOR = 3.0
# A measured median under this share of the device's trivial-op time cannot be real.
FLOOR_SHARE = 0.5
# A save holds the cache's lock for milliseconds; waiting longer means a stuck process.
LOCK_TIMEOUT_S = 60.0


@dataclass
class Ceilings:
    device: str
    threads: int
    bandwidth_bytes_per_s: float  # main memory, from a copy larger than any cache
    cache_bandwidth_bytes_per_s: float  # a copy that fits in the last-level cache
    peak_flops_per_s: dict[str, float] = field(default_factory=dict)  # by dtype name
    # Other processes' share of the machine while these were measured. Roofs measured on a
    # busy machine are too low and would call honest rows "faster than physics": they are
    # never cached, and no CPU row is judged against them.
    busy_share: float = 0.0

    @property
    def busy(self) -> bool:
        return load.is_busy(self.busy_share, self.threads if self.device == "cpu" else 1)

    def roof_flops_per_s(self, intensity_flops_per_byte: float, dtype: str) -> float:
        """The attainable rate at this arithmetic intensity: the lower of the two roofs."""
        return min(self.peak_for(dtype), self.bandwidth_bytes_per_s * intensity_flops_per_byte)

    def peak_for(self, dtype: str) -> float:
        # float32 convolutions may run on TF32 tensor cores by default, so the
        # float32 roof is whichever of the two was measured faster.
        names = ("float32", "tf32") if dtype == "float32" else (dtype,)
        return _best([self.peak_flops_per_s.get(name, math.nan) for name in names], math.inf)

    def as_dict(self) -> dict:
        return asdict(self)


def _copy_rate(device: torch.device, nbytes: int, settings: timing.TimingSettings) -> float:
    source = torch.ones(nbytes // 4, dtype=torch.float32, device=device)
    target = torch.empty_like(source)
    result = timing.measure(lambda: target.copy_(source), device, settings)
    return 2 * source.nbytes / result.median_s


def _matmul_rate(device: torch.device, dtype: torch.dtype, n: int, settings) -> float:
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    return 2 * n**3 / timing.measure(lambda: a @ b, device, settings).median_s


# A roof measured while the machine was busy is measured again, this many times at most.
QUIET_TRIES = 3


def measure_ceilings(
    device: torch.device | str, threads: int | None = None, budget_s: float = 1.0
) -> Ceilings:
    """Measure the roofs of one device, again while the machine is busy (up to
    ``QUIET_TRIES`` times). Takes a few seconds; results are worth caching."""
    for _ in range(QUIET_TRIES):
        start = load.snapshot()
        found = _measure_ceilings(device, threads, budget_s)
        found.busy_share = load.busy_share(*load.window(start))
        if not found.busy:
            break
    return found


def _measure_ceilings(device: torch.device | str, threads: int | None, budget_s: float) -> Ceilings:
    device = torch.device(device)
    settings = timing.TimingSettings(budget_s=budget_s)
    on_cpu = device.type == "cpu"
    n = 512 if on_cpu else 8192
    with timing.cpu_threads(threads):
        used = torch.get_num_threads()
        bandwidth = _copy_rate(device, (256 if on_cpu else 1024) * 1024**2, settings)
        cache_bandwidth = _copy_rate(device, 4 * 1024**2, settings)
        # CPUs without native half-precision units emulate it hundreds of times slower.
        half_n = n // 4 if on_cpu else n
        peaks = {}
        for name, size in (("float32", n), ("float16", half_n), ("bfloat16", half_n)):
            try:
                peaks[name] = _matmul_rate(device, getattr(torch, name), size, settings)
            except (RuntimeError, NotImplementedError):  # a dtype this device lacks has no roof
                peaks[name] = math.nan
        if device.type == "cuda":
            previous = torch.backends.cuda.matmul.allow_tf32
            torch.backends.cuda.matmul.allow_tf32 = True
            try:
                peaks["tf32"] = _matmul_rate(device, torch.float32, n, settings)
            finally:
                torch.backends.cuda.matmul.allow_tf32 = previous
    if on_cpu and used > 1:
        # More threads can always fall back to fewer, so a roof measured below the
        # one-thread roof only shows a busy machine; keep the higher of the two.
        one_thread = _measure_ceilings(device, 1, budget_s)
        bandwidth = max(bandwidth, one_thread.bandwidth_bytes_per_s)
        cache_bandwidth = max(cache_bandwidth, one_thread.cache_bandwidth_bytes_per_s)
        peaks = {
            name: _best([rate, one_thread.peak_flops_per_s.get(name, math.nan)], math.nan)
            for name, rate in peaks.items()
        }
    return Ceilings(str(device), used, bandwidth, max(bandwidth, cache_bandwidth), peaks)


def _best(rates: list[float], default: float) -> float:
    return max((rate for rate in rates if math.isfinite(rate)), default=default)


def cache_path() -> Path:
    import platformdirs  # only needed for the default location

    return Path(platformdirs.user_cache_dir("speedup-explorer")) / "ceilings.json"


def _cache_key(device: torch.device | str, threads: int) -> str:
    # Only the CPU's roofs depend on its thread count.
    threads_part = f"{threads} threads" if torch.device(device).type == "cpu" else "any threads"
    # v2: entries from before busy machines were told apart may hold roofs measured busy.
    return f"v2|{devices.machine_label()}|{device}|{threads_part}|torch {torch.__version__}"


def cached(device: torch.device | str, threads: int | None = None, refresh=False) -> Ceilings:
    """This machine's ceilings for ``device``, measured once and then read from a cache file."""
    used = threads or torch.get_num_threads()
    key, path = _cache_key(device, used), cache_path()
    found = None if refresh else load_cached(path, key)
    if found is None:
        found = measure_ceilings(device, used)
        if not found.busy:
            save_cached(path, key, found)
    return found


def load_cached(path: Path, key: str) -> Ceilings | None:
    # No lock: the file is only ever replaced whole, so a reader sees all of it or none.
    try:
        return Ceilings(**json.loads(path.read_text())[key])
    except (OSError, KeyError, TypeError, ValueError):
        return None


def save_cached(path: Path, key: str, ceilings: Ceilings) -> None:
    """Add one entry to the cache file without losing any other session's. App sessions and
    CLI processes share it: the read, change and write happen under a file lock (else two
    saves at once drop one entry), and the new content replaces the old through a temporary
    file in the same folder (else a reader or a killed writer could see half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{path}.lock", timeout=LOCK_TIMEOUT_S):
        try:
            stored = json.loads(path.read_text())
        except (OSError, ValueError):
            stored = {}
        stored = stored if isinstance(stored, dict) else {}
        stored[key] = ceilings.as_dict()
        with tempfile.NamedTemporaryFile(
            "w", dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False
        ) as temporary:
            try:
                json.dump(stored, temporary, indent=1)
                temporary.flush()
                os.fsync(temporary.fileno())  # the content is on disk before the rename
            except BaseException:
                os.unlink(temporary.name)
                raise
        os.replace(temporary.name, path)


def apply(frame: pd.DataFrame, ceilings_by_backend: dict[str, Ceilings]) -> pd.DataFrame:
    """Fill ``pct_of_ceiling`` and add the ``suspect`` flag where a row beats physics."""
    frame = frame.copy()
    judged = [_judged(row, ceilings_by_backend.get(row["backend"])) for _, row in frame.iterrows()]
    percents, flags = zip(*judged, strict=True) if judged else ((), ())
    frame["pct_of_ceiling"] = pd.Series(percents, index=frame.index, dtype="float64")
    frame["flags"] = pd.Series(flags, index=frame.index, dtype="string")
    return frame


def _judge(row, ceiling: Ceilings | None) -> tuple[float, bool]:
    median_s = row.get("median_s")
    if row.get("status") != "ok" or median_s is None or not median_s > 0:
        return math.nan, False
    floor_s = row.get("dispatch_floor_s")
    # Only a device that queues work can be timed too fast by a missing synchronize; a
    # busy CPU's trivial-op time is too noisy to judge by.
    queued = str(row.get("device", "cpu")) != "cpu"
    under_floor = bool(
        queued and floor_s is not None and floor_s > 0 and median_s < FLOOR_SHARE * floor_s
    )
    flops, nbytes = row.get("flops") or 0.0, row.get("bytes") or 0.0
    if ceiling is None or not nbytes > 0:
        return math.nan, under_floor
    # "Faster than physics" must hold even at the slow end of the median's interval, so
    # noise alone never flags a row, at any thread count.
    slow_s = row.get("median_high_s")
    slow_s = slow_s if slow_s is not None and slow_s == slow_s and slow_s >= median_s else median_s
    intensity, achieved, dtype = flops / nbytes, flops / median_s, str(row.get("dtype"))
    slow_rate = flops / slow_s
    roof = ceiling.roof_flops_per_s(intensity, dtype)
    fastest_roof = min(ceiling.peak_for(dtype), ceiling.cache_bandwidth_bytes_per_s * intensity)
    # Bytes moved per second are checked as well: element-wise ops count one flop per element
    # and would otherwise never reach the compute roof.
    too_fast = slow_rate > SUSPECT_FACTOR * fastest_roof or (
        nbytes / slow_s > SUSPECT_FACTOR * ceiling.cache_bandwidth_bytes_per_s
    )
    if ceiling.busy and not queued:
        too_fast = False  # a CPU roof measured busy is too low to judge by
    percent = 100 * achieved / roof if roof > 0 and math.isfinite(roof) else math.nan
    return percent, bool(under_floor or too_fast)


def _judged(row, ceiling: Ceilings | None) -> tuple[float, str]:
    """(percent of the roof, the row's comma-separated flags with ``suspect`` set or cleared)."""
    percent, suspect = _judge(row, ceiling)
    kept = [f for f in str(row.get("flags") or "").split(",") if f and f != "suspect"]
    return percent, ",".join([*kept, "suspect"] if suspect else kept)


def cached_only(device: str, threads: int | None = None) -> Ceilings | None:
    """The cached ceilings of ``device`` if they were ever measured here; never measures."""
    return load_cached(cache_path(), _cache_key(device, threads or torch.get_num_threads()))


def apply_cached(frame: pd.DataFrame) -> pd.DataFrame:
    """Judge rows against whatever ceilings this machine has cached (see ``cached``)."""
    if frame.empty:
        return frame
    backends = frame[["backend", "device", "threads"]].drop_duplicates().itertuples(index=False)
    found = {b: cached_only(str(d), int(t) if str(d) == "cpu" else None) for b, d, t in backends}
    return apply(frame, {backend: roofs for backend, roofs in found.items() if roofs is not None})


def judge_row(row: dict) -> dict:
    """One finished row judged against this machine's cached ceilings, if any were measured."""
    percent, flags = _judged(row, cached_only(str(row.get("device")), row.get("threads")))
    return {**row, "pct_of_ceiling": percent, "flags": flags}
