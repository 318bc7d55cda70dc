import json
import math

import altair as alt
import pandas as pd
import pytest

from core.keep.results import to_frame
from core.show import charts
from core.show.crossover import crossover

CPU = "cpu (8 threads)"
GPU = "cuda:0"
# Log axes span the data, not the decades around it.
LOG = {"type": "log", "nice": False, "padding": 10}


# ---------------------------------------------------------------- helpers


def elementwise(scale_s: float = 1e-3, failed: bool = True) -> pd.DataFrame:
    """Two ops, two backends, three sizes; the GPU is twice as fast from 1e5 on."""
    rows = []
    for op in ("sin", "add"):
        for size, cpu_s, gpu_s in [(1e3, 1.0, 4.0), (1e5, 2.0, 1.0), (1e7, 8.0, 4.0)]:
            for backend, median in ((CPU, cpu_s), (GPU, gpu_s)):
                median_s = median * scale_s
                rows.append(
                    {
                        "run_id": "r1",
                        "workload": "elementwise",
                        "op": op,
                        "size": int(size),
                        "backend": backend,
                        "device": backend.split()[0],
                        "threads": 8,
                        "median_s": median_s,
                        "p25_s": 0.9 * median_s,
                        "p75_s": 1.1 * median_s,
                        "first_call_s": 10 * median_s,
                        "n": 20,
                        "flops": size,
                        "bytes": 8 * size,
                        "gb_per_s": 8 * size / median_s / 1e9,
                        "status": "ok",
                    }
                )
    if failed:
        rows.append(
            {
                "run_id": "r1",
                "workload": "elementwise",
                "op": "sin",
                "size": 10**9,
                "backend": GPU,
                "status": "failed",
                "message": "CUDA out of memory",
            }
        )
    return to_frame(rows, ["op", "size"])


def training() -> pd.DataFrame:
    rows = []
    for batch in (8, 32):
        for backend, median_s, peak in ((CPU, 0.4 * batch, None), (GPU, 0.01 * batch, 2**30)):
            rows.append(
                {
                    "workload": "train",
                    "model": "resnet18",
                    "batch": batch,
                    "image_size": 224,
                    "backend": backend,
                    "median_s": median_s,
                    "p25_s": median_s * 0.95,
                    "p75_s": median_s * 1.05,
                    "peak_memory_bytes": peak,
                    "memory_estimate_bytes": 1.5 * 2**30 * batch / 8,
                    "status": "ok",
                }
            )
    rows.append(
        {
            "workload": "train",
            "model": "resnet18",
            "batch": 256,
            "image_size": 224,
            "backend": GPU,
            "memory_estimate_bytes": 48 * 2**30,
            "status": "refused",
            "message": "needs 48 GiB, budget is 8 GiB",
        }
    )
    return to_frame(rows, ["model", "batch", "image_size"])


def layers(spec: dict, data: dict | None = None) -> list[dict]:
    """Every single-mark view in a spec, nested layers and concat panels flattened.

    Altair hoists data that layers share up to their parent, so each view found gets
    the nearest ``data`` above it.
    """
    data = spec.get("data", data)
    found = []
    for key in ("layer", "hconcat", "vconcat", "concat"):
        for child in spec.get(key, []):
            found.extend(layers(child, data))
    if "spec" in spec:
        found.extend(layers(spec["spec"], data))
    if "mark" in spec:
        found.append({**spec, "data": data})
    return found


def mark_type(layer: dict) -> str:
    mark = layer["mark"]
    return mark["type"] if isinstance(mark, dict) else mark


def rows_of(spec: dict, layer: dict) -> list[dict]:
    return spec["datasets"][layer["data"]["name"]]


def by_mark(spec: dict, kind: str) -> list[dict]:
    return [layer for layer in layers(spec) if mark_type(layer) == kind]


def one(spec: dict, kind: str) -> dict:
    found = by_mark(spec, kind)
    assert len(found) == 1, f"expected one {kind} layer, got {len(found)}"
    return found[0]


# ---------------------------------------------------------------- units


@pytest.mark.parametrize(("scale_s", "unit"), [(5e-6, "µs"), (5e-3, "ms"), (5.0, "s")])
def test_time_vs_x_axis_unit(scale_s, unit):
    spec = charts.time_vs_x(elementwise(scale_s), "size").to_dict()
    line = one(spec, "line")
    assert line["encoding"]["y"]["title"] == f"median time ({unit})"


# ---------------------------------------------------------------- time_vs_x


