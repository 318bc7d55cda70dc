"""The sidebar every page shares: what is compared, in which dtype, under which budgets."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

import pandas as pd
import streamlit as st

from core.errors import BadInput
from core.keep import files, store
from core.measure import devices, machine_state, memory, workloads
from core.measure.sweep import Backend, SweepSettings, default_backends, parse_backends
from core.measure.timing import TimingSettings
from core.measure.workloads import Param
from core.show import report
from ui import query
from ui.navigation import leave_folder_mode

DTYPES = ("float32", "float16", "bfloat16")
MEMORY_CHOICES = {
    "default": "device default (safe share)",
    "8gb": "8 GB laptop",
    "16gb": "16 GB laptop",
    "custom": "custom",
}
POINT_BUDGETS_S = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
DEFAULT_POINT_BUDGET_S = 0.5
_STATE_KEY = "ui.settings"
# Rows of a saved run that a page loads and draws: no chart shows more, and loading a
# million-row run whole took 5.5 GB on every rerun.
MAX_SHOWN_ROWS = 20_000
SOURCES = ("Measure live", "Replay a saved run")
# The workloads each page draws, by its URL path: Replay offers only the runs that have
# one. The pages not named here (Reproduce, Results, Trust) draw any run.
PAGE_WORKLOADS = {
    "": ("matmul", "elementwise"),  # the Overview's two duels
    "elementwise": ("elementwise",),
    "matmul": ("matmul",),
    "convolution": ("conv2d",),
    "training": ("train",),
    "inference": ("inference",),
    "attention": ("attention",),
}


@dataclass(frozen=True)
class Replay:
    """A saved run or file that pages draw instead of measuring."""

    run_id: str
    machine: str
    frame: pd.DataFrame = field(compare=False, repr=False)
    fingerprint: dict = field(default_factory=dict, compare=False, repr=False)
    settings: dict = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class Settings:
    """What every page's sweep is run with; pages get it from ``current()``."""

    backends: tuple[Backend, ...]
    dtype: str
    memory_budget_bytes: int | None  # None: each device's safe default
    point_budget_s: float
    auto_run: bool
    cold_cache: bool
    pipelined: bool
    machine: str
    replay: Replay | None = field(default=None, compare=False)  # None: measure live
    # For talks: big chart fonts, tables and captions folded away; measures nothing differently.
    stage: bool = field(default=False, compare=False)

    def sweep_settings(self, dtype: str | None = None) -> SweepSettings:
        return SweepSettings(
            dtype=dtype or self.dtype,
            timing=TimingSettings(
                budget_s=self.point_budget_s, cold_cache=self.cold_cache, pipelined=self.pipelined
            ),
            memory_budget_bytes=self.memory_budget_bytes,
        )

    def budgets(self) -> dict[str, int | None]:
        """Each backend's memory budget by label; None where the device's is not known."""
        chosen, default = self.memory_budget_bytes, memory.default_budget_bytes
        return {b.label: default(b.device) if chosen is None else chosen for b in self.backends}

    @property
    def labels(self) -> list[str]:
        return [b.label for b in self.backends]


@functools.cache
def default_threads() -> int:
    """The physical performance cores (a fair CPU baseline), read once."""
    return max(devices.cpu_threads(), 1)


machine = functools.cache(devices.machine_label)  # asked once: it does not change while we run


def open_store() -> store.Store:
    """The results store (SPEEDUP_EXPLORER_STORE, else the user's SQLite file), opened once
    per URL for the whole server; raises ``StoreError`` with a one-line reason."""
    return _store_at(store.default_store_url())


@st.cache_resource(show_spinner=False)
def _store_at(url: str) -> store.Store:
    return store.Store(url)  # a failure is not cached: the next call tries again


def current() -> Settings:
    """The settings the sidebar chose this run; a page run on its own draws the sidebar."""
    leave_folder_mode()
    settings = st.session_state.get(_STATE_KEY)
    return settings if isinstance(settings, Settings) else render()


