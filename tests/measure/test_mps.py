"""The MPS pitfalls users report, on a substituted Mac (no Mac here): dtype support, event
timing, the memory limits, and fallback detection. Every answer is known in advance."""

import pytest
import torch

from core.measure import devices, memory, mps_adapter, selftest, sweep, timing
from core.measure.workloads import get
from tests.helpers import measure_point

RECOMMENDED_BYTES = 5_726_623_744  # what Metal recommends on an 8 GB A18 Pro
DRIVER_BYTES = 1_000_000_000


PROBES = (devices._dtype_support, timing.events_agree)  # tests substitute the names


@pytest.fixture(autouse=True)
def _fresh_probes():
    for probe in PROBES:
        probe.cache_clear()
    yield
    for probe in PROBES:
        probe.cache_clear()


@pytest.fixture
def mac(monkeypatch):
    """A Mac whose chip the test names: ``mac("Apple M1")``."""
    monkeypatch.delenv(mps_adapter.HIGH_WATERMARK_ENV, raising=False)
    monkeypatch.delenv(mps_adapter.LOW_WATERMARK_ENV, raising=False)
    monkeypatch.setattr(
        torch.accelerator, "current_accelerator", lambda check_available=False: torch.device("mps")
    )
    monkeypatch.setattr(torch.accelerator, "synchronize", lambda device=None: None)
    monkeypatch.setattr(torch.mps, "recommended_max_memory", lambda: RECOMMENDED_BYTES)
    monkeypatch.setattr(torch.mps, "driver_allocated_memory", lambda: DRIVER_BYTES)
    monkeypatch.setattr(torch.mps, "current_allocated_memory", lambda: 0)
    monkeypatch.setattr(torch.mps, "empty_cache", lambda: None)
    # The tiny probe op runs on the CPU in the dtype asked for; no MPS tensor exists here.
    monkeypatch.setattr(devices, "_runs_tiny_op", lambda device, dtype: None)

    def on(chip: str):
        monkeypatch.setattr(mps_adapter, "_sysctl", {"machdep.cpu.brand_string": chip}.get)

    on("Apple A18 Pro")
    return on


@pytest.mark.parametrize(
    ("chip", "expected"),
    [
        ("Apple M1", "emulated"),
        ("Apple M2 Max", "emulated"),
        ("Apple A15 Bionic", "emulated"),
        ("Apple M3", "native"),
        ("Apple M4 Pro", "native"),
        ("Apple A17 Pro", "native"),
        ("Apple A18 Pro", "native"),
    ],
)
def test_bfloat16_is_emulated_on_m1_and_m2_only(mac, chip, expected):
    mac(chip)
    support, note = devices.dtype_support("mps", torch.bfloat16)
    assert support == expected
    assert ("emulated" in note) == (expected == "emulated")
    assert devices.dtype_support("mps", "float16") == ("native", "")


def test_a_dtype_whose_tiny_op_raises_is_unsupported_and_probed_once(mac, monkeypatch):
    calls = []

    def raises(device, dtype):
        calls.append(dtype)
        raise RuntimeError("MPS BFloat16 is only supported on MacOS 14 or newer")

    monkeypatch.setattr(devices, "_runs_tiny_op", raises)
    for _ in range(3):
        support, note = devices.dtype_support("mps", "bfloat16")
    assert support == "unsupported"
    assert "MacOS 14" in note
    assert calls == [torch.bfloat16]  # cached per device and dtype


def test_the_row_says_skipped_for_an_unsupported_dtype_instead_of_crashing(mac, monkeypatch):
    def raises(device, dtype):
        raise RuntimeError("bfloat16 is not supported on this device")

    monkeypatch.setattr(devices, "_runs_tiny_op", raises)
    settings = sweep.SweepSettings(dtype="bfloat16")
    workload = get("matmul")
    row = measure_point(workload, workload.validate({"size": 16}), sweep.Backend("mps"), settings)
    assert row["status"] == "skipped"
    assert "does not run on mps" in row["message"]


