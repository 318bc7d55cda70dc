"""Energy meters without special rights (NVML, RAPL, none on macOS), and energy per call
over exactly the calls a measurement made. Every OS call and NVML are substituted."""

import dataclasses
import json
import math

import pandas as pd
import pytest

from core.keep import results
from core.measure import energy, sweep, timing, workloads
from tests.helpers import measure_point


@pytest.fixture(autouse=True)
def _fresh_meters():
    cached = (energy.meter_for, energy.nvml)  # a test may put a stand-in in their place
    for function in cached:
        function.cache_clear()
    yield
    for function in cached:
        function.cache_clear()


def _rapl(root, packages, range_uj=1_000_000):
    for index, value in enumerate(packages):
        zone = root / f"intel-rapl:{index}"
        zone.mkdir()
        (zone / "energy_uj").write_text(f"{value}\n")
        (zone / "max_energy_range_uj").write_text(f"{range_uj}\n")
        (root / f"intel-rapl:{index}:0").mkdir()  # a core sub-zone: not a package


@pytest.fixture
def linux(monkeypatch, tmp_path):
    monkeypatch.setattr(energy, "_system", lambda: "Linux")
    monkeypatch.setattr(energy, "RAPL_ROOT", str(tmp_path))
    return tmp_path


def test_rapl_packages_give_joules_between_two_reads_and_survive_a_wrap(linux):
    _rapl(linux, [900_000, 10_000])
    meter = energy.meter_for("cpu")
    assert meter.method == "rapl package"
    start = meter.read()
    (linux / "intel-rapl:0" / "energy_uj").write_text("100000\n")  # wrapped past 1e6
    (linux / "intel-rapl:1" / "energy_uj").write_text("510000\n")
    assert meter.joules(start, meter.read()) == pytest.approx((200_001 + 500_000) / 1e6)


def test_root_only_rapl_says_not_readable_here(linux, monkeypatch):
    _rapl(linux, [1])

    def refuse(path):
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(energy, "_read_text", refuse)
    meter = energy.meter_for("cpu")
    assert not meter.available and meter.read() is None
    assert meter.why_not == "not readable here (RAPL is root-only since Linux 5.10)"


def test_no_rapl_and_macos_say_not_available_here(linux, monkeypatch):
    assert energy.meter_for("cpu").why_not == (
        "not available here (no RAPL counter on this machine)"
    )
    energy.meter_for.cache_clear()
    monkeypatch.setattr(energy, "_system", lambda: "Darwin")
    for device in ("cpu", "mps"):
        assert energy.meter_for(device).why_not == energy.MACOS_WHY


class FakeNvml:
    """pynvml's calls the meter makes, with a counter in mJ that the test moves."""

    class NVMLError_NotSupported(Exception):
        pass

    def __init__(self, supported=True):
        self.mj, self.supported, self.started = 5_000, supported, 0

    def nvmlInit(self):
        self.started += 1

    def nvmlDeviceGetHandleByUUID(self, uuid):
        raise RuntimeError("no such UUID")  # falls back to the index

    def nvmlDeviceGetHandleByIndex(self, index):
        return ("gpu", index)

    def nvmlDeviceGetTotalEnergyConsumption(self, handle):
        if not self.supported:
            raise self.NVMLError_NotSupported("Not Supported")
        return self.mj


def test_nvml_reads_millijoules_as_joules_and_starts_once(monkeypatch):
    fake = FakeNvml()
    monkeypatch.setattr(energy, "_import_pynvml", lambda: fake)
    meter = energy.meter_for("cuda:0")
    assert meter.method == "nvml"
    start = meter.read()
    fake.mj += 2_500
    assert meter.joules(start, meter.read()) == 2.5
    energy.meter_for("cuda:1")
    assert fake.started == 1


def test_nvml_without_an_energy_counter_or_without_the_package_says_why(monkeypatch):
    monkeypatch.setattr(energy, "_import_pynvml", lambda: FakeNvml(supported=False))
    assert energy.meter_for("cuda").why_not.startswith("not supported by this GPU")
    energy.meter_for.cache_clear()
    energy.nvml.cache_clear()

    def missing():
        raise ImportError("No module named 'pynvml'")

    monkeypatch.setattr(energy, "_import_pynvml", missing)
    assert "nvidia-ml-py package is not installed" in energy.meter_for("cuda").why_not


def _counting(calls):
    """A closure that counts its calls, and a meter whose counter is one joule a call."""

    def fn():
        calls.append(1)

    meter = energy.Meter("fake", read_counter=lambda: float(len(calls)), between=lambda a, b: b - a)
    return fn, meter


