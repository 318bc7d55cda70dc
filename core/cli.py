"""``python -m core``: the same engine as the app, from a terminal.

Bad input exits with code 2 and one line naming the argument and what is allowed.
No traceback reaches the user.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from tqdm import tqdm

from core import units
from core.errors import BadInput
from core.keep import files, recorder, results
from core.keep.store import sqlite_file
from core.measure import suites, workloads  # the registry reads without torch
from core.show import tables

# torch (a second and 0.7 GB to import) comes only with the commands that measure, through
# local imports of core.measure's other modules: runs, export and import stay light.
if TYPE_CHECKING:
    from core.measure import sweep


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line instead of argparse's usage block
        raise BadInput(message)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text} must be a positive number of seconds")
    return value


def _threads(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"'{text}' must be a whole number of 1 or more")
    return int(text)


_ON = {"action": "store_true"}
# (the commands that take it, the argument, its help, argparse's options), in --help order
_ARGUMENTS = (
    ("ceilings", "--devices", "comma-separated, e.g. cpu,accel", {}),
    ("run", "workload", None, {}),
    ("run", "values", "name=value[,value...]", {"nargs": "*"}),
    ("suite", "name", ", ".join(suites.SUITES), {}),
    ("run suite", "--devices", "e.g. cpu,accel (this machine's accelerator) or cpu:1,cpu:8", {}),
    ("run suite", "--dtype", "float32, float16, bfloat16, float64", {"default": "float32"}),
    ("ceilings run suite", "--threads", "CPU intra-op threads", {"type": _threads}),
    ("run suite", "--memory-budget", "per device, e.g. 8GB; default: a safe share", {}),
    ("run suite", "--budget-s", "time budget for the whole sweep", {"type": _seconds}),
    ("run suite", "--point-budget-s", "time budget per point and backend",
     {"type": _seconds, "default": 1.0}),
    ("run suite", "--cold-cache", "flush the GPU's L2 each repeat", _ON),
    ("run suite", "--pipelined",
     "time each call behind an untimed one (steady state of a loop; GPUs with events)", _ON),
    ("run suite", "--no-check", "skip the output check", _ON),
    ("run", "--against",
     "the backend (and variant) speedups are read against, e.g. 'cuda · eager'", {}),
    ("export", "--format", None, {"required": True, "choices": files.FORMATS}),
    ("export", "--run", "a run id; repeat for more; default all", {"action": "append"}),
    ("runs", "--workload", None, {}),
    ("export", "--workload", "only runs of this workload", {}),
    ("run suite", "--out", "write the results to .csv, .json or .parquet", {}),
    ("export", "--out", "the file to write", {"required": True}),
    ("run suite", "--force", "replace an existing --out file", _ON),
    ("export", "--force", "replace an existing file", _ON),
    ("import", "file", None, {}),
    ("import", "--label", "a name for the imported runs", {}),
    ("run suite runs export import", "--store",
     "SQLAlchemy URL of the results store; default: a SQLite file per user", {}),
    ("run suite", "--no-store", "keep the results out of the store", _ON),
    ("ceilings", "--refresh", "measure again", _ON),
    ("selftest", "--out", "write the report to .json (or .csv, .parquet) to attach or import", {}),
    ("selftest", "--force", "replace an existing --out file", _ON),
)  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m core", description="Time PyTorch work on CPU and accelerator.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    parsers = {name: commands.add_parser(name, help=h) for name, (_, h) in _COMMANDS.items()}
    for names, flag, help_text, options in _ARGUMENTS:
        for name in names.split():
            parsers[name].add_argument(flag, help=help_text, **options)
    return parser


def parse_grid(workload: workloads.Workload, values: list[str]) -> dict[str, list]:
    grid: dict[str, list] = {}
    for item in values:
        if "=" not in item:
            raise BadInput(f"'{item}' is not name=value; parameters are {workload.param_names}")
        name, _, text = item.partition("=")
        param = workload.param(name.strip())
        if param.name in grid:  # size=1e3 size=1e4 would otherwise keep only the last
            raise BadInput(f"{param.name}: given twice; write {param.name}=a,b for several values")
        parts = [p for p in text.split(",") if p.strip()]
        if not parts:
            raise BadInput(f"{param.name}: no value given; allowed {param.allowed()}")
        grid[param.name] = [param.parse(p) for p in parts]
    return grid


def _settings(args) -> sweep.SweepSettings:
    from core.measure import memory, sweep, timing

    workloads.parse_dtype(args.dtype)
    budget = memory.parse_bytes(args.memory_budget) if args.memory_budget else None
    return sweep.SweepSettings(
        dtype=args.dtype,
        timing=timing.TimingSettings(
            budget_s=args.point_budget_s, cold_cache=args.cold_cache, pipelined=args.pipelined
        ),
        memory_budget_bytes=budget,
        sweep_budget_s=args.budget_s,
        check_outputs=not args.no_check,
    )


def _backends(args) -> list[sweep.Backend]:
    from core.measure import memory, sweep

    threads, note = sweep.capped_threads(args.threads)
    notes = [note]
    if args.devices:
        backends = sweep.parse_backends(args.devices, threads, notes)
    else:
        backends = sweep.default_backends(threads)
    if getattr(args, "memory_budget", None):  # the ceilings command has none
        budget = memory.parse_bytes(args.memory_budget)
        notes += [memory.capped_budget(budget, d)[1] for d in {b.device for b in backends}]
    for line in filter(None, notes):
        print(f"note: {line}", file=sys.stderr)
    return backends


def _checked_out(path: str, fmt: str | None = None, *, force: bool = False, store=None) -> str:
    """The format of an output file, checked before anything is measured or read."""
    try:
        found = files.format_of_path(path)
    except BadInput as error:
        raise BadInput(f"--out: {error}") from None
    if fmt is not None and found != fmt:
        raise BadInput(f"--out: '{path}' ends in .{found}, but --format is {fmt}")
    target, folder = Path(path), Path(path).parent
    if target.is_dir():
        raise BadInput(f"--out: '{path}' is a folder; name a file in it")
    if not folder.is_dir():
        raise BadInput(f"--out: the folder '{folder}' does not exist")
    if not os.access(folder, os.W_OK):
        raise BadInput(f"--out: the folder '{folder}' cannot be written")
    store_file = store and sqlite_file(store.url)
    if store_file and target.exists() and store_file.exists() and target.samefile(store_file):
        raise BadInput(f"--out: '{path}' is the results store itself; name another file")
    if target.exists() and not force:
        raise BadInput(f"--out: '{path}' exists; add --force to replace it")
    return found


def _write(path: str, data: bytes) -> None:
    # Through a temporary file in the same folder and a rename: a full disk or a crash
    # leaves the old file (or none), never a half-written one.
    folder = Path(path).parent
    with tempfile.NamedTemporaryFile(dir=folder, prefix=".speedup-", delete=False) as handle:
        handle.write(data)
    try:
        os.replace(handle.name, path)
    finally:
        Path(handle.name).unlink(missing_ok=True)


def _open_store(args, write: bool = True):
    """Opening for writing proves the store can be written; a reader creates nothing."""
    from core.keep.store import Store, StoreError

    try:
        return Store(args.store, write=write)
    except StoreError as error:
        raise BadInput(f"--store: {error}") from None


# Before a run estimated to take this long (or a suite), watch the machine for a second.
LONG_RUN_S = 10.0  # ui.runner warns about the machine's state from the same length on


def _say_if_busy() -> None:
    from core.measure import load

    if sentence := load.check_machine().sentence():
        print(sentence, file=sys.stderr)


def _against(label: str | None, tasks) -> str | None:
    """``--against`` checked before anything is measured: one of the labels the table will
    show (a backend, and its variant where any point runs another way than eagerly)."""
    if label is None:
        return None
    from core.measure.workloads import variants

    chosen = {variants.of(t.params) for t in tasks}
    labels = list(dict.fromkeys(t.backend.label for t in tasks))
    if chosen != {variants.EAGER}:
        sep = results.VARIANT_SEPARATOR
        labels = [f"{b}{sep}{v}" for b in labels for v in sorted(chosen)]
    found = {" ".join(name.split()).lower(): name for name in labels}
    text = " ".join(str(label).replace("/", results.VARIANT_SEPARATOR).split()).lower()
    # "accel" names this machine's accelerator here too, as in --devices.
    head, sep, tail = text.partition(results.VARIANT_SEPARATOR.strip())
    accel = next((t.backend.label for t in tasks if not t.backend.label.startswith("cpu")), None)
    if head.strip() == "accel" and accel:
        text = f"{accel.lower()}{' ' + sep + tail if sep else ''}"
    if text not in found:
        raise BadInput(f"--against: '{units.echo(label)}' is not measured here; choose from "
                       + ", ".join(f"'{name}'" for name in labels))  # fmt: skip
    return found[text]


def _run_parts(parts, args) -> pd.DataFrame:
    from core.measure import devices, machine_state, sweep

    if args.out:
        out_format = _checked_out(args.out, force=args.force)
    settings = _settings(args)
    backends = _backends(args)
    machine = devices.machine_fingerprint()
    state = machine_state.snapshot()  # power, heat, versions: what changes the numbers
    settings_record = {**settings.as_dict(), "backends": [b.label for b in backends]}
    settings_record["machine_state"] = state
    record = None
    if not args.no_store:
        results_store = _open_store(args)
        record = recorder.recorder(
            results_store, machine, settings_record, label=f"python -m core {args.command}"
        )
    tasks = []
    for part in parts:
        workload = workloads.get(part.workload)
        planned = sweep.plan(workload, part.grid, backends, settings, group=part.chart)
        if record is not None:  # estimates learn from what this machine measured before
            history = results_store.history(workload.name, machine.get("machine", ""))
            planned = sweep.learned(planned, history, settings)
        tasks += planned
    against = _against(getattr(args, "against", None), tasks)
    print("backends: " + ", ".join(b.label for b in backends), file=sys.stderr)
    if len(parts) > 1 or sum(t.estimate_s for t in tasks) >= LONG_RUN_S:
        _say_if_busy()
        for line in machine_state.warnings(state):
            print(f"warning: {line}", file=sys.stderr)
    # A point measured again in a later round replaces its row: rows are kept by task.
    rows_by_part: dict[str, dict[tuple, dict]] = {part.chart: {} for part in parts}
    with tqdm(total=len(tasks), unit="point", file=sys.stderr, dynamic_ncols=True) as bar:

        def on_row(task, row):
            if record is not None:
                record(row)
            again = task.key in rows_by_part[task.group]
            rows_by_part[task.group][task.key] = row
            bar.set_postfix_str(f"{row['workload']} {row['backend']} {row['status']}")
            bar.update(0 if again else 1)

        done = sweep.measure(tasks, settings, on_row=on_row, budget_s=settings.sweep_budget_s)
    frames = []
    for part in parts:
        names = workloads.get(part.workload).param_names
        frame = results.to_frame(list(rows_by_part[part.chart].values()), names)
        frames.append(frame)
        print(
            f"\n{part.chart}\n"
            + tables.result_table(results.add_speedup(frame, against)).to_string(index=False)
        )
    if busy := tables.busy_summary(pd.DataFrame(done.rows)):
        print(f"\n{busy}", file=sys.stderr)
    if done.skipped:
        print(f"\nskipped for time ({len(done.skipped)} points):", file=sys.stderr)
        for point in done.skipped:
            on = ", ".join(t.backend.label for t in point)
            print(f"  {point[0].label} on {on}", file=sys.stderr)
    combined = pd.concat(frames, ignore_index=True) if frames else results.empty_frame()
    if args.out:
        # A machine column lets a CSV, which has no header for it, say where it was measured.
        labelled = combined.assign(machine=machine.get("machine", ""))
        _write(args.out, files.export_bytes(labelled, out_format, machine, settings_record))
        print(f"wrote {len(combined)} rows to {args.out}", file=sys.stderr)
    if record is not None:
        print(f"saved to {results_store.shown_url}", file=sys.stderr)
    return combined


def _ceilings(args) -> None:
    from core.measure import ceilings

    for backend in _backends(args):
        roofs = ceilings.cached(backend.device, backend.threads, refresh=args.refresh)
        peaks = ", ".join(
            f"{name} {units.rate(rate, 'FLOP')}"
            for name, rate in roofs.peak_flops_per_s.items()
            if math.isfinite(rate)
        )
        print(
            f"{backend.label}: copy {units.rate(roofs.bandwidth_bytes_per_s)} "
            f"(cache-sized {units.rate(roofs.cache_bandwidth_bytes_per_s)}); {peaks}"
        )


def _runs(args) -> None:
    listing = _open_store(args, write=False).runs(workload=args.workload)
    if listing.empty:
        print("no runs stored yet")
        return
    columns = ["run_id", "created_at", "workload", "machine", "rows", "ok_rows", "source", "label"]
    # Stored text came from files anyone can write: print it escaped, never raw.
    shown = listing[columns].map(lambda v: units.echo(v, 80) if isinstance(v, str) else v)
    print(shown.to_string(index=False))


def _export(args) -> None:
    results_store = _open_store(args, write=False)
    _checked_out(args.out, args.format, force=args.force, store=results_store)
    listing = results_store.runs(workload=args.workload)
    run_ids = args.run or list(listing["run_id"])
    unknown = sorted(set(run_ids) - set(listing["run_id"]))
    if unknown:
        raise BadInput(f"--run: '{unknown[0]}' is not in the store; see python -m core runs")
    if not run_ids:
        raise BadInput("nothing to export: the store holds no runs")
    frame = results_store.load(run_ids)
    fingerprints = listing.set_index("run_id")["fingerprint"]
    machines = {fingerprints[r].get("machine") for r in run_ids}
    # One machine's fingerprint travels in the file's header; runs of several machines
    # leave it empty, and each row's own machine column says where it was measured.
    machine = fingerprints[run_ids[0]] if len(machines) == 1 else {}
    stored = listing.set_index("run_id")["settings"]  # each run's, machine state included
    about = {"runs": run_ids, "run_settings": {r: stored[r] for r in run_ids}}
    _write(args.out, files.export_bytes(frame, args.format, machine, about))
    print(f"wrote {len(frame)} rows of {len(run_ids)} runs to {args.out}")


def _import(args) -> None:
    imported = files.import_file(args.file)
    print(_open_store(args).import_runs(imported, label=args.label).summary())


def _info(args) -> None:
    from core.measure import devices, machine_state

    for info in devices.describe_all():
        print(f"{info.device}: {info.name}")
        print(
            f"  memory: {units.bytes_(info.free_memory_bytes)} free of "
            f"{units.bytes_(info.total_memory_bytes)}"
            + (" (unified with the CPU)" if info.unified_memory else "")
        )
        if info.note:
            print(f"  {info.note}")
    print(f"CPU threads in use: {devices.cpu_threads()}")
    print(f"torch {devices.describe('cpu').torch_version}")
    state = machine_state.snapshot()
    for what, value in machine_state.describe(state):
        print(f"{what}: {value}")
    for line in machine_state.warnings(state):
        print(f"warning: {line}")


def _list(args) -> None:
    for workload in workloads.REGISTRY.values():
        print(f"{workload.name}: {workload.question}")
        for param in workload.params:
            unit = f" {param.unit}" if param.unit else ""
            print(f"  {param.name}={param.default}  ({param.allowed()}{unit})")


def _run(args) -> None:
    workload = workloads.get(args.workload)
    grid = parse_grid(workload, args.values)
    _run_parts([suites.SuitePart(workload.name, grid, workload.title)], args)


def _suite(args) -> None:
    if args.name not in suites.SUITES:
        raise BadInput(f"suite: '{args.name}' is not known; choose from {list(suites.SUITES)}")
    _run_parts(suites.SUITES[args.name], args)


def _selftest(args) -> None:
    from core.measure import devices, selftest

    out_format = _checked_out(args.out, force=args.force) if args.out else None
    checks = selftest.run(on_check=lambda check: print(check.line, flush=True))
    if out_format is not None:
        machine = devices.machine_fingerprint()
        frame = results.to_frame(selftest.rows(checks), ["check", "verdict"])
        frame = frame.assign(machine=machine.get("machine", ""))  # a CSV has no header for it
        settings = {"command": "python -m core selftest"}
        _write(args.out, files.export_bytes(frame, out_format, machine, settings))
        print(f"wrote the report to {args.out}: attach it to a bug report, or import it")
    counts = {v: sum(c.verdict == v for c in checks) for v in selftest.STATUS}
    print(", ".join(f"{count} {verdict}" for verdict, count in counts.items()))
    if counts[selftest.FAIL]:
        raise SystemExit(1)  # main() turns errors into 1 too, but this is no error


_COMMANDS = {  # name: (what runs it, its help line)
    "info": (_info, "devices, names, memory, threads, torch version"),
    "list": (_list, "workloads and their parameters"),
    "ceilings": (_ceilings, "measure and cache each device's roofs"),
    "run": (_run, "measure one workload over a grid"),
    "suite": (_suite, "measure a named grid, e.g. the post's"),
    "runs": (_runs, "list the stored runs"),
    "export": (_export, "write stored runs to a file"),
    "import": (_import, "check a results file and add it to the store"),
    "selftest": (_selftest, "check this machine's timing path in about a minute"),
}


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        _COMMANDS[args.command][0](args)
        return 0
    except BadInput as error:  # one line, whatever the input echoed in it
        print(f"error: {units.echo(error, limit=400)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
        return 130
    except Exception as error:  # the promise is no traceback, ever
        print(f"error: {units.one_line(error, typed=True)}", file=sys.stderr)
        return 1
