"""Training step: does a step at my batch size fit, and how much faster is it?"""

import streamlit as st

from core.measure import energy
from core.measure.workloads import MODELS, get
from core.show import charts
from ui import page, query, runner, sidebar

W = get("train")
settings = sidebar.current()
page.header(W.name, settings)
q = query.binder(W)

a, b, c = st.columns([2, 3, 3])
model = q.choice("Model", "model", list(MODELS), "resnet18", where=a)
batches = q.many("Batch sizes", "batch", page.BATCHES, [1, 2, 4], where=b)
image_size = page.image_size_picker(q, where=c)
variants, baseline = page.variant_picker(q, settings, W.name)
budgets = settings.budgets()


def draw(frame):
    machine = settings.machine
    left, right = st.columns(2)
    with left:
        page.chart(charts.bar_by_batch, frame, "median", machine=machine)
    with right:
        page.chart(charts.bar_by_batch, frame, "images_per_s", machine=machine)
    if charts.has_energy(frame):  # only where a meter read the steps' energy
        page.chart(charts.bar_by_batch, frame, "images_per_j", machine=machine)
    if said := energy.note(frame):
        page.note(said)
    page.chart(charts.memory_vs_budget, frame, budgets, x="batch", machine=machine)
    page.note(
        "Bars: peak memory measured (on the CPU, the whole process's resident memory). "
        "Ticks: the estimate made before running. Dashed: the budget."
    )


grid = {"model": [model], "batch": sorted(batches), "image_size": [image_size], "variant": variants}
runner.run_grid(W.name, grid, settings, draw, key="train", table=not settings.stage,
                baseline=baseline)  # fmt: skip
