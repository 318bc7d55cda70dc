"""Sweeps: tidy columns, alternating backends, stops, budgets, and the three non-ok statuses."""

import dataclasses
from types import SimpleNamespace

import pandas as pd
import pytest
import torch

from core.errors import BadInput
from core.keep import results
from core.measure import sweep, workloads
from core.measure.workloads.base import Prepared
from tests.helpers import measure_point, run_sweep

REQUIRED = [
    "run_id",
    "timestamp",
    "workload",
    "device",
    "device_name",
    "dtype",
    "threads",
    "median_s",
    "p25_s",
    "p75_s",
    "min_s",
    "mean_s",
    "n",
    "first_call_s",
    "flops",
    "bytes",
    "gflops_per_s",
    "gb_per_s",
    "peak_memory_bytes",
    "max_rel_err",
    "status",
    "message",
]


def run(workload, grid, backends, settings, **options):
    """``plan`` and ``measure`` into the tidy table, as the CLI does."""
    rows = run_sweep(workload, grid, backends, settings, **options)
    return results.to_frame(rows, workload.param_names)


FAST = sweep.SweepSettings(timing=sweep.timing.TimingSettings(budget_s=0.02))
TWO_CPUS = [sweep.Backend("cpu", 1), sweep.Backend("cpu", 2)]


def test_a_grid_becomes_one_tidy_row_per_point_and_backend():
    frame = run(
        workloads.get("elementwise"),
        {"op": ["add", "sin"], "size": [1_000, 10_000]},
        TWO_CPUS,
        FAST,
    )
    assert len(frame) == 8
    for column in [*REQUIRED, "op", "size"]:
        assert column in frame.columns
    assert set(frame["status"]) == {"ok"}
    assert frame["run_id"].nunique() == 1
    assert set(frame["backend"]) == {"cpu (1 thread)", "cpu (2 threads)"}
    assert set(frame["threads"]) == {1, 2}
    ok = frame.iloc[0]
    assert ok["gflops_per_s"] == ok["flops"] / ok["median_s"] / 1e9


def test_backends_alternate_order_point_by_point():
    frame = run(workloads.get("matmul"), {"size": [16, 32, 48]}, TWO_CPUS, FAST)
    order = list(frame["threads"])
    assert order == [1, 2, 2, 1, 1, 2]


def test_a_stop_returns_the_finished_rows():
    seen = []
    frame = run(
        workloads.get("matmul"),
        {"size": [16, 32, 48, 64]},
        TWO_CPUS,
        FAST,
        on_row=lambda task, row: seen.append((task.params["size"], row["threads"])),
        should_stop=lambda: len(seen) >= 3,
    )
    assert len(frame) == 3
    assert seen == [(16, 1), (16, 2), (32, 2)]


def test_a_budget_is_a_promise_points_that_do_not_fit_are_skipped_and_listed():
    workload = workloads.get("matmul")
    tasks = sweep.plan(workload, {"size": [16, 32]}, TWO_CPUS, FAST)
    done = sweep.measure(tasks, FAST, budget_s=1e-9)
    assert done.rows == []
    assert [[t.params["size"] for t in point] for point in done.skipped] == [[16, 16], [32, 32]]
    roomy = sweep.measure(tasks, FAST, budget_s=3600)
    assert len(roomy.rows) == 4 and roomy.skipped == []


def test_with_a_budget_each_group_gets_a_share_and_its_cheapest_points_go_first():
    workload = workloads.get("matmul")
    big = sweep.plan(workload, {"size": [64, 16]}, [sweep.Backend("cpu", 1)], FAST, group="a")
    small = sweep.plan(workload, {"size": [32]}, [sweep.Backend("cpu", 1)], FAST, group="b")
    done = sweep.measure([*big, *small], FAST, budget_s=3600)
    assert [row["size"] for row in done.rows] == [16, 64, 32]


def test_a_plan_costs_each_point_once_and_keys_leave_the_memory_budget_out():
    workload = workloads.get("matmul")
    calls = []

    def cost(params, dtype):
        calls.append(params["size"])
        return workloads.get("matmul").cost(params, dtype)

    counted = dataclasses.replace(workload, cost=cost)
    tasks = sweep.plan(counted, {"size": [16, 32]}, TWO_CPUS, FAST)
    assert calls == [16, 32] and len(tasks) == 4
    tight = dataclasses.replace(FAST, memory_budget_bytes=1000)
    refused = sweep.plan(workload, {"size": [16, 32]}, TWO_CPUS, tight)
    assert {t.verdict[0] for t in refused} == {"refused"}
    assert [t.key for t in refused] == [
        t.key for t in sweep.plan(workload, {"size": [16, 32]}, TWO_CPUS, FAST)
    ]


