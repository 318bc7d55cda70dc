"""Will it fit? A model's memory need on named machines before anything runs, and its
measured peak beside the estimate."""

import streamlit as st

from core import units
from core.errors import BadInput
from core.measure import fit
from ui import query, sidebar

BATCHES = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]
# All multiples of 16, so vit_b_16 and vit_l_16 take every stop; other ViTs are snapped.
IMAGE_SIZES = [32, 48, 64, 96, 112, 128, 160, 192, 224, 256, 288, 320, 384, 448, 512]
MODES = {"inference": "Inference (no_grad)", "train": "Training step (SGD)"}

settings = sidebar.current()
st.title("Will it fit?")
st.markdown("**How much memory does a model need, and what is the largest batch that fits?**")
st.caption(
    "Estimated before anything runs, from the model traced on PyTorch's meta device: an "
    "upper bound on weights, input, gradients, activations and library workspaces."
)

a, b, c = st.columns([3, 2, 2])
model = query.choice("Model", "fit_model", fit.classification_models(), fit.DEFAULT_MODEL, where=a,
                     help="Every torchvision classification model, with random weights; "
                     "type to search.")  # fmt: skip
mode = query.choice("Work", "fit_mode", list(MODES), "inference", fmt=MODES.get, where=a,
                    widget="radio")  # fmt: skip
batch = query.choice("Batch size", "fit_batch", BATCHES, 8, widget="select_slider", where=b)
wanted_px = query.choice("Image size (px)", "fit_px", IMAGE_SIZES, 224, widget="select_slider",
                         where=b)  # fmt: skip
dtype = query.choice("dtype", "fit_dtype", fit.DTYPES, settings.dtype, where=c, widget="radio")
image_size = fit.snap_image_size(model, wanted_px)
if image_size != wanted_px:
    st.info(f"{model} takes images in multiples of its patch: using {image_size} px.")
train = mode == "train"

try:
    rows = fit.fits_table(model, batch, image_size, dtype, train)
except BadInput as error:
    st.error(str(error))
    st.stop()

point = f"{model}, batch {batch}, {image_size} px, {dtype}, {MODES[mode].lower()}"
c.metric("Needs at most", units.bytes_si(rows[0]["needed_bytes"]), help=point)
table = [
    {
        "machine": row["machine"],
        "needed": units.bytes_si(row["needed_bytes"]),
        "usable": units.bytes_si(row["usable_bytes"]),
        "fits": {True: "yes", False: "no", None: "unknown"}[row["fits"]],
        "largest batch": (
            "unknown" if row["largest_batch"] is None
            else f"≥ {row['largest_batch']:,}" if row["largest_batch"] >= fit.MAX_BATCH
            else f"{row['largest_batch']:,}"
        ),
        "usable is": row["source"],
    }
    for row in rows
]  # fmt: skip
st.dataframe(table, hide_index=True)

st.subheader("How far off is the estimate?")
here = fit.measure_devices()
left, right = st.columns([2, 3], vertical_alignment="bottom")
device = left.selectbox("Device", here, index=len(here) - 1, key="fit.device")
key = ("fit.measured", model, batch, image_size, dtype, mode, device)
if right.button(f"Measure the real peak on {device}", key="fit.measure", type="primary"):
    with st.spinner(f"Running one {MODES[mode].lower()} of {model} on {device}…"):
        try:
            st.session_state[key] = fit.measure(model, batch, image_size, dtype, train, device)
        except BadInput as error:
            st.session_state[key] = str(error)
done = st.session_state.get(key)
if isinstance(done, str):
    st.warning(done)
elif done is not None:
    x, y, z = st.columns(3)
    x.metric("Measured peak", units.bytes_si(done.measured_bytes))
    y.metric("Estimate", units.bytes_si(done.estimate_bytes))
    z.metric("Estimate / measured", units.ratio(done.ratio))
    (st.success if done.holds else st.error)(f"On {done.device}, {done.summary()}.")
    st.caption(f"Measured: {done.method}.")
else:
    st.caption(
        "One forward pass or one training step, run once; refused first if the estimate is "
        "over the device's memory budget."
    )
