"""Attention: from what sequence length does the accelerator win, with which kernel?"""

import streamlit as st

from core.measure import sweep
from core.measure.workloads import get
from core.show import charts, crossover
from ui import page, query, runner, sidebar

W = get("attention")
SEQ_LENS = [2**k for k in range(4, 17)]  # 16 .. 65536
HEADS, HEAD_DIMS, BATCHES = [1, 2, 4, 8, 16, 32, 64], [32, 64, 128, 256], [1, 2, 4, 8, 16, 32]
settings = sidebar.current()
page.header(W.name, settings)
q = query.binder(W)

a, b, c, d, e = st.columns([4, 1, 1, 1, 1])
heads = q.choice("Heads", "heads", HEADS, 8, where=b)
head_dim = q.choice("Head size", "head_dim", HEAD_DIMS, 64, where=c)
batch = q.choice("Batch", "batch", BATCHES, 1, where=d)
causal = q.choice("Causal mask", "causal", ["no", "yes"], "no", widget="radio", where=e)
others = {"heads": [heads], "head_dim": [head_dim], "batch": [batch], "causal": [causal]}
budget = min((v for v in settings.budgets().values() if v is not None), default=None)
fits = sweep.sizes_that_fit(W, SEQ_LENS, others, budget, settings.dtype, size_param="seq_len")
low, high = q.span(
    "Sequence length (tokens)", "seq_len", fits, (64, 512), where=a,
    help="Lengths whose memory bound (the math kernel's s × s scores) would not fit the "
    "memory budget are left off.",
)  # fmt: skip
others_dtypes = [t for t in sidebar.DTYPES if t != settings.dtype]
also = q.many(
    f"Also compare (besides {settings.dtype})", "also", others_dtypes, [],
    help="Each extra dtype times the same lengths again; the kernel may change with it.",
)  # fmt: skip
dtypes = [settings.dtype, *also]
grid = {"seq_len": [s for s in fits if low <= s <= high], **others}


def draw(frame):
    machine, dash = settings.machine, "dtype" if len(dtypes) > 1 else None
    page.chart(charts.time_vs_x, frame, "seq_len", detail=dash, machine=machine)
    cross = crossover.crossover(frame, "seq_len", group="dtype", unit="tokens")
    flops, speed = st.columns(2)
    with flops:
        page.chart(
            charts.throughput_vs_x, frame, "seq_len", "tflops_per_s", detail=dash, machine=machine
        )
    with speed:
        page.chart(charts.speedup_vs_x, frame, "seq_len", cross, color="dtype", machine=machine)
        page.sentences(cross)
    if "implementation" in frame:  # per point: the kernel changes with length and dtype
        with page.folded("Kernel torch picked"):
            on = frame["backend"] + (" · " + frame["dtype"] if dash else "")
            picked = frame.assign(on=on).pivot_table(
                values="implementation", index="seq_len", columns="on", aggfunc="first"
            )
            st.caption("The kernel torch's dispatcher picked for each point and backend.")
            st.dataframe(picked.replace("", "not known"))
    page.checks(frame, settings)


runner.run_grid(W.name, grid, settings, draw, key="attn", dtypes=dtypes, table=not settings.stage)
