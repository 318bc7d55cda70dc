"""Conv2d: how do channels, kernel size and input size change the accelerator's lead?"""

import streamlit as st

from core.measure.workloads import get
from core.show import charts
from ui import page, query, runner, sidebar

W = get("conv2d")
CHANNELS, KERNELS = [8, 16, 32, 64, 128, 256, 512], [1, 3, 5, 7, 9, 11]
INPUTS, BATCHES = [8, 16, 32, 64, 128, 256, 512], [1, 2, 4, 8, 16, 32]
TABS = {"channels": "Channel scaling", "kernels": "Kernel × input size"}
settings = sidebar.current()
page.header(W.name, settings, title="Convolution")
q = query.binder(W)
variants, baseline = page.variant_picker(q, settings, W.name)
left, right, _ = st.columns([2, 1, 2])
out = q.choice("Output channels", "out_channels", [0, *CHANNELS], 0, where=left,
               fmt=lambda v: "as many as in" if v == 0 else str(v))  # fmt: skip
stride = q.choice("Stride", "stride", [1, 2, 4], 1, where=right)
shape = {"out_channels": [out], "stride": [stride], "variant": variants}
view, tabs = query.tabs("view", TABS, "channels")


def channel_scaling():
    a, b, c, d = st.columns([3, 1, 1, 1])
    low, high = q.span("Input channels", "channels", CHANNELS, (8, 64), where=a)
    kernel = q.choice("Kernel", "kernel", KERNELS, 3, where=b)
    size = q.choice("Input H = W", "size", INPUTS, 32, where=c)
    batch = q.choice("Batch", "batch", BATCHES, 1, where=d)
    channels = [ch for ch in CHANNELS if low <= ch <= high]
    grid = {"channels": channels, "kernel": [kernel], "size": [size], "batch": [batch], **shape}

    def draw(frame):
        timed = charts.time_vs_x(frame, "channels", machine=settings.machine)
        page.chart(charts.with_speedup_labels, timed, frame, "channels")
        page.chart(
            charts.throughput_vs_x, frame, "channels", "gflops_per_s", machine=settings.machine
        )
        page.checks(frame, settings)

    runner.run_grid(W.name, grid, settings, draw, key="conv_ch", table=not settings.stage,
                    baseline=baseline)  # fmt: skip


def kernel_by_input():
    a, b, c = st.columns([2, 3, 1])
    kernels = q.many("Kernels", "kernels", KERNELS, [3, 5, 7], param="kernel", where=a)
    sizes = q.many("Input sizes (H = W)", "sizes", INPUTS, [16, 32, 64], param="size", where=b)
    channels = q.choice("Channels", "at_channels", CHANNELS, 16, param="channels", where=c)
    grid = {"kernel": sorted(kernels), "size": sorted(sizes), "channels": [channels], **shape}

    def draw(frame):
        page.chart(charts.speedup_heatmap, frame, "size", "kernel", machine=settings.machine)
        page.chart(
            charts.time_vs_x, frame, "size", detail="kernel", machine=settings.machine,
            x_title="input size H = W (px)",
        )  # fmt: skip
        page.checks(frame, settings)

    runner.run_grid(W.name, grid, settings, draw, key="conv_k", table=not settings.stage,
                    baseline=baseline)  # fmt: skip


with tabs[view]:
    if view == "channels":
        channel_scaling()
    else:
        kernel_by_input()
