"""Ceilings, roofline placement, the suspect flag and the thread sweep, on substituted numbers."""

import json
import math
import multiprocessing
import threading
from pathlib import Path

import pytest

from core.keep import results
from core.measure import ceilings, sweep

ROOFS = ceilings.Ceilings(
    device="cuda:0",
    threads=8,
    bandwidth_bytes_per_s=1e12,
    cache_bandwidth_bytes_per_s=2e12,
    peak_flops_per_s={"float32": 50e12, "tf32": 400e12, "bfloat16": 800e12},
)


def _row(**values):
    row = {
        "run_id": "r",
        "timestamp": "t",
        "workload": "matmul",
        "size": 4096,
        "backend": "cuda:0",
        "device": "cuda:0",
        "dtype": "bfloat16",
        "status": "ok",
        "flags": "",
        "dispatch_floor_s": 4e-6,
    }
    row.update(values)
    return row


def _judge(*rows):
    return ceilings.apply(results.to_frame(list(rows), ["size"]), {"cuda:0": ROOFS})


def test_the_roof_is_the_lower_of_bandwidth_and_peak():
    assert ROOFS.roof_flops_per_s(1.0, "bfloat16") == 1e12
    assert ROOFS.roof_flops_per_s(10_000.0, "bfloat16") == 800e12
    # float32 convolutions may use TF32 tensor cores, so the faster of the two counts
    assert ROOFS.peak_for("float32") == 400e12
    assert ROOFS.peak_for("float64") == math.inf


def test_an_honest_matmul_gets_its_share_of_the_roof_and_no_flag():
    flops, nbytes = 2 * 4096**3, 3 * 4096**2 * 2
    judged = _judge(_row(median_s=0.2e-3, flops=flops, bytes=nbytes))
    assert judged["pct_of_ceiling"].iloc[0] == pytest.approx(100 * flops / 0.2e-3 / 800e12)
    assert "suspect" not in judged["flags"].iloc[0]


def test_a_result_faster_than_physics_is_suspect():
    flops, nbytes = 2 * 4096**3, 3 * 4096**2 * 2
    # An unsynchronized timer reports the enqueue only: a few microseconds.
    judged = _judge(_row(median_s=10e-6, flops=flops, bytes=nbytes, flags="noisy"))
    assert judged["flags"].iloc[0] == "noisy,suspect"


def test_bytes_faster_than_the_fastest_copy_are_suspect():
    judged = _judge(
        _row(workload="elementwise", dtype="float32", median_s=1e-4, flops=1e8, bytes=1.2e9)
    )
    assert "suspect" in judged["flags"].iloc[0]  # 12 TB/s against a 2 TB/s cache copy


def test_under_the_dispatch_floor_is_suspect_even_without_ceilings():
    frame = results.to_frame([_row(median_s=1e-6, flops=1.0, bytes=1.0)], ["size"])
    judged = ceilings.apply(frame, {})
    assert "suspect" in judged["flags"].iloc[0]
    assert math.isnan(judged["pct_of_ceiling"].iloc[0])


def test_rows_that_did_not_run_are_not_judged():
    judged = _judge(_row(status="refused", message="needs about 9 GB"))
    assert judged["flags"].iloc[0] == ""
    assert math.isnan(judged["pct_of_ceiling"].iloc[0])


def test_ceilings_are_cached_per_machine(tmp_path, monkeypatch):
    calls = []

    def measure(device, threads=None, budget_s=1.0):
        calls.append(device)
        return ROOFS

    monkeypatch.setattr(ceilings, "measure_ceilings", measure)
    monkeypatch.setattr(ceilings, "cache_path", lambda: tmp_path / "ceilings.json")
    assert ceilings.cached("cuda:0") == ROOFS
    assert ceilings.cached("cuda:0") == ROOFS
    assert calls == ["cuda:0"]
    assert ceilings.cached_only("cuda:0") == ROOFS
    assert ceilings.cached_only("cpu") is None


def _roofs_of(device: str) -> ceilings.Ceilings:
    return ceilings.Ceilings(device, 1, 1e9, 2e9, {"float32": 1e12})


def test_sessions_saving_at_once_all_end_in_the_cache(tmp_path, monkeypatch):
    """Threads measure different devices at once; every entry survives, and the file is whole."""
    path = tmp_path / "ceilings.json"
    monkeypatch.setattr(ceilings, "cache_path", lambda: path)
    monkeypatch.setattr(ceilings, "measure_ceilings", lambda d, t=None, b=1.0: _roofs_of(str(d)))
    device_names = [f"cuda:{i}" for i in range(8)]
    start = threading.Barrier(len(device_names))

    def measure(device: str) -> None:
        start.wait()
        for _ in range(10):
            ceilings.cached(device, refresh=True)

    threads = [threading.Thread(target=measure, args=(d,)) for d in device_names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for device in device_names:
        assert ceilings.cached_only(device) == _roofs_of(device)
    assert len(json.loads(path.read_text())) == len(device_names)
    # No temporary file is left behind.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ceilings.json", "ceilings.json.lock"]


def _save_many(path: str, worker: int, count: int) -> None:
    for i in range(count):
        key = f"worker {worker} entry {i}"
        ceilings.save_cached(Path(path), key, _roofs_of(key))


def test_processes_saving_at_once_all_end_in_the_cache(tmp_path):
    path = tmp_path / "ceilings.json"
    # fork: the children start at once, with ceilings already imported.
    context = multiprocessing.get_context("fork")
    workers, count = 4, 25
    processes = [
        context.Process(target=_save_many, args=(str(path), w, count)) for w in range(workers)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    stored = json.loads(path.read_text())
    assert len(stored) == workers * count
    for w in range(workers):
        for i in range(count):
            key = f"worker {w} entry {i}"
            assert ceilings.load_cached(path, key) == _roofs_of(key)


def test_real_cpu_ceilings_are_positive():
    measured = ceilings.measure_ceilings("cpu", threads=1, budget_s=0.02)
    assert measured.bandwidth_bytes_per_s > 0
    assert measured.cache_bandwidth_bytes_per_s >= measured.bandwidth_bytes_per_s
    assert measured.peak_flops_per_s["float32"] > 0


@pytest.mark.parametrize(
    ("cores", "expected"), [(1, [1]), (2, [1, 2]), (6, [1, 2, 4, 6]), (8, [1, 2, 4, 8])]
)
def test_thread_sweep_counts(monkeypatch, cores, expected):
    monkeypatch.setattr(sweep.devices, "cpu_core_counts", lambda: (cores, cores))
    assert sweep.thread_counts() == expected
    assert [b.threads for b in sweep.thread_backends()] == expected


def test_a_many_thread_roof_never_falls_below_the_one_thread_roof(monkeypatch):
    rates = {1: 100e9, 2: 20e9}  # a busy machine slowed the two-thread run down

    def matmul_rate(device, dtype, n, settings):
        return rates[sweep.timing.torch.get_num_threads()]

    monkeypatch.setattr(ceilings, "_matmul_rate", matmul_rate)
    monkeypatch.setattr(ceilings, "_copy_rate", lambda device, nbytes, settings: 1e9)
    measured = ceilings.measure_ceilings("cpu", threads=2)
    assert measured.threads == 2
    assert measured.peak_flops_per_s["float32"] == 100e9
