"""Overview: what this machine has, a quick duel, and which question each page answers."""

import streamlit as st

from core.measure import devices, memory
from core.measure.workloads import get
from core.show import charts
from ui import page, runner, sidebar

settings = sidebar.current()
st.title("Speedup Explorer")
st.markdown("**When does the accelerator beat the CPU, and by how much?**")
page.one_backend(settings)

st.subheader(f"This machine: {settings.machine}")
infos = devices.describe_all()
for column, info in zip(st.columns(len(infos)), infos, strict=True):
    with column.container(border=True):
        st.markdown(f"**{info.device}** · {info.name}")
        free, total = (
            memory.format_bytes(info.free_memory_bytes),
            memory.format_bytes(info.total_memory_bytes),
        )
        shared = " (unified with the CPU)" if info.unified_memory else ""
        st.caption(f"Memory: {free} free of {total}{shared}")
        st.caption(info.note or f"{info.kind} device {info.index}")
threads = sidebar.default_threads()
st.caption(f"PyTorch {infos[0].torch_version} · CPU threads by default: {threads}")

st.subheader("Quick duel")
DUELS = {
    "matmul": ({"size": [512]}, "Matrix multiply, 512 × 512"),
    "elementwise": ({"op": ["add"], "size": [1_000_000]}, "Add, 1e6 elements"),
}
for column, (name, (grid, what)) in zip(st.columns(len(DUELS)), DUELS.items(), strict=True):

    def draw(frame, what=what):
        page.chart(charts.duel_bars, frame, what)
        st.markdown(charts.speedup_text(frame) or "Nothing to compare against.")

    with column:
        runner.run_grid(name, grid, settings, draw, key=f"duel_{name}", table=False)

st.subheader("What each page answers")
PAGES = {
    "pages/elementwise.py": "elementwise",
    "pages/matmul.py": "matmul",
    "pages/convolution.py": "conv2d",
    "pages/training.py": "train",
    "pages/inference.py": "inference",
    "pages/attention.py": "attention",
}
for path, name in PAGES.items():
    workload = get(name)
    st.page_link(path, label=f"{workload.title}: {workload.question}")
st.page_link("pages/fit.py", label="Will it fit? Memory a model needs, before anything runs")