def test_time_vs_x_plots_only_ok_rows_in_display_unit():
    frame = elementwise(1e-3)
    spec = charts.time_vs_x(frame, "size", detail="op", machine="lab box").to_dict()
    assert spec["title"] == "Element-wise ops on lab box"
    line = one(spec, "line")
    enc = line["encoding"]
    assert enc["x"] == {
        "field": "size",
        "scale": LOG,
        "title": "size (elements)",
        "type": "quantitative",
    }
    assert enc["y"]["field"] == "time" and enc["y"]["scale"] == LOG
    assert enc["color"]["field"] == "backend"
    assert enc["strokeDash"]["field"] == "op"
    assert enc["detail"]["field"] == "series"
    rows = rows_of(spec, line)
    assert len(rows) == 12  # the failed row is not a measurement
    assert {r["series"] for r in rows} == {
        f"{b} · {op}" for b in (CPU, GPU) for op in ("sin", "add")
    }
    gpu_sin_1e3 = next(
        r for r in rows if r["backend"] == GPU and r["op"] == "sin" and r["size"] == 1000
    )
    assert gpu_sin_1e3["time"] == pytest.approx(4.0)  # 4e-3 s in ms
    assert "times_s" not in rows[0]


def test_time_vs_x_shows_failed_points_along_the_bottom():
    spec = charts.time_vs_x(elementwise(), "size").to_dict()
    crosses = [p for p in by_mark(spec, "point") if p["mark"].get("shape") == "cross"]
    assert len(crosses) == 1
    assert crosses[0]["encoding"]["y"] == {"value": "height"}
    assert rows_of(spec, crosses[0]) == [
        {
            "op": "sin",
            "size": 10**9,
            "backend": GPU,
            "status": "failed",
            "message": "CUDA out of memory",
        }
    ]


def test_time_vs_x_iqr_band():
    spec = charts.time_vs_x(elementwise(1e-3), "size").to_dict()
    band = one(spec, "area")
    assert band["encoding"]["y"]["field"] == "time_p25"
    assert band["encoding"]["y2"]["field"] == "time_p75"
    row = rows_of(spec, band)[0]
    assert row["time_p75"] > row["time_p25"]


def test_time_vs_x_floor_rules():
    spec = charts.time_vs_x(elementwise(1e-3), "size", floor_s={GPU: 2e-5, CPU: None}).to_dict()
    rule = one(spec, "rule")
    assert rule["encoding"]["y"]["field"] == "time"
    assert rows_of(spec, rule) == [{"backend": GPU, "floor_s": 2e-5, "time": pytest.approx(0.02)}]


def test_linear_axes_on_request():
    spec = charts.time_vs_x(elementwise(), "size", log_x=False, log_y=False).to_dict()
    enc = one(spec, "line")["encoding"]
    assert enc["x"]["scale"] == {"zero": False}
    assert enc["y"]["scale"] == {"zero": False}


def test_every_mark_has_a_tooltip():
    frame = elementwise()
    built = [
        charts.time_vs_x(frame, "size", detail="op", floor_s={GPU: 1e-5}),
        charts.speedup_heatmap(frame, "size", "op"),
        charts.throughput_vs_x(frame, "size"),
        charts.first_call_vs_median(frame, "size"),
        charts.overlay(frame.assign(machine="m1"), "size"),
        charts.threads_chart(frame),
        charts.crossover_rules(crossover(frame, "size"), "size"),
        charts.roofline(frame, {GPU: {"bandwidth_bytes_per_s": 1e12, "peak_flops_per_s": 1e13}}),
        charts.bar_by_batch(training()),
        charts.memory_vs_budget(training(), {GPU: 8 * 2**30}),
    ]
    for chart in built:
        for layer in layers(chart.to_dict()):
            assert layer["encoding"].get("tooltip"), (mark_type(layer), chart)


def test_builders_accept_an_empty_table():
    empty = to_frame([], ["op", "size"])
    for chart in [
        charts.time_vs_x(empty, "size", floor_s={GPU: 1e-5}),
        charts.speedup_heatmap(empty, "size", "op"),
        charts.throughput_vs_x(empty, "size"),
        charts.first_call_vs_median(empty, "size"),
        charts.overlay(empty, "size"),
        charts.threads_chart(empty),
        charts.crossover_rules(crossover(empty, "size"), "size"),
        charts.roofline(empty, {GPU: {"bandwidth_bytes_per_s": 1e12, "peak_flops_per_s": 1e13}}),
        charts.bar_by_batch(to_frame([], ["model", "batch"])),
        charts.memory_vs_budget(to_frame([], ["model", "batch"]), {}),
    ]:
        chart.to_dict()  # validates against the Vega-Lite schema


# ---------------------------------------------------------------- speedup heatmap


