"""Inference: how many images per second does each device push through a CNN?"""

import streamlit as st

from core.measure import energy
from core.measure.workloads import MODELS, get
from core.show import charts
from ui import page, query, runner, sidebar

W = get("inference")
settings = sidebar.current()
page.header(W.name, settings)
q = query.binder(W)

a, b, c = st.columns([3, 3, 2])
models = q.many("Models", "model", list(MODELS), ["resnet18"], where=a)
batches = q.many("Batch sizes", "batch", page.BATCHES, [1, 4, 16], where=b)
image_size = page.image_size_picker(q, where=c)
variants, baseline = page.variant_picker(q, settings, W.name)
budgets = settings.budgets()


def draw(frame):
    machine = settings.machine
    page.chart(charts.bar_by_batch, frame, "images_per_s", machine=machine)
    page.chart(charts.bar_by_batch, frame, "median", machine=machine)
    if charts.has_energy(frame):  # only where a meter read the calls' energy
        page.chart(charts.bar_by_batch, frame, "images_per_j", machine=machine)
    if said := energy.note(frame):
        page.note(said)
    for model, part in frame.groupby("model", sort=False):
        title = f"{model}: memory"
        page.chart(charts.memory_vs_budget, part, budgets, "batch", machine, title=title)


grid = {"model": models, "batch": sorted(batches), "image_size": [image_size], "variant": variants}
runner.run_grid(W.name, grid, settings, draw, key="inf", table=not settings.stage,
                baseline=baseline)  # fmt: skip