def test_an_emulated_dtype_is_planned_with_a_note(mac):
    mac("Apple M2")
    workload = get("matmul")
    settings = sweep.SweepSettings(dtype="bfloat16")
    (task,) = sweep.plan(workload, {"size": [16]}, [sweep.Backend("mps")], settings)
    status, note = task.verdict
    assert status == ""  # it is timed
    assert "bfloat16 is emulated on Apple M2" in note


def test_float32_is_never_probed(mac, monkeypatch):
    monkeypatch.setattr(devices, "_runs_tiny_op", lambda device, dtype: 1 / 0)
    assert devices.dtype_support("mps", torch.float32) == ("native", "")


def test_a_cpu_without_half_precision_units_emulates_them(monkeypatch):
    monkeypatch.setattr(devices, "_cpu_flags", lambda: {"avx2", "fma"})
    assert devices.dtype_support("cpu", "bfloat16")[0] == "emulated"
    devices._dtype_support.cache_clear()
    monkeypatch.setattr(devices, "_cpu_flags", lambda: {"avx2", "avx512_bf16"})
    assert devices.dtype_support("cpu", "bfloat16") == ("native", "")
    devices._dtype_support.cache_clear()
    monkeypatch.setattr(devices, "_cpu_flags", lambda: None)  # not x86 Linux: no claim
    assert devices.dtype_support("cpu", "float16") == ("native", "")


class _Event:
    """A stand-in for ``torch.Event`` that reads the host clock at record(), with its
    interval turned by ``shape`` (the identity, reversed, three times too long)."""

    shape = staticmethod(lambda seconds: seconds)

    def __init__(self, device=None, enable_timing=False):
        self.at_s = None

    def record(self):
        import time

        self.at_s = time.perf_counter()

    def elapsed_time(self, end) -> float:
        return self.shape(end.at_s - self.at_s) * 1e3  # milliseconds, as torch's


def _sleep():
    import time

    time.sleep(0.02)


@pytest.mark.parametrize(
    ("shape", "agree", "why"),
    [
        (lambda s: s, True, "agree"),
        (lambda s: -s, False, "reversed"),
        (lambda s: 0.0, False, "reversed or empty"),
        (lambda s: 3 * s, False, "off perf_counter"),
    ],
)
def test_an_event_interval_that_is_reversed_or_off_is_rejected(mac, monkeypatch, shape, agree, why):
    monkeypatch.setattr(_Event, "shape", staticmethod(shape))
    monkeypatch.setattr(torch, "Event", _Event)
    ok, said = timing.events_agree("mps", _sleep)
    assert ok is agree
    assert why in said


def test_an_event_that_raises_is_rejected(mac, monkeypatch):
    def raises(self, end):
        raise RuntimeError("End event 2 was not recorded after start event 1")

    monkeypatch.setattr(_Event, "elapsed_time", raises)
    monkeypatch.setattr(torch, "Event", _Event)
    ok, said = timing.events_agree("mps", _sleep)
    assert not ok and "not recorded after" in said


def test_mps_keeps_perf_counter_on_torch_without_the_event_fix(mac, monkeypatch):
    asked = []
    monkeypatch.setattr(timing, "events_agree", lambda device: asked.append(device) or (True, ""))
    settings = timing.TimingSettings()
    monkeypatch.setattr(torch, "__version__", torch.torch_version.TorchVersion("2.14.1"))
    assert not timing._events_usable(torch.device("mps"), settings)
    assert asked == []  # not even probed: a hang cannot be caught by the probe
    monkeypatch.setattr(torch, "__version__", torch.torch_version.TorchVersion("2.15.0"))
    assert timing._events_usable(torch.device("mps"), settings)
    assert asked == ["mps"]
    monkeypatch.setattr(timing, "events_agree", lambda device: (False, "reversed"))
    assert not timing._events_usable(torch.device("mps"), settings)
    assert not timing._events_usable(torch.device("mps"), timing.TimingSettings(use_events=False))


