"""The machine's state (power, low-power modes, heat, Rosetta, versions) from substituted OS
calls, in words, with the warnings before a long run; and its trip through the store, the
CLI's files and the report."""

import fnmatch
import json
import types
from collections import namedtuple
from pathlib import PurePosixPath

import pytest

from core.cli import main
from core.keep.store import Store
from core.measure import energy, machine_state
from core.show import report

Battery = namedtuple("Battery", "percent secsleft power_plugged")

PMSET_BATTERY = (
    "Now drawing from 'Battery Power'\n"
    " -InternalBattery-0 (id=4653155)\t54%; discharging; 3:12 remaining present: true\n"
)
PMSET_AC = (
    "Now drawing from 'AC Power'\n"
    " -InternalBattery-0 (id=4653155)\t97%; charging; 0:20 remaining present: true\n"
)
PMSET_SETTINGS = " standby              1\n lowpowermode         {}\n sleep                1\n"
THERM_LIMITED = (
    "2026-12-03 10:02:11 +0000 CPU Power notify\n"
    "\tCPU_Scheduler_Limit \t= 100\n\tCPU_Available_CPUs \t= 8\n\tCPU_Speed_Limit \t= 70\n"
)
THERM_QUIET = (
    "Note: No thermal warning level has been recorded\n"
    "Note: No performance warning level has been recorded\n"
    "Note: No CPU power status has been recorded\n"
)


def _glob(files, pattern):
    """The files and the folders that hold them, as glob would find them."""
    paths = {p for path in files for p in [path, *map(str, PurePosixPath(path).parents)]}
    return sorted(
        p for p in paths if fnmatch.fnmatchcase(p, pattern) and p.count("/") == pattern.count("/")
    )


@pytest.fixture
def os_calls(monkeypatch):
    """Every OS call machine_state makes, substituted: commands by their words, files by
    path (a dict that tests fill), no battery, no NVML."""
    commands: dict[str, str | None] = {}
    files: dict[str, str] = {}
    machine_state.clear_cache()
    monkeypatch.setattr(machine_state, "_run", lambda command: commands.get(" ".join(command)))
    monkeypatch.setattr(machine_state, "_read", files.get)
    monkeypatch.setattr(machine_state, "_glob", lambda pattern: _glob(files, pattern))
    monkeypatch.setattr(machine_state, "_battery", lambda: None)
    monkeypatch.setattr(machine_state, "_nvml", lambda: None)
    yield commands, files
    machine_state.clear_cache()


def _mac(monkeypatch, commands, batt, low_power, therm, translated="0"):
    monkeypatch.setattr(machine_state, "_system", lambda: "Darwin")
    monkeypatch.setattr(machine_state, "_mac_version", lambda: "15.1")
    commands.update({
        "pmset -g batt": batt,
        "pmset -g": PMSET_SETTINGS.format(low_power),
        "pmset -g therm": therm,
        "sysctl -n sysctl.proc_translated": translated,
    })  # fmt: skip


def test_a_mac_on_battery_in_low_power_mode_under_rosetta_says_so(monkeypatch, os_calls):
    commands, _ = os_calls
    _mac(monkeypatch, commands, PMSET_BATTERY, 1, THERM_LIMITED, translated="1\n")
    state = machine_state.snapshot()
    assert state["power_source"] == "battery" and state["battery_percent"] == 54
    assert state["low_power_mode"] is True and state["rosetta"] is True
    card = dict(machine_state.describe(state))
    assert card["Power"] == "on battery (54%)"
    assert card["Low Power Mode"] == "on"
    assert card["Thermal"] == "CPU speed limited to 70%"
    assert card["Rosetta"].startswith("yes")
    said = machine_state.warnings(state)
    assert len(said) == 4
    assert said[0].startswith("On battery power (54%): laptops often slow down on battery")
    assert said[1].startswith("Low Power Mode is on")
    assert said[2].startswith("The machine reports thermal pressure (CPU speed limited to 70%)")
    assert said[3].startswith("Python runs translated by Rosetta")


def test_a_mac_on_ac_power_with_low_power_mode_off_gives_no_warning(monkeypatch, os_calls):
    commands, _ = os_calls
    _mac(monkeypatch, commands, PMSET_AC, 0, THERM_QUIET)
    state = machine_state.snapshot()
    card = dict(machine_state.describe(state))
    assert card["Power"] == "on AC power (battery 97%)"
    assert card["Low Power Mode"] == "off"
    assert card["Thermal"] == "no thermal warning"
    assert card["Rosetta"] == "no"
    assert state["thermal_pressure"] is False
    assert machine_state.warnings(state) == []