def _workload_with_build(build):
    return dataclasses.replace(workloads.get("matmul"), build=build)


def test_an_exception_becomes_a_failed_row_and_the_sweep_goes_on():
    calls = []

    def build(params, device, dtype):
        calls.append(params["size"])
        if params["size"] == 16:
            raise ValueError("broken on purpose")
        return Prepared(fn=lambda: None)

    frame = run(_workload_with_build(build), {"size": [16, 32]}, [sweep.Backend("cpu")], FAST)
    assert list(frame["status"]) == ["failed", "ok"]
    assert "broken on purpose" in frame["message"].iloc[0]


def test_a_missing_kernel_becomes_a_skipped_row():
    def build(params, device, dtype):
        raise RuntimeError("\"addmm\" not implemented for 'Half'")

    frame = run(_workload_with_build(build), {"size": [16]}, [sweep.Backend("cpu")], FAST)
    assert frame["status"].iloc[0] == "skipped"
    assert "not implemented" in frame["message"].iloc[0]


def test_a_wrong_output_is_flagged_as_a_mismatch():
    def build(params, device, dtype):
        x = torch.ones(4)
        return Prepared(fn=lambda: x, check=lambda: (x, x * 1.5))

    frame = run(_workload_with_build(build), {"size": [16]}, [sweep.Backend("cpu")], FAST)
    assert frame["status"].iloc[0] == "ok"
    assert "mismatch" in frame["flags"].iloc[0]
    assert frame["max_rel_err"].iloc[0] > 0.3


def test_nan_output_is_flagged():
    def build(params, device, dtype):
        x = torch.tensor([1.0, float("nan")])
        return Prepared(fn=lambda: x, check=lambda: (x, torch.ones(2)))

    frame = run(_workload_with_build(build), {"size": [16]}, [sweep.Backend("cpu")], FAST)
    assert "nonfinite" in frame["flags"].iloc[0]


def test_speedup_is_baseline_over_row():
    frame = run(workloads.get("matmul"), {"size": [32]}, TWO_CPUS, FAST)
    with_speedup = results.add_speedup(frame)
    one = with_speedup[with_speedup["threads"] == 1].iloc[0]
    two = with_speedup[with_speedup["threads"] == 2].iloc[0]
    assert one["speedup"] == 1.0
    assert two["speedup"] == one["median_s"] / two["median_s"]


def test_cpu_backend_labels_name_the_thread_count(monkeypatch):
    monkeypatch.setattr(sweep.devices, "cpu_core_counts", lambda: (8, 8))
    assert sweep.Backend("cpu", 1).label == "cpu (1 thread)"
    assert sweep.Backend("cpu", 8).label == "cpu (8 threads)"
    assert [b.label for b in sweep.parse_backends("cpu:1,cpu:4")] == [
        "cpu (1 thread)",
        "cpu (4 threads)",
    ]


def test_the_same_backend_named_twice_is_timed_once():
    backends = sweep.parse_backends("cpu:2,cpu:2,cpu:1")
    assert [b.label for b in backends] == ["cpu (2 threads)", "cpu (1 thread)"]


def test_cpu_rows_never_claim_a_cold_cache():
    settings = dataclasses.replace(
        FAST, timing=sweep.timing.TimingSettings(budget_s=0.02, cold_cache=True)
    )
    frame = run(workloads.get("matmul"), {"size": [16]}, [sweep.Backend("cpu")], settings)
    assert not frame["cold_cache"].iloc[0]


def test_a_points_estimate_follows_the_timing_protocol_and_the_guard():
    workload = workloads.get("matmul")
    cpu = [sweep.Backend("cpu")]

    def estimate_s(settings):
        (task,) = sweep.plan(workload, {"size": [1024]}, cpu, settings)
        return task.estimate_s

    plain = estimate_s(FAST)
    pipelined = dataclasses.replace(FAST, timing=dataclasses.replace(FAST.timing, pipelined=True))
    assert plain > 0
    assert estimate_s(pipelined) > plain
    assert estimate_s(dataclasses.replace(FAST, memory_budget_bytes=1000)) == 0.0


def test_thread_counts_beyond_the_logical_cores_are_warned_and_absurd_ones_cut(monkeypatch):
    monkeypatch.setattr(sweep.devices, "cpu_core_counts", lambda: (2, 4))
    notes = []
    backends = sweep.parse_backends("cpu:1,cpu:8,cpu:100000", notes=notes)
    assert [b.threads for b in backends] == [1, 8, 16]
    assert notes[0].startswith("8 CPU threads on 4 logical cores: the extra threads wait")
    assert notes[1] == "100000 CPU threads asked for, but this machine has 4 cores; using 16"
    assert sweep.capped_threads(3) == (3, "")


