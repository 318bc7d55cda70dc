"""Results: every saved run, side by side with other machines and the post's figures."""

import streamlit as st

from core.keep import files, reference, store
from core.measure import workloads
from core.show import report
from ui import page, sidebar

FORMATS = {"CSV": "csv", "JSON": "json", "Parquet": "parquet"}
settings = sidebar.current()
st.title("Results")
st.markdown("**Where do the runs of this and other machines land, and where does the post?**")
try:
    saved = sidebar.open_store()
    runs = saved.runs()
except store.StoreError as error:
    st.error(f"The saved runs cannot be read: {error}")
    st.stop()
st.caption(f"{len(runs)} runs kept in {saved.shown_url}. Every point the pages measure is saved.")

a, b, c = st.columns(3)
workload = a.selectbox("Workload", ["", *sorted(set(",".join(runs["workload"]).split(",")) - {""})],
                       format_func=lambda w: w or "any", key="res.workload")  # fmt: skip
machine = b.selectbox("Machine", ["", *sorted(set(runs["machine"]))],
                      format_func=lambda m: m or "any", key="res.machine")  # fmt: skip
dates = c.date_input("Dates (UTC)", value=[], key="res.dates")
shown = report.filter_runs(runs, workload or None, machine or None, dates)
by_id = {run["run_id"]: run for run in shown.to_dict(orient="records")}
columns = ["created_at", "workload", "machine", "label", "source", "rows", "ok_rows", "run_id"]
st.dataframe(shown[columns], hide_index=True)

st.subheader("Compare")
left, right = st.columns(2)
chosen = left.multiselect("Runs", list(by_id), format_func=lambda r: report.describe_run(by_id[r]),
                          key="res.runs")  # fmt: skip
refs = right.multiselect("The post's machines", reference.reference_machines(),
                         default=[reference.NEO], key="res.refs")  # fmt: skip
frame = saved.load(chosen, limit=sidebar.MAX_SHOWN_ROWS)
total_rows = sum(by_id[r]["rows"] for r in chosen)
if total_rows > len(frame):
    st.caption(f"Drawing the first {len(frame):,} of the {total_rows:,} rows of these runs.")
names = list(dict.fromkeys(frame["workload"].dropna())) or [workload or "matmul"]
name = names[0]
if len(names) > 1:
    name = st.radio("Workload to chart", names, horizontal=True, key="res.chart")
params = list(workloads.param_names(name))
mine, _ = report.select_rows(frame, name, params, {}, fall_back=False)
known = name in workloads.REGISTRY
every_post = reference.reference_frame(name) if known else mine.iloc[0:0].assign(machine=None)
post = every_post[every_post["machine"].isin(refs)]
base = mine if len(mine) else post
if base.empty:
    st.info("Choose runs or the post's machines to draw them.")
else:
    x = st.selectbox("x axis", report.numeric_params(base, name), index=None, key="res.x",
                     placeholder=f"{report.view_of(base, name)[0]} (automatic)")  # fmt: skip
    x = x or report.view_of(base, name)[0]
    if len(mine):  # only the post's points of the runs' shapes: one line per shape
        post = report.rows_in_grid(post, {p: mine[p].unique() for p in params if p != x})
    both = report.combine(mine, post)
    page.chart(report.overlay_chart, both, x, report.view_of(both, name, x)[1])
    choices = refs or reference.reference_machines()
    against = st.selectbox("Ratios against", choices, key="res.against")
    ratios = report.ratio_table(mine, every_post[every_post["machine"] == against], params)
    if ratios.empty:
        st.caption("No chosen run shares a point with the post's figures: no ratios to show.")
    else:
        st.dataframe(report.readable(report.ratio_summary(ratios)), hide_index=True)
        with st.expander(f"Ratios per matching point ({len(ratios)})"):
            st.dataframe(report.readable(ratios, drop=[*params, "dtype"]), hide_index=True)

st.subheader("Export, delete, import")
e, d, i = st.columns(3)
fmt = e.radio("Format", list(FORMATS), horizontal=True, key="res.fmt")
# What is on screen: the runs compared, else every run the table shows.
exported = chosen or list(by_id)
picked = [by_id[r] for r in exported]
one = len({r["machine"] for r in picked}) == 1
about = picked[0]["fingerprint"] if one else {"machine": "several machines"}
too_big = sum(r["rows"] for r in picked) > sidebar.MAX_SHOWN_ROWS  # the CLI exports any size
runs_word = f"{len(exported)} run{'s' * (len(exported) != 1)}"
e.download_button(
    f"Export {runs_word} as {fmt}", file_name=f"speedup-runs.{FORMATS[fmt]}",
    # Made on click, not on every rerun: every run shown can be many rows.
    data=lambda: files.export_bytes(saved.load(exported), FORMATS[fmt], about, {
        "runs": exported, "run_settings": {r: by_id[r].get("settings") for r in exported}}),
    disabled=not exported or too_big, key="res.export", on_click="ignore",
    help="Runs this large: python -m core export --run RUN_ID" if too_big else None,
)  # fmt: skip
filters = {"workload": workload, "machine": machine, "dates": " to ".join(map(str, dates))}
by = ", ".join(f"{name} {value}" for name, value in filters.items() if value)
if chosen:
    e.caption(f"Exports the {runs_word} chosen under Compare.")
elif exported:
    e.caption(f"Exports the {runs_word} shown" + (f" (filtered by {by})." if by else ".")
              + " Choose runs under Compare to export only those.")  # fmt: skip


def ask(run_id):
    st.session_state["res.confirm"] = run_id


victim = d.selectbox("Run to delete", list(by_id), index=None, key="res.victim",
                     format_func=lambda r: report.describe_run(by_id[r]))  # fmt: skip
d.button("Delete…", key="res.delete", disabled=victim is None, on_click=ask, args=(victim,))
if victim is not None and st.session_state.get("res.confirm") == victim:
    d.warning(f"Delete run {victim} and its {by_id[victim]['rows']} rows? This cannot be undone.")
    if d.button("Yes, delete", key="res.delete_yes", type="primary"):
        saved.delete_run(st.session_state.pop("res.confirm"))
        st.rerun()
    d.button("Cancel", key="res.delete_no", on_click=ask, args=(None,))

upload = i.file_uploader("Results file", type=list(FORMATS.values()), key="res.upload")
if i.button("Import", key="res.import", disabled=upload is None):
    try:
        st.session_state["res.imported"] = saved.import_runs(files.import_file(upload))
        st.rerun()
    except (files.FileRejected, store.StoreError) as error:
        i.error(f"{upload.name} was not imported: {error}")
if done := st.session_state.pop("res.imported", None):
    (i.success if done.stored else i.info)(f"{done.summary()}.")