def test_speedup_heatmap_cells_and_labels():
    spec = charts.speedup_heatmap(elementwise(), "size", "op", machine="lab box").to_dict()
    assert spec["title"] == f"Element-wise ops: speedup over {CPU} on lab box"
    rect, text = one(spec, "rect"), one(spec, "text")
    colour = rect["encoding"]["color"]
    assert colour["field"] == "speedup"
    assert colour["scale"] == {"type": "log", "scheme": "redyellowgreen", "domainMid": 1}
    assert text["encoding"]["text"]["field"] == "label"
    cells = rows_of(spec, rect)
    assert {c["backend"] for c in cells} == {GPU}  # the baseline is not a cell
    labels = {(c["op"], c["size"]): c["label"] for c in cells}
    assert labels[("sin", 1000)] == "0.25×"
    assert labels[("sin", 100000)] == "2.0×"
    assert labels[("add", 10000000)] == "2.0×"


def test_speedup_heatmap_facets_several_accelerators():
    frame = elementwise(failed=False)
    other = frame[frame["backend"] == GPU].assign(backend="cuda:1")
    spec = charts.speedup_heatmap(pd.concat([frame, other]), "size", "op").to_dict()
    assert spec["facet"]["column"]["field"] == "backend"


def test_drawing_the_element_wise_charts_asks_altair_for_no_slow_conversions(monkeypatch):
    """A slider move waits for these charts: no channel given as shorthand text (Altair
    reads its schema to convert it, 4 ms a time) and no table shared by several marks
    (Altair hashes it as text to move it up to their layer)."""
    from altair.utils import core as altair_core
    from altair.utils.schemapi import SchemaBase

    slow = []
    wrap = altair_core._ChannelCache._wrap_in_channel

    def channel(self, obj, encoding):
        if not isinstance(obj, (SchemaBase, list, tuple)):
            slow.append(f"{encoding}={obj!r}")
        return wrap(self, obj, encoding)

    monkeypatch.setattr(altair_core._ChannelCache, "_wrap_in_channel", channel)
    monkeypatch.setattr(alt.Chart, "_compute_hash", lambda chart: slow.append("hash") or "v")
    frame = elementwise()
    found = crossover(frame, "size", group="op", unit="elements")
    for made in (
        charts.time_vs_x(frame, "size", detail="op", floor_s={CPU: 1e-6}),
        charts.speedup_heatmap(frame, "size", "op"),
        charts.speedup_vs_x(frame, "size", found, color="op"),
        charts.throughput_vs_x(frame, "size", "gb_per_s", detail="op"),
        charts.duel_bars(frame[frame["size"] == 1000], "add"),
    ):
        made.to_dict()
    assert slow == []


# ---------------------------------------------------------------- crossover rules


def test_crossover_rules_sit_at_the_crossover():
    frame = elementwise(failed=False)
    found = crossover(frame, "size", unit="elements")
    spec = charts.crossover_rules(found, "size").to_dict()
    rule = one(spec, "rule")
    assert rule["encoding"]["x"]["field"] == "size"
    assert rule["encoding"]["x"]["scale"] == LOG
    assert "title" not in rule["encoding"]["x"]  # the host chart's title wins
    # GPU 0.25x at 1e3 and 2x at 1e5: ln 0.25 -> ln 2 crosses 2/3 of the way in log10 x.
    # Both ops cross there: one rule, one label naming both.
    [row] = rows_of(spec, rule)
    assert row["size"] == pytest.approx(10 ** (3 + 2 * 2 / 3))
    assert row["label"] == "size ≈ 2.2e4 (sin, add)"
    assert "sin: " in row["sentence"] and "add: " in row["sentence"]


def test_crossover_rules_skip_backends_without_a_crossing():
    found = pd.DataFrame(
        {
            "op": ["a", "b"],
            "backend": [GPU, GPU],
            "crossover_x": [1e4, math.nan],
            "direction": ["wins_above", "always"],
            "sentence": ["a: ...", "b: ..."],
        }
    )
    spec = charts.crossover_rules(found, "size").to_dict()
    assert [r["label"] for r in rows_of(spec, one(spec, "rule"))] == ["size ≈ 1e4"]


def test_crossover_rules_layer_on_a_time_chart():
    frame = elementwise(failed=False)
    chart = charts.time_vs_x(frame, "size") + charts.crossover_rules(
        crossover(frame, "size"), "size"
    )
    spec = chart.to_dict()
    assert len(by_mark(spec, "rule")) == 1
    assert one(spec, "line")["encoding"]["x"]["title"] == "size (elements)"


# ---------------------------------------------------------------- throughput, cold calls