def test_the_default_cpu_baseline_is_the_physical_performance_cores(monkeypatch):
    monkeypatch.setattr(sweep.devices, "cpu_core_counts", lambda: (6, 12))
    monkeypatch.setattr(sweep.devices.platform, "system", lambda: "Linux")
    assert sweep.devices.cpu_threads() == 6
    assert sweep.Backend("cpu").resolved_threads == 6
    monkeypatch.setattr(sweep.devices.platform, "system", lambda: "Darwin")
    monkeypatch.setattr(sweep.devices.mps_adapter, "core_split", lambda: (2, 4))
    assert sweep.devices.cpu_threads() == 2  # the A18 Pro's two performance cores


def test_a_grid_is_counted_before_it_is_built_and_refused_above_the_limit():
    conv = workloads.get("conv2d")
    many = {name: list(range(1, 101)) for name in ("batch", "channels", "size", "kernel")}
    with pytest.raises(BadInput, match="100,000,000 points"):
        sweep.expand_grid(conv, many)
    assert len(sweep.expand_grid(conv, {"channels": [8, 8, 16]})) == 2  # repeats measured once


def test_estimates_learn_from_what_this_machine_measured_before():
    workload = workloads.get("matmul")
    settings = sweep.SweepSettings()
    backend = sweep.Backend("cpu", 1)
    (task,) = sweep.plan(workload, {"size": [256]}, [backend], settings)
    rough_s = task.estimate_s
    # Earlier points of the same kind took three times their rough estimate.
    history = pd.DataFrame([
        {"workload": "matmul", "backend": backend.label, "dtype": "float32",
         "flops": t.cost.flops, "bytes": t.cost.bytes_moved, "wall_s": 3 * t.estimate_s}
        for t in sweep.plan(workload, {"size": [128, 256, 512]}, [backend], settings)
    ])  # fmt: skip
    (learned,) = sweep.learned([task], history, settings)
    assert learned.estimate_s == pytest.approx(3 * rough_s)
    # Another backend's history says nothing about this one, nor do points measured busy.
    other = history.assign(backend="cpu (2 threads)")
    assert sweep.learned([task], other, settings)[0].estimate_s == rough_s
    busy = history.assign(flags="busy")
    assert sweep.learned([task], busy, settings)[0].estimate_s == rough_s


def test_a_point_measured_before_is_expected_to_take_what_it_took_per_round():
    workload = workloads.get("matmul")
    settings = sweep.SweepSettings()
    backend = sweep.Backend("cpu", 1)
    small, middle, large = sweep.plan(workload, {"size": [128, 256, 512]}, [backend], settings)
    # Small points cost their set-up and check (here their rough estimate), large ones
    # four times it; the large one was measured in two rounds.
    history = pd.DataFrame([
        {"workload": "matmul", "backend": backend.label, "dtype": "float32",
         "flops": t.cost.flops, "bytes": t.cost.bytes_moved, "wall_s": ratio * t.estimate_s,
         "rounds": rounds}
        for t, ratio, rounds in ((small, 1.0, 1), (large, 8.0, 2))
    ])  # fmt: skip
    learned = {t.params["size"]: t.estimate_s for t in sweep.learned(
        [small, middle, large], history, settings)}  # fmt: skip
    assert learned[128] == pytest.approx(small.estimate_s)
    assert learned[512] == pytest.approx(4 * large.estimate_s)
    assert middle.estimate_s < learned[256] < 4 * middle.estimate_s  # between its neighbours


def _matmul_history(tasks, rows) -> pd.DataFrame:
    """History rows for matmul ``tasks`` on their backend: ``rows`` gives, task by task, the
    columns that differ (``ratio`` of wall time to the rough estimate, flags, ...)."""
    return pd.DataFrame([
        {"workload": "matmul", "backend": t.backend.label, "dtype": "float32",
         "flops": t.cost.flops, "bytes": t.cost.bytes_moved,
         "wall_s": row.get("ratio", 1.0) * t.estimate_s + row.get("extra_s", 0.0),
         **{name: value for name, value in row.items() if name not in ("ratio", "extra_s")}}
        for t, row in zip(tasks, rows, strict=True)
    ])  # fmt: skip


