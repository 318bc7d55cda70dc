"""The self-test's checks, each with a known answer: substituted clocks, syncs and figures
where a verdict would otherwise depend on this machine's speed."""

import json

import pytest
import torch

from core.keep import files, results
from core.measure import devices, selftest, timing
from core.measure.workloads import REGISTRY, Cost, Prepared, Workload


class _AsyncDevice:
    """A make-believe asynchronous device on a virtual clock: a call is queued in 10 µs
    and its 10 ms of work happen only when someone waits for them."""

    def __init__(self):
        self.now_s, self.queued_s = 0.0, 0.0

    def clock(self) -> float:
        return self.now_s

    def work(self) -> None:
        self.now_s += 10e-6
        self.queued_s += 10e-3

    def sync(self, device) -> None:
        self.now_s += self.queued_s
        self.queued_s = 0.0


def test_a_synchronize_that_waits_passes():
    fake = _AsyncDevice()
    verdict, why = selftest.check_synchronization("mps", fake.work, fake.sync, fake.clock)
    assert verdict == selftest.PASS, why
    assert "unsynchronized 10 µs, synchronized 10 ms" in why


def test_a_deliberately_unsynchronized_timer_fails():
    fake = _AsyncDevice()
    verdict, why = selftest.check_synchronization(
        "cuda", fake.work, lambda device: None, fake.clock
    )
    assert verdict == selftest.FAIL
    assert "does not wait" in why


def test_synchronization_is_not_applicable_on_the_cpu():
    verdict, why = selftest.check_synchronization("cpu")
    assert verdict == selftest.NOT_APPLICABLE
    assert "synchronously" in why


def test_timer_agreement_is_not_applicable_on_the_cpu_and_on_mps_without_the_fix(monkeypatch):
    assert selftest.check_timers("cpu")[0] == selftest.NOT_APPLICABLE
    monkeypatch.setattr(torch, "__version__", torch.torch_version.TorchVersion("2.14.1"))
    verdict, why = selftest.check_timers("mps")
    assert verdict == selftest.NOT_APPLICABLE and "pytorch#162872" in why


def test_timer_agreement_reports_the_probe(monkeypatch):
    monkeypatch.setattr(timing, "events_agree", lambda device: (False, "reversed interval"))
    assert selftest.check_timers("cuda:0") == (selftest.FAIL, "reversed interval")


MIB = 1024**2


@pytest.mark.parametrize(
    ("figures", "verdict", "why"),
    [
        ((64 * MIB, 0, 64 * MIB, 64 * MIB, None), selftest.PASS, "grew by 64.0 MiB"),
        ((64 * MIB, 0, 64 * MIB, 64 * MIB, 80 * MIB), selftest.PASS, "driver 80.0 MiB"),
        ((64 * MIB, 0, 1 * MIB, 64 * MIB, None), selftest.FAIL, "less than allocated"),
        ((64 * MIB, 0, 200 * MIB, 200 * MIB, None), selftest.FAIL, "more than allocated"),
        ((64 * MIB, 0, 64 * MIB, 1 * MIB, None), selftest.FAIL, "the peak missed the tensor"),
        ((64 * MIB, 0, 64 * MIB, 500 * MIB, None), selftest.FAIL, "more than was ever"),
        ((64 * MIB, 0, 64 * MIB, None, None), selftest.FAIL, "no peak figure"),
        ((64 * MIB, 0, 64 * MIB, 64 * MIB, 1 * MIB), selftest.FAIL, "driver holds less"),
    ],
)
def test_memory_figures_are_judged_against_the_size_allocated(figures, verdict, why):
    found, said = selftest.judge_memory(*figures)
    assert found == verdict
    assert why in said


def test_the_cpu_memory_figures_pass_here():
    verdict, why = selftest.check_memory("cpu")
    assert verdict == selftest.PASS, why


def test_the_fallback_detection_passes_here():
    assert selftest.check_fallback("cpu")[0] == selftest.PASS


def test_dtype_support_says_what_the_sweep_will_say(monkeypatch):
    monkeypatch.setattr(devices, "_cpu_flags", lambda: {"avx2"})
    devices._dtype_support.cache_clear()
    try:
        verdict, why = selftest.check_dtypes("cpu")
    finally:
        devices._dtype_support.cache_clear()
    assert verdict == selftest.PASS
    assert why == "float16 emulated, bfloat16 emulated"


@pytest.mark.parametrize(
    ("floor_s", "verdict"), [(5e-6, selftest.PASS), (5e-3, selftest.FAIL), (0.0, selftest.FAIL)]
)
def test_the_dispatch_floor_must_be_positive_and_small(monkeypatch, floor_s, verdict):
    monkeypatch.setattr(timing, "dispatch_floor_s", lambda device: floor_s)
    assert selftest.check_floor("cpu")[0] == verdict