def test_psutil_comes_first_and_newer_macs_say_powermode(monkeypatch, os_calls):
    commands, _ = os_calls
    _mac(monkeypatch, commands, PMSET_BATTERY, 0, None)
    commands["pmset -g"] = " powermode            1\n"
    monkeypatch.setattr(machine_state, "_battery", lambda: Battery(80.0, -2, True))
    state = machine_state.snapshot()
    assert (state["power_source"], state["battery_percent"]) == ("ac", 80.0)
    assert state["low_power_mode"] is True
    assert state["thermal"] == "not reported" and state["thermal_pressure"] is None


def test_linux_profile_thermal_zones_and_throttle_counts(monkeypatch, os_calls):
    _, files = os_calls
    monkeypatch.setattr(machine_state, "_system", lambda: "Linux")
    zone = "/sys/class/thermal/thermal_zone0"
    files.update({
        "/sys/firmware/acpi/platform_profile": "low-power\n",
        f"{zone}/temp": "97000\n", f"{zone}/type": "x86_pkg_temp\n",
        f"{zone}/trip_point_0_type": "passive\n", f"{zone}/trip_point_0_temp": "95000\n",
        "/sys/devices/system/cpu/cpu0/thermal_throttle/core_throttle_count": "3\n",
        "/sys/devices/system/cpu/cpu0/thermal_throttle/package_throttle_count": "12\n",
        "/sys/class/power_supply/AC/type": "Mains\n",
    })  # fmt: skip
    state = machine_state.snapshot()
    assert state["power_source"] == "ac"  # no battery: mains
    assert state["platform_profile"] == "low-power"
    assert (
        state["thermal"] == "hottest sensor 97 °C (x86_pkg_temp), CPU throttled 12 times since boot"
    )
    assert state["thermal_pressure"] is True
    said = machine_state.warnings(state)
    assert any(line.startswith("The platform profile is 'low-power'") for line in said)
    assert "Low Power Mode" not in dict(machine_state.describe(state))


def test_a_linux_server_with_nothing_to_read_says_not_reported(monkeypatch, os_calls):
    monkeypatch.setattr(machine_state, "_system", lambda: "Linux")
    state = machine_state.snapshot()
    assert state["thermal"] == "not reported"
    assert state["platform_profile"] is None and state["rosetta"] is False
    assert state["nvidia_driver"] is None


class FakeNvml:
    def __init__(self, mask):
        self.mask = mask

    def nvmlDeviceGetCount(self):
        return 1

    def nvmlDeviceGetHandleByIndex(self, index):
        return index

    def nvmlDeviceGetCurrentClocksEventReasons(self, handle):
        return self.mask

    def nvmlSystemGetDriverVersion(self):
        return b"570.86.15"


def test_nvidia_clock_reasons_and_the_driver_come_from_nvml(monkeypatch, os_calls):
    monkeypatch.setattr(machine_state, "_system", lambda: "Linux")
    monkeypatch.setattr(machine_state, "_nvml", lambda: FakeNvml(0x1 | 0x40))  # idle, hot
    state = machine_state.snapshot()
    assert state["gpu_clocks"] == "hardware thermal slowdown"
    assert state["nvidia_driver"] == "570.86.15"
    assert "The GPU's clocks are held back (hardware thermal slowdown)." in (
        machine_state.warnings(state)
    )
    monkeypatch.setattr(machine_state, "_nvml", lambda: FakeNvml(0x1))
    assert machine_state.snapshot()["gpu_clocks"] == "no slowdown"


def test_without_nvml_the_driver_comes_from_proc(monkeypatch, os_calls):
    _, files = os_calls
    monkeypatch.setattr(machine_state, "_system", lambda: "Linux")
    files["/proc/driver/nvidia/version"] = (
        "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  Tue Mar  5 22:23:56 UTC 2024\n"
    )
    assert machine_state.snapshot()["nvidia_driver"] == "550.54.15"


def test_every_failing_call_gives_unknown_never_an_exception(monkeypatch, os_calls):
    def broken(*_args, **_kwargs):
        raise RuntimeError("no")

    for name in ("_run", "_read", "_glob", "_battery", "_nvml", "_system"):
        monkeypatch.setattr(machine_state, name, broken)
    state = machine_state.snapshot()
    assert state["power_source"] == "unknown" and state["thermal"] == "not reported"
    assert dict(machine_state.describe(state))["Power"] == "not reported"
    assert machine_state.warnings(state) == []
    assert machine_state.describe(None) and machine_state.warnings(None) == []