def test_an_estimate_leaves_out_what_a_first_call_set_up_once():
    # A process's first cuBLAS call took 0.4 s more than a steady one; the next run's
    # point will not pay it again.
    settings = sweep.SweepSettings()
    (task,) = sweep.plan(workloads.get("matmul"), {"size": [256]}, [sweep.Backend("cpu", 1)],
                         settings)  # fmt: skip
    first = {"ratio": 3.0, "extra_s": 0.4 - 0.001, "first_call_s": 0.4, "median_s": 0.001}
    history = _matmul_history([task], [first])
    assert sweep.learned([task], history, settings)[0].estimate_s == pytest.approx(
        3 * task.estimate_s
    )
    # A compiled point's first call is its compiling, which the next point does again.
    (compiled,) = sweep.plan(workloads.get("matmul"), {"size": [256], "variant": ["compile"]},
                             [sweep.Backend("cpu", 1)], settings)  # fmt: skip
    if compiled.verdict[0]:  # refused here (no torch.compile for this Python): nothing to learn
        pytest.skip(compiled.verdict[1])
    history = _matmul_history([compiled], [{**first, "variant": "compile"}])
    assert sweep.learned([compiled], history, settings)[0].estimate_s == pytest.approx(
        3 * compiled.estimate_s + 0.399
    )


def test_a_noisy_point_counts_halfway_to_its_quiet_neighbours():
    # A point still noisy spent its whole budget, which the next run it may not: its
    # time counts halfway (in logs) to what the quiet points beside it say.
    settings = sweep.SweepSettings()
    tasks = sweep.plan(workloads.get("matmul"), {"size": [128, 256, 512]},
                       [sweep.Backend("cpu", 1)], settings)  # fmt: skip
    history = _matmul_history(tasks, [{}, {"ratio": 16.0, "flags": "noisy"}, {}])
    learned = sweep.learned(tasks, history, settings)
    assert learned[1].estimate_s == pytest.approx(4 * tasks[1].estimate_s)
    assert learned[0].estimate_s == pytest.approx(tasks[0].estimate_s)
    # Measured quiet as well, the point goes by that alone.
    quiet_too = pd.concat([history, _matmul_history(tasks[1:2], [{"ratio": 2.0}])])
    assert sweep.learned(tasks, quiet_too, settings)[1].estimate_s == pytest.approx(
        2 * tasks[1].estimate_s
    )


def test_a_point_that_spent_its_budget_short_of_its_precision_counts_halfway():
    # 40 repeats could have settled the median to 2% and did not: the next run the point
    # may stop in a tenth of its budget. With 5 repeats it never could: it will spend its
    # budget again, so its time stands.
    settings = sweep.SweepSettings()
    tasks = sweep.plan(workloads.get("matmul"), {"size": [128, 256, 512]},
                       [sweep.Backend("cpu", 1)], settings)  # fmt: skip
    settled = {"n": 25, "rel_precision": 0.01}
    unsettled = {"ratio": 16.0, "n": 40, "rel_precision": 0.03}
    history = _matmul_history(tasks, [settled, unsettled, settled])
    assert sweep.learned(tasks, history, settings)[1].estimate_s == pytest.approx(
        4 * tasks[1].estimate_s
    )
    few = _matmul_history(tasks, [settled, {**unsettled, "n": 5}, settled])
    assert sweep.learned(tasks, few, settings)[1].estimate_s == pytest.approx(
        16 * tasks[1].estimate_s
    )


def test_estimates_learn_each_op_apart():
    workload = workloads.get("elementwise")
    settings = sweep.SweepSettings()
    backend = sweep.Backend("cpu", 1)
    grid = {"op": ["add", "exp"], "size": [1000, 10_000, 100_000]}
    # exp took ten times its rough estimate at every size, add its rough estimate.
    history = pd.DataFrame([
        {"workload": "elementwise", "op": t.params["op"], "backend": backend.label,
         "dtype": "float32", "flops": t.cost.flops, "bytes": t.cost.bytes_moved,
         "wall_s": (10 if t.params["op"] == "exp" else 1) * t.estimate_s}
        for t in sweep.plan(workload, grid, [backend], settings)
    ])  # fmt: skip
    larger = sweep.plan(workload, {"op": ["add", "exp"], "size": [1_000_000]}, [backend], settings)
    learned = sweep.learned(larger, history, settings)
    pairs = zip(learned, larger, strict=True)
    ratios = {t.params["op"]: t.estimate_s / r.estimate_s for t, r in pairs}
    assert ratios == {"add": pytest.approx(1.0), "exp": pytest.approx(10.0)}


