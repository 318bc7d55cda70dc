"""Device discovery, and the MPS adapter with ``torch.mps`` substituted (no Mac here)."""

import pytest
import torch

from core.measure import devices, memory, mps_adapter, sweep
from tests.helpers import measure_point


def test_cpu_is_always_there_and_described():
    assert devices.device_strings()[0] == "cpu"
    info = devices.describe("cpu")
    assert info.kind == "cpu"
    assert info.threads == torch.get_num_threads()
    assert info.total_memory_bytes > 0
    assert info.torch_version == torch.__version__


def test_a_cuda_build_without_a_gpu_reports_no_accelerator(monkeypatch):
    monkeypatch.setattr(
        torch.accelerator, "current_accelerator", lambda check_available=False: None
    )
    assert devices.accelerator_type() is None
    assert devices.device_strings() == ["cpu"]
    assert [b.threads for b in sweep.default_backends(threads=2)] == [1, 2]


@pytest.fixture
def fake_mac(monkeypatch):
    """This process believes it runs on an Apple A18 Pro with 8 GB of unified memory."""
    calls = {"synchronize": 0}
    monkeypatch.setattr(
        torch.accelerator,
        "current_accelerator",
        lambda check_available=False: torch.device("mps"),
    )
    monkeypatch.setattr(torch.mps, "recommended_max_memory", lambda: 5_726_623_744)
    monkeypatch.setattr(torch.mps, "driver_allocated_memory", lambda: 1_000_000_000)
    monkeypatch.setattr(torch.mps, "current_allocated_memory", lambda: 600_000_000)
    monkeypatch.setattr(torch.mps, "empty_cache", lambda: calls.__setitem__("empty", True))

    def synchronize(device=None):
        calls["synchronize"] += 1
        calls["device"] = device

    monkeypatch.setattr(torch.accelerator, "synchronize", synchronize)
    sysctl = {
        "machdep.cpu.brand_string": "Apple A18 Pro",
        "hw.perflevel0.physicalcpu": "2",
        "hw.perflevel1.physicalcpu": "4",
    }
    monkeypatch.setattr(mps_adapter, "_sysctl", sysctl.get)
    return calls


def test_mps_is_listed_and_named_through_the_adapter(fake_mac):
    assert devices.device_strings() == ["cpu", "mps"]
    assert devices.accelerator_name(torch.device("mps")) == "Apple A18 Pro GPU"
    assert mps_adapter.core_split() == (2, 4)


def test_mps_memory_is_unified_and_comes_from_metal(fake_mac):
    free, total = devices.memory_info_bytes(torch.device("mps"))
    assert total == 5_726_623_744
    assert free == 5_726_623_744 - 1_000_000_000
    info = devices.describe("mps")
    assert info.unified_memory
    assert info.name == "Apple A18 Pro GPU"
    # The peak is the sampled live memory, not the driver's figure with its caches.
    assert devices.PeakMemory(torch.device("mps")).peak_bytes() == 600_000_000
    assert devices.driver_memory_bytes(torch.device("mps")) == 1_000_000_000
    assert memory.default_budget_bytes("mps") == int(free * memory.DEFAULT_SHARE["mps"])


def test_mps_synchronizes_through_torch_accelerator_like_cuda(fake_mac):
    devices.synchronize("mps")
    assert fake_mac["synchronize"] == 1
    assert torch.device(fake_mac["device"]).type == "mps"
    devices.synchronize("cpu")  # the CPU needs no wait
    assert fake_mac["synchronize"] == 1


def test_mps_empty_cache_goes_through_the_adapter(fake_mac):
    devices.empty_cache(torch.device("mps"))
    assert fake_mac["empty"]


def test_mps_is_timed_with_perf_counter_not_events():
    settings_events = sweep.timing.TimingSettings()
    assert not sweep.timing._events_usable(torch.device("mps"), settings_events)
    assert not sweep.timing._events_usable(torch.device("cpu"), settings_events)
    assert sweep.timing._events_usable(torch.device("cuda", 0), settings_events)


def test_float64_on_mps_is_a_skipped_row(fake_mac):
    from core.measure import workloads

    row = measure_point(
        workloads.get("elementwise"),
        workloads.get("elementwise").validate({"size": 1000}),
        sweep.Backend("mps"),
        sweep.SweepSettings(dtype="float64"),
    )
    assert row["status"] == "skipped"
    assert "float64" in row["message"]


def test_the_cpu_on_a_mac_names_its_core_split(fake_mac, monkeypatch):
    monkeypatch.setattr(devices.platform, "system", lambda: "Darwin")
    info = devices.describe("cpu")
    assert info.name == "Apple A18 Pro"
    assert "2 performance + 4 efficiency" in info.note


def test_unknown_device_is_refused_with_the_choices():
    with pytest.raises(devices.BadInput, match="choose from cpu"):
        devices.parse_device("tpu")
    with pytest.raises(devices.BadInput, match="or accel for whatever accelerator"):
        devices.parse_device("cuda:7")


def test_accel_names_whatever_accelerator_the_machine_has(fake_mac):
    assert devices.parse_device("accel") == torch.device("mps")


def test_the_machine_label_is_the_same_in_titles_and_in_the_store(fake_mac):
    assert devices.machine_label() == devices.machine_fingerprint()["machine"]
    assert devices.machine_label().startswith("Apple A18 Pro GPU + ")
    assert devices.short_cpu_name("Intel(R) Xeon(R) Processor") == "Intel Xeon"