def render(page: st.Page | None = None) -> Settings:
    bar = st.sidebar
    accelerator = devices.accelerator_type()
    replay = _source(bar, page)
    bar.header("Compare")
    _, logical = devices.cpu_core_counts()
    threads_default = min(default_threads(), logical)
    threads = query.number("CPU threads", "threads", 1, logical, threads_default, where=bar,
                           help=f"Intra-op threads for the CPU side. The default, "
                           f"{threads_default}, is this machine's physical performance "
                           "cores.")  # fmt: skip
    backends = _backends(bar, threads, accelerator)
    dtype = query.choice("dtype", "dtype", DTYPES, "float32", param=str.lower, where=bar)

    bar.header("Budgets")
    budget_bytes = _memory_budget(bar, backends)
    point_budget_s = query.choice(
        "Time budget per point (s)", "budget_s", POINT_BUDGETS_S, DEFAULT_POINT_BUDGET_S,
        param=Param("budget_s", float, DEFAULT_POINT_BUDGET_S, low=0.01, high=60),
        widget="select_slider", where=bar,
        help="Warm-up and repeats of one point on one backend stop once this is spent "
        "(or sooner, when the median is known to 2%).",
    )  # fmt: skip
    auto_run = bar.toggle(
        "Run on every change", value=True, key="sb.auto_run",
        help="Measure as soon as a widget changes when it should take under about 3 s; "
        "otherwise a Run button appears.",
    )  # fmt: skip
    cold_cache = query.flag(
        "Cold L2 cache between repeats", "cold", False, where=bar,
        help="Flushes the GPU's L2 cache before every timed repeat. Only meaningful on GPUs: "
        "the CPU side is never flushed.",
    )  # fmt: skip
    pipelined = query.flag(
        "Pipelined GPU timing", "pipelined", False, where=bar,
        help="Times each GPU call behind an untimed one, like a loop that never waits for the "
        "GPU. Off: every call starts from an idle GPU, as in a loop that reads a result each "
        "step (and as the post timed). Needs device events, so MPS and the CPU ignore it.",
    )  # fmt: skip
    if (cold_cache or pipelined) and accelerator is None:
        bar.caption("No GPU here, so the GPU timing options change nothing.")
    bar.header("View")
    stage = query.flag(
        "Stage mode", "stage", False, where=bar,
        help="For talks: larger chart fonts, the chart and its answer; tables and notes folded.",
    )  # fmt: skip

    _machine_state(bar, replay)

    settings = Settings(
        backends=tuple(backends), dtype=dtype, memory_budget_bytes=budget_bytes,
        point_budget_s=float(point_budget_s), auto_run=auto_run, cold_cache=cold_cache,
        pipelined=pipelined, machine=replay.machine if replay else machine(), replay=replay,
        stage=stage,
    )  # fmt: skip
    st.session_state[_STATE_KEY] = settings
    return settings


@st.cache_data(ttl=30, show_spinner=False)  # a few pmset calls on a Mac: not every rerun
def _state_now() -> dict:
    return machine_state.snapshot()


def _machine_state(bar, replay: Replay | None) -> None:
    """The machine card's live part: power, heat, versions now (a replayed run's as it was
    stored), and what in it would slow a long run."""
    state = (replay.settings or {}).get("machine_state") if replay is not None else _state_now()
    found = machine_state.warnings(state)
    title = "Machine state" + (" of the replayed run" if replay is not None else "")
    with bar.expander(title, icon=":material/warning:" if found else None):
        if not isinstance(state, dict) or not state:
            st.caption("Not recorded with this run.")
            return
        lines = [f"{what}: {value}" for what, value in machine_state.describe(state)]
        # OS strings and sensor names (x86_pkg_temp) are not Markdown.
        st.caption("  \n".join(re.sub(r"([\\`*_~|<>\[\]])", r"\\\1", line) for line in lines))
        for line in found:
            st.warning(line)


def _backends(bar, threads: int, accelerator: str | None) -> list[Backend]:
    backends = default_backends(threads)
    with bar.expander("Other backends"):
        text = st.text_input(
            "Backends to compare", "", key="devices", **query.KEEP,
            help="Comma-separated; empty for the default. E.g. cpu,accel (accel: whatever "
            "accelerator this machine has) or cpu:1,cpu:4.",
        )  # fmt: skip
    if text.strip():
        notes: list[str] = []
        try:
            backends = parse_backends(text, threads, notes)
        except BadInput as error:
            bar.error(f"{error}. Using the default comparison.")
        for note in notes:
            bar.info(f"{note.capitalize()}.")
    labels = [b.label for b in backends]
    if text.strip() and len(backends) > 0 and backends != default_backends(threads):
        bar.info(f"Comparing {' against '.join(labels)}.")
    elif accelerator is None and len(backends) > 1:
        bar.info(f"No accelerator found: comparing 1 CPU thread against {threads}.")
    elif accelerator is None:
        bar.info(
            "No accelerator found, and 1 CPU thread chosen: there is nothing to compare. "
            "Raise CPU threads to compare 1 thread against several."
        )
    else:
        named = {info.device: info.name for info in devices.describe_all()}
        names = ", ".join(named.get(b.device, b.device) for b in backends[1:])
        bar.caption(f"Comparing {' against '.join(labels)} ({names}).")
    return backends


