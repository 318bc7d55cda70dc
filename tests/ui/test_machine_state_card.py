"""The sidebar's machine card shows the machine's state now, and what would slow a long run."""

from core.measure import machine_state
from tests.ui.apptest_helpers import assert_clean, open_page, texts
from ui import sidebar

ON_BATTERY = {
    "power_source": "battery",
    "battery_percent": 23.0,
    "low_power_mode": True,
    "thermal": "no thermal warning",
    "thermal_pressure": False,
    "rosetta": False,
    "macos": "15.1",
    "torch": "2.11.0",
}


def test_the_machine_card_shows_power_heat_and_the_warnings(monkeypatch):
    monkeypatch.setattr(machine_state, "snapshot", lambda: dict(ON_BATTERY))
    sidebar._state_now.clear()  # the card keeps a state for 30 s
    try:
        at = open_page("pages/results.py")
    finally:
        sidebar._state_now.clear()
    assert_clean(at)
    (card,) = [e for e in at.sidebar.expander if e.label == "Machine state"]
    shown = texts(card.caption)
    assert "Power: on battery (23%)" in shown
    assert "Low Power Mode: on" in shown
    assert "Thermal: no thermal warning" in shown
    assert "macOS: 15.1" in shown and "Rosetta: no" in shown
    warned = texts(card.warning)
    assert "On battery power (23%)" in warned and "Low Power Mode is on" in warned
