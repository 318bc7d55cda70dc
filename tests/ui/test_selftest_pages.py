"""The self-test on the pages: the Trust page's button shows a verdict per check and offers
the report, and the Results page shows an imported report like any run. The checks are
replaced by instant ones with known verdicts (the real ones are tested in tests/measure)."""

from __future__ import annotations

import pytest

from core.keep import files, results, store
from core.measure import devices, selftest
from tests.ui.apptest_helpers import assert_clean, open_page

CHECKS = {
    "synchronization": lambda device: (selftest.NOT_APPLICABLE, "the CPU runs synchronously"),
    "dispatch floor": lambda device: (selftest.PASS, "a trivial op takes 5 µs"),
}


@pytest.fixture
def quick_checks(monkeypatch):
    monkeypatch.setattr(selftest, "CHECKS", CHECKS)
    monkeypatch.setattr(selftest.devices, "device_strings", lambda: ["cpu"])


def test_the_trust_page_runs_the_self_test_and_offers_the_report(quick_checks):
    at = open_page("pages/trust.py")
    assert_clean(at)
    at.button(key="trust.selftest").click().run()
    assert_clean(at)
    table = next(e.value for e in at.dataframe if "verdict" in e.value)
    assert list(table["check"]) == ["synchronization", "dispatch floor"]
    assert list(table["verdict"]) == ["not applicable", "pass"]
    assert at.get("download_button")


def test_an_imported_report_shows_on_the_results_page(quick_checks):
    frame = results.to_frame(selftest.rows(selftest.run()), ["check", "verdict"])
    data = files.export_bytes(frame, "json", devices.machine_fingerprint(), {})
    stored = store.Store().import_runs(files.import_file(data, "json"))
    at = open_page("pages/results.py")
    at.multiselect(key="res.runs").set_value(list(stored.stored)).run()
    assert_clean(at)
