"""The memory guard refuses before anything is allocated."""

import dataclasses

import pytest

from core.errors import BadInput
from core.measure import memory, sweep, workloads
from tests.helpers import measure_point


@pytest.mark.parametrize(
    ("text", "expected"),
    [("8GB", 8e9), ("512 MB", 512e6), ("6GiB", 6 * 1024**3), ("1e9", 1e9), (2048, 2048)],
)
def test_sizes_parse(text, expected):
    assert memory.parse_bytes(text) == int(expected)


@pytest.mark.parametrize("text", ["8XB", "", "-1GB", "0", "lots", "1e999GB"])
def test_malformed_budgets_say_what_works(text):
    with pytest.raises(BadInput, match="memory budget"):
        memory.parse_bytes(text)


def test_a_4gb_point_under_a_1mb_budget_is_refused_without_allocating():
    def build(*args):
        raise AssertionError("nothing may be allocated for a refused point")

    workload = dataclasses.replace(workloads.get("elementwise"), build=build)
    params = workload.validate({"op": "exp", "size": 250_000_000})  # 4 GB in float32
    row = measure_point(
        workload, params, sweep.Backend("cpu"), sweep.SweepSettings(memory_budget_bytes=10**6)
    )
    assert row["status"] == "refused"
    assert "needs about 4.1 GB" in row["message"]
    assert "allows 1.0 MB" in row["message"]
    assert row["memory_estimate_bytes"] == pytest.approx(4 * 250_000_000 * 4 + 64 * 1024**2)


def test_the_default_budget_is_a_share_of_free_memory():
    free, _ = memory.devices.memory_info_bytes(memory.torch.device("cpu"))
    assert 0 < memory.default_budget_bytes("cpu") <= free


def test_formatting():
    assert memory.format_bytes(4.2e9) == "4.2 GB"
    assert memory.format_bytes(None) == "unknown"


def test_a_budget_beyond_the_device_is_clamped_to_what_it_has(monkeypatch):
    monkeypatch.setattr(memory.devices, "memory_info_bytes", lambda device: (1000, 4000))
    budget, note = memory.capped_budget(10**30, "cpu")
    assert budget == 4000 and "is more than cpu has" in note
    assert memory.capped_budget(3000, "cpu") == (3000, "")
    assert memory.capped_budget(None, "cpu") == (None, "")
