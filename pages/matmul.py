"""Matrix multiply: how large must a product be before the accelerator pays off?"""

import streamlit as st

from core.measure.workloads import get
from core.show import charts, crossover
from ui import page, query, runner, sidebar

W = get("matmul")
SIZES = [2**k for k in range(4, 16)]  # 16 .. 32768
settings = sidebar.current()
page.header(W.name, settings)
q = query.binder(W)

variants, baseline = page.variant_picker(q, settings, W.name)
a, b, c = st.columns(3)
same = {"fmt": lambda v: "N" if v == 0 else str(v)}
m = q.choice("Rows M", "m", [0, 64, 256, 1024, 4096], 0, where=a, **same)
k = q.choice("Inner size K", "k", [0, 64, 256, 1024, 4096], 0, where=b, **same)
batch = q.choice("Batch of products", "batch", [1, 4, 16, 64], 1, where=c)
left, right = st.columns([3, 2])
fits = page.sizes_that_fit(W.name, SIZES, {"m": [m], "k": [k], "batch": [batch]}, settings)
low, high = q.span(
    "Matrix size N (N × N unless M or K is set)", "size", fits, (64, 512), where=left,
    help="Sizes that would not fit the memory budget are left off.",
)  # fmt: skip
others = [d for d in sidebar.DTYPES if d != settings.dtype]
also = q.many(
    f"Also compare (besides {settings.dtype})", "also", others, [], where=right,
    help="Each extra dtype times the same sizes again.",
)  # fmt: skip
dtypes = [settings.dtype, *also]
sizes = [s for s in fits if low <= s <= high]


def draw(frame):
    machine = settings.machine
    dash = "dtype" if len(dtypes) > 1 else None
    page.chart(charts.time_vs_x, frame, "size", detail=dash, machine=machine)
    cross = crossover.crossover(frame, "size", group="dtype")
    flops, speed = st.columns(2)
    with flops:
        page.chart(
            charts.throughput_vs_x,
            frame,
            "size",
            "tflops_per_s",
            detail=dash,
            machine=machine,
        )
    with speed:
        page.chart(charts.speedup_vs_x, frame, "size", cross, color="dtype", machine=machine)
        page.sentences(cross)
    page.checks(frame, settings)


grid = {"size": sizes, "m": [m], "k": [k], "batch": [batch], "variant": variants}
runner.run_grid(
    W.name, grid, settings, draw, key="mm", dtypes=dtypes, table=not settings.stage,
    baseline=baseline,
)  # fmt: skip