def test_throughput_vs_x_bandwidth():
    spec = charts.throughput_vs_x(elementwise(1e-3), "size", machine="m").to_dict()
    line = one(spec, "line")
    assert line["encoding"]["y"]["field"] == "gb_per_s"
    assert line["encoding"]["y"]["title"] == "achieved bandwidth (GB/s)"
    assert len(rows_of(spec, line)) == 12


def test_throughput_images_per_s_is_computed():
    spec = charts.throughput_vs_x(training(), "batch", metric="images_per_s").to_dict()
    rows = rows_of(spec, one(spec, "line"))
    gpu_32 = next(r for r in rows if r["backend"] == GPU and r["batch"] == 32)
    assert gpu_32["images_per_s"] == pytest.approx(32 / 0.32)


def test_first_call_vs_median():
    spec = charts.first_call_vs_median(elementwise(1e-3, failed=False), "size").to_dict()
    line = one(spec, "line")
    assert line["encoding"]["strokeDash"]["field"] == "call"
    rows = rows_of(spec, line)
    assert {r["call"] for r in rows} == {"first call (cold)", "median (warm)"}
    cold = next(
        r
        for r in rows
        if r["call"] == "first call (cold)"
        and r["backend"] == CPU
        and r["op"] == "sin"
        and r["size"] == 1000
    )
    assert cold["time"] == pytest.approx(10.0)  # 10 ms cold against 1 ms warm


def test_overlay_colours_by_machine():
    frame = pd.concat(
        [
            elementwise(failed=False).assign(machine="laptop"),
            elementwise(2e-3, failed=False).assign(machine="reference A100"),
        ]
    )
    spec = charts.overlay(frame, "size").to_dict()
    line = one(spec, "line")
    assert line["encoding"]["color"]["field"] == "machine"
    assert line["encoding"]["strokeDash"]["field"] == "backend"
    assert {r["machine"] for r in rows_of(spec, line)} == {"laptop", "reference A100"}
    assert spec["title"] == "Element-wise ops across machines"


def test_overlay_falls_back_to_source():
    spec = charts.overlay(elementwise().assign(source="bundled"), "size").to_dict()
    assert one(spec, "line")["encoding"]["color"]["field"] == "source"


# ---------------------------------------------------------------- threads


def test_threads_chart_one_line_per_point_with_ideal_scaling():
    rows = []
    for threads, median_s in [(1, 8e-3), (2, 4.4e-3), (4, 2.5e-3)]:
        for size in (1000, 4000):
            label = "cpu (1 thread)" if threads == 1 else f"cpu ({threads} threads)"
            rows.append(
                {
                    "workload": "matmul",
                    "size": size,
                    "backend": label,
                    "threads": threads,
                    "median_s": median_s * size / 1000,
                    "status": "ok",
                }
            )
    rows.append(
        {
            "workload": "matmul",
            "size": 1000,
            "backend": GPU,
            "threads": 4,
            "median_s": 1e-4,
            "status": "ok",
        }
    )
    spec = charts.threads_chart(to_frame(rows, ["size"])).to_dict()
    line = by_mark(spec, "line")[0]
    assert line["encoding"]["x"]["field"] == "threads"
    assert line["encoding"]["x"]["scale"] == {**LOG, "base": 2}
    data = rows_of(spec, line)
    assert {r["point"] for r in data} == {"matmul size=1000", "matmul size=4000"}
    assert GPU not in {r["backend"] for r in data}
    ideal = by_mark(spec, "line")[1]
    assert ideal["encoding"]["y"]["field"] == "ideal"
    four = next(
        r for r in rows_of(spec, ideal) if r["point"] == "matmul size=1000" and r["threads"] == 4
    )
    assert four["ideal"] == pytest.approx(2.0)  # 8 ms on one thread, over four


# ---------------------------------------------------------------- roofline


