"""Trust the numbers: what this machine can do at best, and how each number was checked."""

import dataclasses

import streamlit as st

from core import units
from core.keep import files, results
from core.measure import devices, selftest
from core.measure.sweep import thread_backends
from core.measure.workloads import OPS, get
from core.show import charts, trust
from ui import page, query, runner, sidebar

WORKLOADS = ["matmul", "elementwise", "conv2d", "inference", "train"]
MATMUL_SIZES = [2**k for k in range(5, 13)]  # 32 .. 4096
ELEMENTS = units.decade_stops(1e4, 1e8)
CHANNELS, PIXELS = [8, 16, 32, 64, 128, 256], [8, 16, 32, 64, 128]
titled = {name: get(name).title for name in WORKLOADS}.get
settings = sidebar.current()
st.title("Trust the numbers")
st.markdown("**Is each time physically possible, warm, and fair to the CPU?**")

st.subheader("Self-test: is this machine's timing path sound?")
st.markdown(
    "About a minute of small checks, each with a verdict and one line why: synchronization, "
    "timer agreement, outputs of every workload, memory figures, fallback detection, dtype "
    "support, the dispatch floor, and ceilings against the chip's published figures. "
    "The same as `python -m core selftest`; run it first on a new machine."
)
if st.button("Run the self-test", key="trust.selftest"):
    with st.spinner("Checking this machine's timing path..."):
        st.session_state["trust.selftest_rows"] = selftest.rows(selftest.run())
if checked := st.session_state.get("trust.selftest_rows"):
    report = results.to_frame(checked, ["check", "verdict"])
    st.dataframe(report[["check", "device", "verdict", "message"]], hide_index=True)
    data = files.export_bytes(report, "json", devices.machine_fingerprint(), {"selftest": True})
    st.download_button("Download the report (JSON)", data, "selftest.json", key="trust.report")
    st.caption("Attach it to a bug report, or import it on the Results page to compare machines.")

st.subheader("Ceilings: the fastest this machine can go")
st.markdown(
    "Per device: memory bandwidth from a large copy (bytes read plus written), the same "
    "from a cache-sized copy, and the matrix-multiply peak per dtype. Every row measured "
    "gets `pct_of_ceiling`, its share of what the roofs allow; a row faster than a ceiling "
    "allows is flagged `suspect`, and the usual cause is a missing synchronize."
)
idle = "A few seconds per device. Measure on an idle machine: a busy one gives low roofs."
if st.button("Measure ceilings", key="trust.measure", help=idle):
    page.measure_ceilings(settings.backends)
st.dataframe(
    trust.ceilings_table(trust.cached_ceilings(backends=settings.backends)), hide_index=True
)

st.subheader("Every point measured on this server, under the roofs")
name = query.choice("Workload", "rw", WORKLOADS, "matmul", fmt=titled)
measured = page.checks(runner.measured_frame(name), settings, backends=settings.backends)
if measured.empty:
    st.caption(f"Nothing measured yet for {titled(name)}: its page fills this in.")

st.subheader("Cold vs warm: the first call against the steady state")
x, part, what = trust.cold_slice(measured, get(name).param_names)
if len(part):
    page.chart(charts.first_call_vs_median, part, x, machine=settings.machine)
    st.caption(f"Points with {what}. On MPS the first call also compiles the shaders.")

st.subheader("Is the CPU baseline fair? Time against threads")
st.markdown(
    "The post's CPU ran on PyTorch's default, which is 2 threads on the A18 Pro. "
    f"PyTorch's default here is {sidebar.default_threads()}."
)
st.caption(f"This CPU: {devices.describe('cpu').note}.")
a, b, c = st.columns(3)
swept = query.choice("Workload", "tw", WORKLOADS[:3], "matmul", fmt=titled, where=a)
q = query.binder(get(swept))
if swept == "matmul":
    grid = {"size": q.many("Sizes N", "t_size", MATMUL_SIZES, [256], param="size", where=b)}
elif swept == "elementwise":
    op = q.choice("Op", "t_op", OPS, "sin", param="op", where=b)
    sizes = q.many("Elements", "t_elems", ELEMENTS, [10**6], param="size", where=c)
    grid = {"op": [op], "size": sizes}
else:
    channels = q.many("Channels", "t_ch", CHANNELS, [32], param="channels", where=b)
    pixels = q.choice("Input H = W", "t_px", PIXELS, 32, param="size", where=c)
    grid = {"channels": channels, "size": [pixels]}
runner.run_grid(
    swept,
    grid,
    dataclasses.replace(settings, backends=tuple(thread_backends())),
    lambda frame: page.chart(charts.threads_chart, frame, machine=settings.machine),
    key="trust_threads",
)

st.subheader("Fidelity: this engine against independent timers")
page.fidelity()