def _noisy_on_a_fake_clock(monkeypatch, count: int, estimate_s: float, take_s, **options):
    """Measure ``count`` points on a fake clock, each estimated at ``estimate_s``, each
    taking ``take_s(its settings)`` seconds and staying noisy: (the clock at the end,
    what measure returned, the tasks)."""
    workload, settings = workloads.get("elementwise"), sweep.SweepSettings()
    sizes = [1000 * (i + 1) for i in range(count)]
    tasks = sweep.plan(workload, {"op": ["add"], "size": sizes}, [sweep.Backend("cpu", 1)],
                       settings)  # fmt: skip
    clock_s = [0.0]

    def noisy(task, settings_, *_args, **_kwargs):
        clock_s[0] += take_s(settings_)
        row = sweep.base_row(task, settings_)
        return {**row, "status": "ok", "flags": "noisy", "times_s": "[1, 2, 3]", "median_s": 2.0}

    monkeypatch.setattr(sweep, "measure_task", noisy)
    monkeypatch.setattr(sweep, "_estimate_of", lambda point: estimate_s)
    monkeypatch.setattr(sweep, "time", SimpleNamespace(perf_counter=lambda: clock_s[0]))
    done = sweep.measure(tasks, settings, **options)
    return clock_s[0], done, tasks


def test_a_later_round_never_runs_past_what_the_rounds_have_left(monkeypatch):
    # A noisy point repeats until its budget is spent, however short its estimate: in a
    # later round, its budget is what the rounds have left.
    end_s, done, _ = _noisy_on_a_fake_clock(monkeypatch, 9, 0.3, lambda s: s.timing.budget_s)
    # The first pass took 9 s; the rounds have 4.5 s, and the last one started gets 0.5 s.
    assert end_s == pytest.approx(9 * (1 + sweep.ROUNDS_SHARE))
    assert done.rounds_share == pytest.approx(1.0)  # what a page learns its rounds from


def test_without_a_budget_later_rounds_take_a_share_of_the_first_pass(monkeypatch):
    end_s, _, tasks = _noisy_on_a_fake_clock(monkeypatch, 10, 1.0, lambda _: 1.0)
    # The first pass took 10 s; rounds took what the share of it allows, no more.
    assert end_s == 10 + 10 * sweep.ROUNDS_SHARE
    # What a page offers counts half of that: rounds take all of it or none.
    one_second = [dataclasses.replace(task, estimate_s=1.0) for task in tasks]
    assert sweep.run_estimate_s(one_second) == 10 * (1 + sweep.ROUNDS_SHARE / 2)


def test_each_backends_one_time_set_up_comes_before_its_first_point(monkeypatch):
    # A device's context and its dispatch floor are set up once a process (0.1-0.35 s on
    # an H200's first CUDA point). Inside the first point, its wall time carried them, and
    # the next run's estimate of that point expected them again.
    events = []

    def floor(device, threads=None):
        events.append(("floor", device, threads))

    def point(task, *_args, **_kwargs):
        events.append(("point", task.backend.label))
        return sweep.base_row(task, settings)

    monkeypatch.setattr(sweep.timing, "dispatch_floor_s", floor)
    monkeypatch.setattr(sweep, "measure_task", point)
    workload, settings = workloads.get("matmul"), sweep.SweepSettings()
    backends = [sweep.Backend("cpu", 1), sweep.Backend("cpu", 2)]
    tasks = sweep.plan(workload, {"size": [16, 32]}, backends, settings)
    refused = dataclasses.replace(tasks[0], backend=sweep.Backend("cpu", 3),
                                  verdict=("refused", "too large"))  # fmt: skip
    done = sweep.measure([*tasks, refused], settings)
    # Both backends set up, once each, before any point; a refused task sets up nothing.
    assert sorted(events[:2]) == [("floor", "cpu", 1), ("floor", "cpu", 2)]
    assert [e[0] for e in events[2:]] == ["point"] * 5
    assert done.setup_s >= 0.0


def test_later_rounds_end_when_the_time_a_page_offered_is_up(monkeypatch):
    # A page offered 12 s for ten 1 s points: the rounds' share would run to 15 s.
    end_s, done, _ = _noisy_on_a_fake_clock(monkeypatch, 10, 1.0, lambda _: 1.0, rounds_until=12)
    assert end_s == 12
    # What the next run's rounds are priced from is their share of what they were allowed
    # by the first pass, not of what the offer left them.
    assert done.rounds_share == pytest.approx(2 / (10 * sweep.ROUNDS_SHARE))


def test_every_measured_row_records_its_wall_time():
    row = measure_point(workloads.get("matmul"), {"size": 16}, sweep.Backend("cpu", 1), FAST)
    assert row["wall_s"] > 0