def test_roofline_roofs_and_points():
    ceilings = {
        GPU: {"bandwidth_bytes_per_s": 1e12, "peak_flops_per_s": 2e13},
        CPU: {"bandwidth_bytes_per_s": 5e10, "peak_flops_per_s": None},
    }
    frame = elementwise(1e-3, failed=False)
    spec = charts.roofline(frame, ceilings, machine="m").to_dict()
    assert spec["title"] == "Element-wise ops: roofline on m"
    roof_layer, point_layer = one(spec, "line"), one(spec, "point")
    roof = pd.DataFrame(rows_of(spec, roof_layer))
    gpu = roof[roof["backend"] == GPU].sort_values("intensity")
    # Intensity of every point is 1/8; the GPU ridge is 20. Range is /4 .. x4 around both.
    assert list(gpu["intensity"]) == pytest.approx([1 / 32, 20.0, 80.0])
    assert list(gpu["roof_gflops_per_s"]) == pytest.approx([1e12 / 32 / 1e9, 2e4, 2e4])
    cpu = roof[roof["backend"] == CPU].sort_values("intensity")
    # No compute peak: the bandwidth roof alone, never flat.
    assert list(cpu["roof_gflops_per_s"]) == pytest.approx([50 / 32, 50 * 80])
    assert cpu["peak_gflops_per_s"].isna().all()

    points = rows_of(spec, point_layer)
    assert len(points) == 12
    assert point_layer["encoding"]["x"]["scale"] == LOG
    assert point_layer["encoding"]["y"]["title"] == "achieved GFLOP/s"
    gpu_point = next(p for p in points if p["backend"] == GPU and p["size"] == 10**7)
    assert gpu_point["intensity"] == pytest.approx(0.125)
    assert gpu_point["gflops_per_s"] == pytest.approx(1e7 / 4e-3 / 1e9)
    assert gpu_point["pct_of_roof"] == pytest.approx(100 * 2.5 / 125)


# ---------------------------------------------------------------- sanity flags


def flagged() -> pd.DataFrame:
    """The element-wise table with one suspect (also noisy) and one mismatched GPU point."""
    frame = elementwise(1e-3)
    gpu = frame["backend"] == GPU
    frame.loc[gpu & (frame["op"] == "add") & (frame["size"] == 1000), "flags"] = "noisy,suspect"
    frame.loc[gpu & (frame["op"] == "sin") & (frame["size"] == 10**7), "flags"] = "mismatch"
    frame.loc[(frame["backend"] == CPU) & (frame["size"] == 1000), "flags"] = ""
    return frame


def rings(spec: dict) -> list[dict]:
    return [p for p in by_mark(spec, "point") if p["mark"].get("shape") == "diamond"]


def test_worst_flag_orders_by_seriousness():
    assert charts.worst_flag("noisy,suspect") == "suspect"
    assert charts.worst_flag("suspect,mismatch") == "mismatch"
    assert charts.worst_flag("noisy") == "noisy"
    assert charts.worst_flag("") == charts.worst_flag(None) == charts.worst_flag(pd.NA) == ""


def test_time_vs_x_outlines_flagged_points():
    spec = charts.time_vs_x(flagged(), "size", detail="op").to_dict()
    ring = rings(spec)
    assert len(ring) == 1
    assert ring[0]["mark"]["filled"] is False
    stroke = ring[0]["encoding"]["stroke"]
    assert stroke["field"] == "flag"
    assert stroke["legend"]["title"] == "flagged"
    assert stroke["scale"]["domain"] == ["mismatch", "suspect"]  # only those present
    assert "suspect (too fast)" in stroke["legend"]["labelExpr"]
    marked = {(r["op"], r["size"]): (r["flag"], r["flags"]) for r in rows_of(spec, ring[0])}
    assert marked == {
        ("add", 1000): ("suspect", "noisy,suspect"),
        ("sin", 10**7): ("mismatch", "mismatch"),
    }
    assert {"flags", "backend", "time"} <= {t["field"] for t in ring[0]["encoding"]["tooltip"]}
    # Ring and point share the axes: the ring sits on the point.
    point = next(p for p in by_mark(spec, "point") if p["mark"].get("filled") is True)
    assert ring[0]["encoding"]["y"]["field"] == point["encoding"]["y"]["field"] == "time"


def test_unflagged_charts_have_no_flag_layer():
    frame = elementwise(1e-3)
    for chart in (charts.time_vs_x(frame, "size"), charts.throughput_vs_x(frame, "size")):
        assert rings(chart.to_dict()) == []
    assert len(by_mark(charts.bar_by_batch(training()).to_dict(), "bar")) == 1


def test_throughput_and_roofline_outline_flagged_points():
    spec = charts.throughput_vs_x(flagged(), "size").to_dict()
    assert len(rows_of(spec, rings(spec)[0])) == 2
    roofs = {GPU: {"bandwidth_bytes_per_s": 1e12, "peak_flops_per_s": 2e13}}
    spec = charts.roofline(flagged(), roofs).to_dict()
    ring = rings(spec)[0]
    assert ring["encoding"]["x"]["field"] == "intensity"
    assert {r["flag"] for r in rows_of(spec, ring)} == {"suspect", "mismatch"}