def test_energy_per_call_covers_exactly_the_calls_after_the_first(monkeypatch):
    monkeypatch.setattr(energy, "MIN_SPAN_S", 0.0)
    calls = []
    fn, meter = _counting(calls)
    span = energy.Span(meter)
    settings = timing.TimingSettings(budget_s=0.02, min_repeats=5)
    measured = timing.measure(fn, "cpu", settings, 1, after_call=span.after_call)
    found = span.result(measured)
    assert found["energy_j"] == 1.0  # every call counted once: the count is exact
    assert span.calls(measured) == len(calls) - 1
    assert found["energy_method"].startswith(f"fake: {len(calls) - 1} calls in ")


def test_pipelined_calls_and_launch_tries_are_counted():
    span = energy.Span(energy.Meter())
    span.hooks = 11  # the first call, then 10 warm-up and timed calls
    base = dict(times_s=(1e-3,) * 7, first_call_s=1.0, warmup_s=(2e-3,) * 3, device="cuda",
                threads=1, wall_s=1.0, loop_wall_s=1.0, stop_reason="budget")  # fmt: skip
    events = timing.Measurement(**base, timer="events", launch_s=1e-5)
    pipelined = timing.Measurement(**base, timer="events-pipelined", launch_s=1e-5)
    assert span.calls(events) == 10 + timing.launch_tries(2e-3)
    assert span.calls(pipelined) == 20 + timing.launch_tries(2e-3)
    cpu = timing.Measurement(**{**base, "device": "cpu"})  # no launch tries on the CPU
    assert span.calls(cpu) == 10


def test_a_short_span_or_no_meter_says_why_in_words():
    calls = []
    fn, meter = _counting(calls)
    span = energy.Span(meter)
    measured = timing.measure(fn, "cpu", timing.TimingSettings(budget_s=0.01), 1,
                              after_call=span.after_call)  # fmt: skip
    found = span.result(measured)
    assert math.isnan(found["energy_j"])
    assert found["energy_method"].startswith("too short to read (")
    assert found["energy_method"].endswith("timed; fake needs 0.5 s)")
    nothing = energy.Span(energy.Meter(why_not="not available here")).result(measured)
    assert math.isnan(nothing["energy_j"]) and nothing["energy_method"] == "not available here"


def test_every_measured_row_carries_its_energy_and_how_it_was_read(monkeypatch):
    monkeypatch.setattr(energy, "MIN_SPAN_S", 0.0)
    calls = []
    _, meter = _counting(calls)
    meter = energy.Meter("fake", read_counter=lambda: 3.0 * len(calls), between=meter.between)
    monkeypatch.setattr(energy, "meter_for", lambda device: meter)
    real = workloads.get("elementwise")

    def build(params, device, dtype):  # the real closure, counted
        prepared = real.build(params, device, dtype)
        return dataclasses.replace(prepared, fn=lambda: (calls.append(1), prepared.fn()))

    workload = dataclasses.replace(real, build=build)
    settings = sweep.SweepSettings(timing=timing.TimingSettings(budget_s=0.02))
    row = measure_point(workload, {"op": "add", "size": 1000}, sweep.Backend("cpu", 1), settings)
    assert row["status"] == "ok"
    assert row["energy_j"] == 3.0 and row["energy_method"].startswith("fake: ")
    frame = results.to_frame([row], workload.param_names)
    assert frame["energy_j"].dtype == "float64" and frame["energy_method"].dtype == "string"


def test_the_note_names_each_backends_method_or_why_not():
    frame = pd.DataFrame(
        {
            "backend": ["cpu (8 threads)", "cuda", "cuda"],
            "energy_method": ["not readable here (RAPL is root-only)", "nvml: 40 calls", None],
        }
    )
    assert energy.note(frame) == (
        "Energy: cpu (8 threads) not readable here (RAPL is root-only); cuda nvml"
    )
    assert energy.note(pd.DataFrame({"backend": ["cpu"]})) == ""


def test_model_pages_chart_images_per_joule_only_where_energy_was_read():
    from core.show import charts

    rows = [
        {"workload": "inference", "model": "resnet18", "batch": batch, "image_size": 224,
         "backend": backend, "device": backend, "dtype": "float32", "status": "ok",
         "median_s": 0.01, "p25_s": 0.01, "p75_s": 0.01, "flags": "", "energy_j": energy_j}
        for batch, backend, energy_j in [(8, "cuda", 2.0), (32, "cuda", 4.0), (8, "cpu", None)]
    ]  # fmt: skip
    frame = results.to_frame(rows, ["model", "batch", "image_size"])
    assert charts.has_energy(frame)
    assert not charts.has_energy(frame[frame["backend"] == "cpu"])
    spec = charts.bar_by_batch(frame, "images_per_j").to_dict()
    values = [v for data in spec["datasets"].values() for v in data if "images_per_j" in v]
    assert sorted(v["images_per_j"] for v in values if v["images_per_j"]) == [4.0, 8.0]
    assert "images per joule" in json.dumps(spec)