def _memory_budget(bar, backends: list[Backend]) -> int | None:
    choice = query.choice(
        "Memory budget", "mem", list(MEMORY_CHOICES), "default", fmt=MEMORY_CHOICES.get,
        param=str.lower, where=bar,
        help="Points whose estimated memory exceeds this are refused before anything is allocated.",
    )  # fmt: skip
    if choice == "default":
        shares = [
            f"{b.device}: {memory.format_bytes(memory.default_budget_bytes(b.device))}"
            for b in dict.fromkeys(Backend(b.device) for b in backends)
        ]
        bar.caption("Safe share of what is free now — " + ", ".join(shares))
        return None
    if choice != "custom":
        budget = memory.PRESETS_BYTES[MEMORY_CHOICES[choice]]
        bar.caption(f"{memory.format_bytes(budget)}: what such a laptop's GPU may use.")
        return budget
    text = bar.text_input("Custom budget", "4GB", key="mem_size", **query.KEEP)
    try:
        budget = memory.parse_bytes(text)
    except BadInput as error:
        bar.error(f"{error}. Using the device default.")
        return None
    for device in dict.fromkeys(b.device for b in backends):
        _, note = memory.capped_budget(budget, device)  # the sweep clamps it the same way
        if note:
            bar.info(f"{note.capitalize()}.")
    return budget


def _source(bar, page: st.Page | None) -> Replay | None:
    """Measure here, or replay a stored run or an uploaded file (demos without the GPU);
    of the stored runs, those with a workload of ``page``, the newest first."""
    bar.header("Source")
    source = bar.radio(
        "Source",
        SOURCES,
        key="sb.source",
        label_visibility="collapsed",
        help="Replaying draws a saved run on every page and measures nothing.",
    )
    if source == SOURCES[0]:
        return None
    upload = bar.file_uploader(
        "Replay a results file instead",
        type=list(files.FORMATS),
        key="sb.replay_file",
        help="A CSV, JSON or Parquet file exported from this app or its CLI.",
    )
    if upload is not None:  # checked as strictly as an import; parsed once per content
        imported, problem = _imported(upload.getvalue(), upload.name)
        if imported is None:
            bar.error(f"{upload.name} cannot be replayed: {problem}")
            return Replay(upload.name, "no machine", pd.DataFrame())
        machine_label = imported.machine.get("machine") or "unknown machine (file)"
        frame = imported.frame.assign(machine=machine_label, source="imported")
        bar.caption(f"Replaying {upload.name}: {len(frame)} rows from {machine_label}.")
        return Replay(upload.name, machine_label, frame, imported.machine, imported.settings)
    try:
        results_store = open_store()
        runs = results_store.runs()
    except store.StoreError as error:
        bar.error(f"The saved runs cannot be read: {error}")
        return Replay("(none)", "no machine", pd.DataFrame())
    if runs.empty:
        bar.info("No saved runs yet: measure something first, or upload a results file.")
        return Replay("(none)", "no machine", pd.DataFrame())
    if wanted := PAGE_WORKLOADS.get(page.url_path) if page is not None else None:
        has = runs["workload"].str.split(",").map(lambda names: not set(wanted).isdisjoint(names))
        runs = runs[has]
        if runs.empty:
            titles = " or ".join(workloads.get(name).title.lower() for name in wanted)
            bar.info(f"No saved run has {titles} rows: measure them live, or upload a file.")
            return Replay("(none)", "no machine", pd.DataFrame())
    by_id = {run["run_id"]: run for run in runs.to_dict(orient="records")}
    run_id = bar.selectbox(
        "Saved run",
        list(by_id),
        key="sb.replay_run",
        format_func=lambda rid: report.describe_run(by_id[rid]) if rid in by_id else rid,
    )
    run = by_id[run_id]
    try:
        frame = results_store.load(run_id, limit=MAX_SHOWN_ROWS)
        if run["rows"] > len(frame):
            bar.caption(f"Replaying the first {len(frame):,} of its {run['rows']:,} rows.")
    except store.StoreError as error:
        bar.error(f"Run {run_id} cannot be read: {error}")
        frame = pd.DataFrame()
    machine_label = run["machine"] or "unknown machine"
    return Replay(run_id, machine_label, frame, run["fingerprint"], run["settings"])


@st.cache_data(max_entries=4, show_spinner="Checking the file…")
def _imported(content: bytes, name: str) -> tuple[files.ImportedRun | None, str]:
    try:
        return files.import_file(content, files.format_of_path(name)), ""
    except BadInput as error:
        return None, str(error)