def test_bar_by_batch_outlines_flagged_bars():
    frame = training()
    frame.loc[(frame["backend"] == GPU) & (frame["batch"] == 32), "flags"] = "nonfinite"
    for metric in ("median", "images_per_s"):
        spec = charts.bar_by_batch(frame, metric=metric).to_dict()
        solid, outline = by_mark(spec, "bar")
        assert outline["mark"]["fillOpacity"] == 0
        assert outline["encoding"]["stroke"]["field"] == "flag"
        assert outline["encoding"]["xOffset"]["field"] == "backend"
        assert outline["encoding"]["y"]["field"] == solid["encoding"]["y"]["field"]
        assert [(r["batch"], r["flag"]) for r in rows_of(spec, outline)] == [(32, "nonfinite")]
        assert "flags" in {t["field"] for t in solid["encoding"]["tooltip"]}


def test_flag_layers_have_tooltips_and_valid_specs():
    frame = flagged()
    roofs = {GPU: {"bandwidth_bytes_per_s": 1e12, "peak_flops_per_s": 1e13}}
    train = training().assign(flags="noisy")
    for chart in (
        charts.time_vs_x(frame, "size", detail="op"),
        charts.throughput_vs_x(frame, "size"),
        charts.roofline(frame, roofs),
        charts.overlay(frame.assign(machine="m1"), "size"),
        charts.bar_by_batch(train),
        charts.bar_by_batch(pd.concat([train, train.assign(model="vit_b_16")])),
    ):
        for layer in layers(chart.to_dict()):
            assert layer["encoding"].get("tooltip"), (mark_type(layer), chart)


# ---------------------------------------------------------------- training and memory


def test_bar_by_batch_step_time_and_refused_cross():
    spec = charts.bar_by_batch(training(), machine="m").to_dict()
    assert spec["title"] == "Training step: step time on m"
    bar = one(spec, "bar")
    assert bar["encoding"]["x"]["field"] == "batch"
    assert bar["encoding"]["x"]["type"] == "ordinal"
    assert bar["encoding"]["xOffset"]["field"] == "backend"
    assert bar["encoding"]["y"]["title"] == "median step time (s)"
    assert len(rows_of(spec, bar)) == 4
    whiskers = one(spec, "rule")
    assert whiskers["encoding"]["y2"]["field"] == "time_p75"
    cross = one(spec, "point")
    assert cross["mark"]["shape"] == "cross"
    refused = rows_of(spec, cross)
    assert refused == [
        {
            "batch": 256,
            "backend": GPU,
            "time": 0.0,
            "status": "refused",
            "message": "needs 48 GiB, budget is 8 GiB",
        }
    ]
    assert {t["field"] for t in cross["encoding"]["tooltip"]} >= {"message", "status"}


def test_bar_by_batch_images_per_s():
    spec = charts.bar_by_batch(training(), metric="images_per_s").to_dict()
    bar = one(spec, "bar")
    assert bar["encoding"]["y"]["field"] == "images_per_s"
    cpu_8 = next(r for r in rows_of(spec, bar) if r["backend"] == CPU and r["batch"] == 8)
    assert cpu_8["images_per_s"] == pytest.approx(8 / 3.2)
    assert by_mark(spec, "rule") == []  # whiskers are for times only


def test_bar_by_batch_panels_per_model():
    frame = pd.concat([training(), training().assign(model="vit_b_16")])
    spec = charts.bar_by_batch(frame).to_dict()
    assert [panel["title"] for panel in spec["hconcat"]] == ["resnet18", "vit_b_16"]


def test_memory_vs_budget():
    spec = charts.memory_vs_budget(training(), {GPU: 8 * 2**30, CPU: None}, machine="m").to_dict()
    assert spec["title"] == "Training step: memory on m"
    bar = one(spec, "bar")
    assert bar["encoding"]["y"]["title"] == "memory (GiB)"
    assert [r["peak"] for r in rows_of(spec, bar)] == [1.0, 1.0]  # CPU peak unknown
    ticks = rows_of(spec, one(spec, "tick"))
    assert sorted(r["estimate"] for r in ticks) == [1.5, 1.5, 6.0, 6.0, 48.0]
    budget = one(spec, "rule")
    assert rows_of(spec, budget) == [{"backend": GPU, "budget_bytes": 8 * 2**30, "budget": 8.0}]
    cross = rows_of(spec, one(spec, "point"))
    assert [(r["batch"], r["estimate"], r["status"]) for r in cross] == [(256, 48.0, "refused")]


# ---------------------------------------------------------------- speedup views


