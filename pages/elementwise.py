"""Element-wise ops: from what tensor size does the accelerator win?"""

import streamlit as st

from core import units
from core.measure.workloads import OPS, get
from core.show import charts, crossover
from ui import page, query, runner, sidebar

W = get("elementwise")
SIZES = units.decade_stops(1e3, 1e9)
settings = sidebar.current()
page.header(W.name, settings)
q = query.binder(W)

left, middle, right = st.columns([4, 5, 2])
ops = q.many(
    "Ops", "op", OPS, ["add", "mul", "exp", "sin", "relu"], where=left, help=W.param("op").help
)
fits = page.sizes_that_fit(W.name, SIZES, {"op": ops}, settings)
low, high = q.span(
    "Size (elements)", "size", fits, (1_000, 100_000), fmt=units.short, where=middle,
    help="Sizes that would not fit the memory budget are left off.",
)  # fmt: skip
per_decade = q.choice("Points per decade", "ppd", [1, 2], 2, param=int, widget="radio", where=right)
sizes = [s for s in fits if low <= s <= high and (per_decade == 2 or units.is_decade(s))]
sizes = sorted({*sizes, low, high})


def draw(frame):
    machine = settings.machine
    floors = frame.groupby("backend")["dispatch_floor_s"].median().dropna().to_dict()
    page.chart(charts.time_vs_x, frame, "size", detail="op", machine=machine, floor_s=floors)
    cross = crossover.crossover(frame, "size", group="op", unit="elements")
    heat, speed = st.columns(2)
    with heat:
        page.chart(charts.speedup_heatmap, frame, "size", "op", machine=machine)
    with speed:
        page.chart(charts.speedup_vs_x, frame, "size", cross, color="op", machine=machine)
        page.sentences(cross)
    page.chart(charts.throughput_vs_x, frame, "size", "gb_per_s", detail="op", machine=machine)
    page.checks(frame, settings)


runner.run_grid(
    W.name, {"op": ops, "size": sizes}, settings, draw, key="ew", table=not settings.stage
)
