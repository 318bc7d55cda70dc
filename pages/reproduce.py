"""Reproduce the post: its whole grid here, within a time budget, beside its own figures."""

import functools

import streamlit as st

from core.keep import files, reference
from core.measure import machine_state, suites
from core.show import report
from ui import page, runner, sidebar

settings = sidebar.current()
parts = suites.POST
st.title("Reproduce the post")
st.markdown(
    f"**Where does {settings.machine} land on every chart of “{reference.POST_TITLE}” "
    f"({reference.POST_DATE})?**"
)
page.note(
    f"The post's grid in float32 on {' and '.join(settings.labels)}, beside the figures its "
    "notebooks printed (the mean of 10 runs after one warm-up). Ratios pair CPU with CPU and "
    "accelerator with accelerator: below 1×, this machine takes less time."
)
left, middle, right = st.columns([2, 2, 3], vertical_alignment="bottom")
budget_s = left.number_input(
    "Time budget (s)", min_value=5, max_value=3600, value=300, step=30, key="rep.budget_s",
    help="Each chart gets a fair share; points that would not fit are skipped and listed.",
)  # fmt: skip
against = middle.selectbox("Ratios against", reference.reference_machines(), key="rep.against")
if settings.replay is not None:
    right.info(f"Replaying run {settings.replay.run_id} from machine {settings.replay.machine}.")
elif right.button("Run the post's grid", key="rep.run", type="primary"):
    st.session_state["rep.skipped"] = []  # a Stop must not leave the last run's list
    st.session_state["rep.skipped"] = runner.run_suite(
        parts, settings, budget_s=budget_s, key="rep", label="Reproduce the post"
    )
if st.session_state.get("rep.stopped"):
    st.caption("Stopped. What was measured is kept: Run again goes on from there.")

frames = [runner.suite_frame(part, settings, report.POST_DTYPE) for part in parts]
views = report.post_views(parts, frames, settings.machine, against)
skipped = st.session_state.get("rep.skipped", []) if settings.replay is None else []
reached = sum(view.reached for view in views)
wanted = sum(report.grid_points(part) for part in parts) * len(settings.labels)
if reached:
    with page.folded("Summary: time here over time in the post", heading=True):
        st.caption(f"{reached} of the grid's {wanted} rows are drawn; the rest were not measured.")
        summary = report.post_summary(views)
        # Every column must fit at 1440 px: "reference" is the choice above, "reading" says
        # the row's numbers again in words, and the reference backend is left out where it
        # is the backend's own name; the verdict's threshold goes to its header's tooltip.
        same = (summary["backend"] == summary["reference backend"]).all()
        hidden = ("reference", "reading", *(["reference backend"] if same else []))
        widths = {"chart": 260, "side": 90, "backend": 160, "points": 60, "median ratio": 100,
                  "lowest": 70, "highest": 70, "reference backend": 190}  # fmt: skip
        config = {name: st.column_config.Column(width=px) for name, px in widths.items()}
        verdict = next(c for c in summary.columns if c.startswith("verdict"))
        config[verdict] = st.column_config.Column("verdict", help=verdict, width=150)
        shown = [c for c in summary.columns if c not in hidden]
        st.dataframe(summary, hide_index=True, column_order=shown, column_config=config)
else:
    st.info("Nothing measured yet for the post's grid: the charts show the post's figures alone.")
for view in views:  # each chart carries its own title: no heading repeats it
    page.chart(report.part_chart, view.part, view.combined)
    with st.expander(f"Ratios per point ({len(view.ratios)})"):
        st.dataframe(view.ratio_rows(), hide_index=True)
if skipped:
    st.subheader(f"Skipped for time ({len(skipped)} points)")
    st.dataframe(skipped, hide_index=True)

replay = settings.replay
machine = (replay.fingerprint or {"machine": replay.machine}) if replay else None
machine = machine or runner.machine_fingerprint()
run_settings = {**settings.sweep_settings(report.POST_DTYPE).as_dict(), "backends": settings.labels}
method = report.post_method(run_settings, settings.labels, budget_s, len(parts))
state = replay.settings.get("machine_state") if replay else machine_state.snapshot()
html = functools.partial(report.post_report, views, machine, method, skipped, state)
csv = files.export_bytes(report.measured_rows(views), "csv", machine, run_settings)
a, b = st.columns(2)
a.download_button(
    "Download the HTML report", html, file_name="reproduce-the-post.html", mime="text/html",
    key="rep.html", on_click="ignore", help="One file with every chart; opens without a network.",
)  # fmt: skip
b.download_button(
    "Download the CSV", csv, file_name="reproduce-the-post.csv", mime="text/csv",
    key="rep.csv", on_click="ignore",
)  # fmt: skip