def test_speedup_vs_x_plots_only_the_accelerator_with_the_even_line_and_crossovers():
    frame = elementwise()
    spec = charts.speedup_vs_x(frame, "size", crossover(frame, "size"), machine="M").to_dict()
    points = rows_of(spec, one(spec, "point"))
    assert {p["backend"] for p in points} == {GPU}
    assert sorted({p["speedup"] for p in points}) == [0.25, 2.0]
    rule_rows = [rows_of(spec, layer) for layer in by_mark(spec, "rule")]
    assert [{"even": 1.0}] in rule_rows
    crossings = [row for rows in rule_rows for row in rows if "sentence" in row]
    assert crossings and all(1e3 < row["size"] < 1e5 for row in crossings)
    assert spec["title"] == f"Speedup over {CPU} on M"


def test_speedup_labels_sit_on_the_time_chart_in_its_unit():
    frame = elementwise(scale_s=1e-3)
    chart = charts.with_speedup_labels(charts.time_vs_x(frame, "size"), frame, "size")
    spec = chart.to_dict()
    labels = rows_of(spec, one(spec, "text"))
    assert {row["label"] for row in labels} == {"0.25×", "2.0×"}
    assert max(row["time"] for row in labels) == pytest.approx(4.0)  # ms, as the chart


def test_duel_bars_and_sentence():
    frame = elementwise(failed=False)
    point = frame[(frame["op"] == "add") & (frame["size"] == 100_000)]
    spec = charts.duel_bars(point, "Add").to_dict()
    assert [row["label"] for row in rows_of(spec, one(spec, "text"))] == ["2 ms", "1 ms"]
    assert charts.speedup_text(point) == f"{GPU} is 2.0× faster than {CPU}"
    slower = frame[(frame["op"] == "add") & (frame["size"] == 1000)]
    assert charts.speedup_text(slower) == f"{GPU} is 4.0× slower than {CPU}"


def test_throughput_in_tflops_is_gflops_over_a_thousand():
    frame = elementwise(failed=False).assign(gflops_per_s=2000.0)
    spec = charts.throughput_vs_x(frame, "size", "tflops_per_s").to_dict()
    assert {row["tflops_per_s"] for row in rows_of(spec, one(spec, "line"))} == {2.0}


# ---------------------------------------------------------------- colours and legends


def colours_in(spec: dict, field: str) -> dict[str, str]:
    """Each label's colour in every view of ``spec`` coloured by ``field``; a label shown
    in two colours fails."""
    found: dict[str, str] = {}
    for layer in layers(spec):
        colour = layer["encoding"].get("color", {})
        if colour.get("field") != field:
            continue
        scale = colour["scale"]
        for label, hue in zip(scale["domain"], scale["range"], strict=True):
            assert found.setdefault(label, hue) == hue, (label, hue, found[label])
    return found


def test_a_backend_has_one_colour_on_every_chart():
    both = elementwise(failed=False)
    gpu_only = both[both["backend"] == GPU].assign(backend="mps")
    two_cpus = pd.concat([both, both.assign(backend="cpu (1 thread)")])
    seen = [
        colours_in(charts.time_vs_x(both, "size").to_dict(), "backend"),
        colours_in(charts.throughput_vs_x(gpu_only, "size").to_dict(), "backend"),
        colours_in(charts.time_vs_x(two_cpus, "size", floor_s={"cuda": 1e-5}).to_dict(), "backend"),
        colours_in(charts.bar_by_batch(training()).to_dict(), "backend"),
        colours_in(charts.duel_bars(two_cpus, "duel").to_dict(), "backend"),
    ]
    for one_chart in seen[1:]:
        for label, hue in one_chart.items():
            assert all(other.get(label, hue) == hue for other in seen), label
    assert seen[1]["mps"] == charts.colour_of("backend", "mps")
    assert seen[2]["cuda"] != seen[2]["cpu (1 thread)"]  # the floor's backend has its own


def test_a_machine_keeps_its_colour_whatever_else_is_drawn():
    frame = elementwise(failed=False)
    neo, here = "MacBook Neo 8 GB (post)", "Intel Xeon (2 cores)"
    alone = charts.overlay(frame.assign(machine=neo), "size").to_dict()
    beside = charts.overlay(
        pd.concat([frame.assign(machine=here), frame.assign(machine=neo)]), "size"
    ).to_dict()
    assert colours_in(alone, "machine")[neo] == colours_in(beside, "machine")[neo]
    # A new machine never takes the colour of one of the post's.
    assert colours_in(beside, "machine")[here] not in {
        charts.colour_of("machine", m) for m in (neo, "Ryzen AI HX 370 (post)")
    }