def test_a_real_subprocess_failure_is_none():
    assert machine_state._run(["/nonexistent/pmset", "-g"]) is None
    assert machine_state._read("/nonexistent/platform_profile") is None


def test_the_shared_nvml_is_the_energy_modules(monkeypatch):
    monkeypatch.setattr(energy, "nvml", lambda: "the module")
    assert machine_state._nvml() == "the module"


# -- the state with every run: store, files, report

STATE = {
    "power_source": "battery",
    "battery_percent": 41.0,
    "low_power_mode": True,
    "thermal": "CPU speed limited to 80%",
    "thermal_pressure": True,
    "rosetta": False,
    "macos": "15.1",
    "python": "3.12.1",
}


def test_a_cli_run_stores_the_state_and_its_files_keep_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(machine_state, "snapshot", lambda: dict(STATE))
    url = f"sqlite:///{tmp_path / 's.sqlite'}"
    out = tmp_path / "run.json"
    quick = ["--devices", "cpu", "--point-budget-s", "0.02", "--store", url, "--out", str(out)]
    assert main(["run", "matmul", "size=16", *quick]) == 0
    (run_id,) = Store(url).runs()["run_id"]
    assert Store(url).run_info(run_id)["settings"]["machine_state"] == STATE
    assert json.loads(out.read_text())["settings"]["machine_state"] == STATE
    for fmt in ("json", "parquet"):  # exported from the store, imported elsewhere
        exported = tmp_path / f"all.{fmt}"
        assert main(["export", "--format", fmt, "--out", str(exported), "--store", url]) == 0
        other = f"sqlite:///{tmp_path / f'{fmt}.sqlite'}"
        assert main(["import", str(exported), "--store", other]) == 0
        (back,) = Store(other).runs()["settings"]
        assert back["machine_state"] == STATE
    other = f"sqlite:///{tmp_path / 'one.sqlite'}"  # the run's own --out file, too
    assert main(["import", str(out), "--store", other]) == 0
    assert Store(other).runs()["settings"][0]["machine_state"] == STATE


def test_a_long_cli_run_warns_on_battery_before_it_starts(tmp_path, monkeypatch, capsys):
    from core import cli
    from core.measure import load

    monkeypatch.setattr(machine_state, "snapshot", lambda: dict(STATE))
    monkeypatch.setattr(cli, "LONG_RUN_S", 0.0)  # every run is long
    quiet = types.SimpleNamespace(sentence=lambda: "")
    monkeypatch.setattr(load, "check_machine", lambda: quiet)  # not a second of watching
    quick = ["--devices", "cpu", "--point-budget-s", "0.02", "--no-store"]
    assert main(["run", "matmul", "size=16", *quick]) == 0
    err = capsys.readouterr().err
    assert "warning: On battery power (41%)" in err
    assert "warning: Low Power Mode is on" in err


def test_the_report_card_shows_the_state_after_the_fingerprint():
    card = report.machine_card({"machine": "MacBook", "python": "3.12.1"}, STATE)
    assert card[0] == ("Machine", "MacBook")
    shown = dict(card)
    assert shown["Power"] == "on battery (41%)" and shown["Low Power Mode"] == "on"
    assert shown["macOS"] == "15.1"
    assert [what for what, _ in card].count("Python") == 1  # the fingerprint's, once
    page = report.html_report(report.Report("t", {"machine": "MacBook"}, state=STATE))
    assert "<th>Power</th><td>on battery (41%)</td>" in page


def test_a_list_of_runs_says_what_held_each_back():
    from core.show import report

    run = {"created_at": "2026-12-03T10:00:00", "workload": "matmul", "machine": "MacBook Neo",
           "rows": 4, "label": "Matmul (app)",
           "settings": {"machine_state": {"power_source": "battery", "battery_percent": 40,
                                          "low_power_mode": True, "rosetta": False}}}  # fmt: skip
    assert report.describe_run(run).endswith("· on battery (40%), Low Power Mode")
    run["settings"] = {"machine_state": {"power_source": "ac"}}
    assert report.describe_run(run).endswith("· Matmul (app)")
    run["settings"] = "not a mapping"
    assert report.describe_run(run).endswith("· Matmul (app)")