@pytest.mark.parametrize(
    ("name", "chip"),
    [
        ("NVIDIA H200", "NVIDIA H200"),
        ("NVIDIA H100 80GB HBM3", "NVIDIA H100 SXM"),
        ("NVIDIA H100 PCIe", "NVIDIA H100 PCIe"),
        ("Apple M1 GPU", "Apple M1"),
        ("Apple A18 Pro GPU", "Apple A18 Pro"),
    ],
)
def test_published_figures_are_found_by_chip_name(name, chip):
    assert selftest.published_for(name)[0] == chip


def test_an_unknown_chip_has_no_published_figure():
    assert selftest.published_for("Apple M2 Max GPU") is None  # not the plain M2's memory
    assert selftest.published_for("NVIDIA GeForce RTX 4090") is None
    assert selftest.check_ceilings("cpu")[0] == selftest.NOT_APPLICABLE


def test_a_roof_above_the_published_figure_fails():
    published = {"bandwidth": 4.8e12, "float32": 67e12}
    verdict, why = selftest.judge_ceilings("NVIDIA H200", published, {"bandwidth": 4.0e12})
    assert verdict == selftest.PASS
    assert "bandwidth 4 TB/s = 83% of 4.8 TB/s" in why
    verdict, why = selftest.judge_ceilings(
        "NVIDIA H200", published, {"bandwidth": 4.0e12, "float32": 700e12}
    )
    assert verdict == selftest.FAIL and "float32 above the published figure" in why


def _mismatching_workload() -> Workload:
    def build(params, device, dtype):
        x = torch.ones(8, device=device, dtype=dtype)
        return Prepared(fn=lambda: x + 1, check=lambda: (x.double() * 2, x.double()))

    cost = Cost(flops=8, bytes_moved=64, memory_bytes=64)
    return Workload("wrong", "Wrong", "", (), lambda p, d: cost, build)


def test_the_output_check_passes_on_small_points_and_fails_on_a_wrong_one(monkeypatch):
    monkeypatch.setattr(selftest, "SMALL_GRIDS", {"matmul": {"size": [16]}})
    verdict, why = selftest.check_outputs("cpu", point_budget_s=0.01)
    assert verdict == selftest.PASS and why.startswith("1 points match"), why
    monkeypatch.setattr(selftest, "REGISTRY", {**REGISTRY, "wrong": _mismatching_workload()})
    monkeypatch.setattr(selftest, "SMALL_GRIDS", {"matmul": {"size": [16]}, "wrong": {}})
    verdict, why = selftest.check_outputs("cpu", point_budget_s=0.01)
    assert verdict == selftest.FAIL
    assert why.startswith("1 of 2 points wrong; first: wrong ok: ")
    assert "output differs from the CPU reference" in why


def test_a_check_that_raises_fails_and_the_others_still_run():
    def broken(device):
        raise RuntimeError("no such device")

    checks = selftest.run(
        ["cpu"], checks={"broken": broken, "fine": lambda d: (selftest.PASS, "ok")}
    )
    assert [(c.name, c.verdict) for c in checks] == [
        ("broken", selftest.FAIL),
        ("fine", selftest.PASS),
    ]
    assert "no such device" in checks[0].why
    assert not selftest.passed(checks)
    assert selftest.passed(checks[1:])


def test_the_report_imports_like_any_export():
    checks = [
        selftest.Check("synchronization", "cpu", selftest.NOT_APPLICABLE, "synchronous", 0.001),
        selftest.Check("memory figures", "cpu", selftest.PASS, "grew by 64 MiB", 0.1),
        selftest.Check("dispatch floor", "cpu", selftest.FAIL, "a trivial op takes 5 ms", 0.2),
    ]
    machine = devices.machine_fingerprint()
    frame = results.to_frame(selftest.rows(checks), ["check", "verdict"])
    data = files.export_bytes(frame, "json", machine, {"command": "python -m core selftest"})
    assert json.loads(data)["machine"]["machine"] == machine["machine"]
    imported = files.import_file(data, "json")
    assert imported.machine == machine
    table = imported.frame
    assert list(table["check"]) == ["synchronization", "memory figures", "dispatch floor"]
    assert list(table["status"]) == ["skipped", "ok", "failed"]
    assert list(table["verdict"]) == ["not applicable", "pass", "fail"]
    assert table["message"].iloc[2] == "a trivial op takes 5 ms"
    assert set(table["workload"]) == {"selftest"}