def test_panels_with_different_labels_share_one_colour_scale():
    # Vega-Lite unites the domains of a shared scale and keeps the first view's range.
    frame = elementwise(failed=False)
    left = charts.overlay(frame.assign(machine="box A"), "size")
    right = charts.overlay(frame.assign(machine="box B"), "size")
    spec = charts.same_colours(alt.concat(left, right)).to_dict()
    scales = {
        tuple(layer["encoding"]["color"]["scale"]["domain"])
        for layer in layers(spec)
        if layer["encoding"].get("color", {}).get("field") == "machine"
    }
    assert scales == {("box A", "box B")}
    assert colours_in(spec, "machine") == {
        m: charts.colour_of("machine", m) for m in ("box A", "box B")
    }


def test_palette_reads_on_light_and_dark_backgrounds():
    def luminance(hex_colour: str) -> float:
        rgb = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
        lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]

    for hue in charts.PALETTE:
        on_white = 1.05 / (luminance(hue) + 0.05)
        on_dark = (luminance(hue) + 0.05) / (luminance("#0e1117") + 0.05)
        assert min(on_white, on_dark) >= 3, hue


def test_legends_are_solid_uncut_and_never_black():
    spec = charts.time_vs_x(flagged(), "size", detail="op").to_dict()
    line = one(spec, "line")
    legend = line["encoding"]["color"]["legend"]
    assert legend["symbolOpacity"] == 1 and legend["labelLimit"] == 0
    for channel in ("strokeDash",):
        shapes = line["encoding"][channel]["legend"]
        assert shapes["symbolFillColor"] == shapes["symbolStrokeColor"] == charts.NEUTRAL
    point = next(p for p in by_mark(spec, "point") if "shape" in p["encoding"])
    assert point["encoding"]["shape"]["legend"]["symbolFillColor"] == charts.NEUTRAL
    train = training().assign(flags="nonfinite")
    for chart in (charts.time_vs_x(flagged(), "size"), charts.bar_by_batch(train)):
        assert "black" not in json.dumps(chart.to_dict()).lower()


def test_log_axes_span_the_data():
    frame = elementwise(failed=False)
    for chart in (charts.time_vs_x(frame, "size"), charts.speedup_vs_x(frame, "size")):
        for layer in layers(chart.to_dict()):
            for axis in ("x", "y"):
                scale = layer["encoding"].get(axis, {}).get("scale", {})
                if scale.get("type") == "log":
                    assert scale["nice"] is False, (mark_type(layer), axis)


# ---------------------------------------------------------------- crossover labels


def crossings(found: dict[str, float]) -> pd.DataFrame:
    """A crossover table with one wins_above row per op at the given size."""
    rows = [
        [op, GPU, at, "wins_above", f"{op}: {GPU} wins from size ≈ {at:g}"]
        for op, at in found.items()
    ]
    return pd.DataFrame(rows, columns=["op", "backend", "crossover_x", "direction", "sentence"])


def test_crossovers_near_one_size_share_one_label():
    found = crossings({"add": 2.0e4, "mul": 2.3e4, "exp": 2.5e4, "sin": 3e6})
    spec = charts.crossover_rules(found, "size", color="op").to_dict()
    rows = rows_of(spec, one(spec, "text"))
    assert [r["label"] for r in rows] == ["size ≈ 2e4 to 2.5e4 (add, mul, exp)", "size ≈ 3e6 (sin)"]
    assert len(rows_of(spec, one(spec, "rule"))) == 2
    folded, alone = rows
    assert folded["hue"] == charts.NEUTRAL  # three ops: no one op's colour
    assert alone["hue"] == charts.colour_of("op", "sin")


def test_neighbouring_crossover_labels_step_down():
    found = crossings({"add": 1e4, "mul": 2e4, "exp": 4e4, "sin": 8e4})
    spec = charts.crossover_rules(found, "size", color="op").to_dict()
    heights = [r["label_y"] for r in rows_of(spec, one(spec, "text"))]
    assert len(set(heights[:3])) == 3  # no two neighbours on one line
    text = one(spec, "text")
    assert text["encoding"]["y"] == {"field": "label_y", "type": "quantitative", "scale": None}


def test_two_labels_of_one_chart_never_share_a_colour():
    # These two hash to the same colour; a chart that shows both must tell them apart.
    first, second = "cpu (1 thread) · eager", "cpu (1 thread) · channels_last"
    assert charts.colour_of("backend", first) == charts.colour_of("backend", second)
    chosen = charts.distinct_colours("backend", [first, second, "cuda"])
    assert len(set(chosen.values())) == 3
    assert chosen["cuda"] == charts.colour_of("backend", "cuda")  # fixed colours stay
    # The same labels, in any order, get the same colours.
    assert charts.distinct_colours("backend", [second, "cuda", first]) == chosen