def test_a_reversed_event_on_a_fixed_torch_falls_back_to_perf_counter(mac, monkeypatch):
    monkeypatch.setattr(torch, "__version__", torch.torch_version.TorchVersion("2.15.0"))
    monkeypatch.setattr(_Event, "shape", staticmethod(lambda s: -s))
    monkeypatch.setattr(torch, "Event", _Event)
    real = timing.events_agree.__wrapped__
    monkeypatch.setattr(timing, "events_agree", lambda device: real(device, _sleep))
    assert not timing._events_usable(torch.device("mps"), timing.TimingSettings())


def test_the_mps_budget_follows_the_recommended_max_and_the_default_watermark(mac):
    free = RECOMMENDED_BYTES - DRIVER_BYTES
    # The default ratio 1.7 puts the hard limit above the recommendation: that one binds.
    assert mps_adapter.watermark_limit_bytes() == int(1.7 * RECOMMENDED_BYTES)
    assert memory.memory_limits_bytes(torch.device("mps")) == (free, RECOMMENDED_BYTES)
    assert memory.default_budget_bytes("mps") == int(free * memory.DEFAULT_SHARE["mps"])


def test_a_lower_watermark_ratio_lowers_the_mps_budget(mac, monkeypatch):
    monkeypatch.setenv(mps_adapter.HIGH_WATERMARK_ENV, "0.5")
    limit = int(0.5 * RECOMMENDED_BYTES)
    assert mps_adapter.watermark_limit_bytes() == limit
    assert memory.memory_limits_bytes(torch.device("mps")) == (limit - DRIVER_BYTES, limit)
    budget = memory.default_budget_bytes("mps")
    assert budget == int((limit - DRIVER_BYTES) * memory.DEFAULT_SHARE["mps"])
    assert memory.capped_budget(8 * 10**9, "mps") == (limit, memory.capped_budget(8e9, "mps")[1])
    note = devices.describe("mps").note
    assert "PYTORCH_MPS_HIGH_WATERMARK_RATIO=0.5" in note
    assert "LOW_WATERMARK_RATIO too" in note  # 0.5 is below the default low ratio, 1.4


def test_watermark_zero_disables_the_limit(mac, monkeypatch):
    monkeypatch.setenv(mps_adapter.HIGH_WATERMARK_ENV, "0")
    assert mps_adapter.watermark_limit_bytes() is None
    assert memory.memory_limits_bytes(torch.device("mps"))[1] == RECOMMENDED_BYTES
    assert "no hard limit" in devices.describe("mps").note


def test_the_machine_card_shows_both_limits(mac):
    note = devices.describe("mps").note
    assert "Metal recommends at most 5.7 GB" in note
    assert "hard limit is 1.7 x that, 9.7 GB" in note
    assert "(default)" in note


MPS_FALLBACK = (
    "The operator 'aten::linalg_lstsq.out' is not currently supported on the MPS backend and "
    "will fall back to run on the CPU. This may have performance implications."
)


@pytest.mark.parametrize(
    ("message", "flagged"),
    [(MPS_FALLBACK, True), ("an unrelated warning", False), (None, False)],
)
def test_a_fallback_warning_in_the_first_call_flags_the_row(message, flagged):
    settings = sweep.SweepSettings(timing=timing.TimingSettings(budget_s=0.01))
    row = measure_point(selftest.warning_workload(message), {}, sweep.Backend("cpu", 1), settings)
    assert row["status"] == "ok"
    assert ("cpu-fallback" in row["flags"]) is flagged
    assert ("ran on the CPU: The operator 'aten::linalg_lstsq.out'" in row["message"]) is flagged


def test_an_emulated_dtype_is_timed_with_a_note_on_its_row(monkeypatch):
    from core.measure import sweep, timing, workloads
    from tests.helpers import measure_point

    note = "bfloat16 is emulated here: expect float32's speed, not bfloat16's"
    monkeypatch.setattr(sweep.devices, "dtype_support", lambda device, dtype: ("emulated", note))
    settings = sweep.SweepSettings(dtype="bfloat16", timing=timing.TimingSettings(budget_s=0.02))
    row = measure_point(workloads.get("matmul"), {"size": 16}, sweep.Backend("cpu", 1), settings)
    assert row["status"] == "ok"
    assert note in row["message"]
