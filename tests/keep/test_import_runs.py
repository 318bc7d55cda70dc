"""Imports keep runs as they were exported and recognise the runs a store already holds."""

from __future__ import annotations

import pandas as pd
import pytest

from core.cli import main
from core.keep import files, results
from core.keep.store import Store

LAPTOP = {"machine": "Laptop X", "cpu_model": "Test CPU", "ram_bytes": 8 * 1024**3}
DESKTOP = {"machine": "Desktop Y", "cpu_model": "Other CPU"}


def rows(run_id: str, sizes=(16, 32)) -> pd.DataFrame:
    made = [
        {"run_id": run_id, "workload": "matmul", "size": size, "backend": "cpu (1 thread)",
         "device": "cpu", "dtype": "float32", "median_s": 1e-4 * size, "status": "ok"}
        for size in sizes
    ]  # fmt: skip
    return results.to_frame(made, ["size"])


@pytest.fixture
def source(tmp_path):
    """A store of 44 runs: 40 on one machine, 4 on another, as measuring would leave them."""
    with Store(f"sqlite:///{tmp_path / 'source.sqlite'}") as kept:
        for number in range(44):
            machine = LAPTOP if number < 40 else DESKTOP
            kept.add_frame(rows(f"run-{number:02d}"), f"run-{number:02d}", machine=machine)
        yield kept


def export(kept: Store, path, run_ids=None) -> str:
    """What ``python -m core export`` writes: one file, one header, every run's rows."""
    picked = [arg for run_id in run_ids or () for arg in ("--run", run_id)]
    command = ["export", "--format", path.suffix[1:], "--out", str(path), "--store", kept.url]
    assert main([*command, *picked]) == 0
    return str(path)


@pytest.mark.parametrize("fmt", ["json", "csv", "parquet"])
def test_a_44_run_export_imports_as_44_runs_each_with_its_machine(source, tmp_path, fmt):
    path = export(source, tmp_path / f"all.{fmt}")
    with Store(f"sqlite:///{tmp_path / 'target.sqlite'}") as target:
        report = target.import_runs(files.import_file(path))
        assert len(report.stored) == 44 and not report.skipped and report.rows == 88
        runs = target.runs().set_index("run_id")
        assert sorted(runs.index) == sorted(source.runs()["run_id"])
        assert runs.loc["run-00", "machine"] == "Laptop X"
        assert runs.loc["run-43", "machine"] == "Desktop Y"
        assert (runs["rows"] == 2).all() and set(runs["source"]) == {"imported"}
        assert set(target.load("run-43")["machine"]) == {"Desktop Y"}


def test_importing_the_same_file_twice_skips_every_run_and_says_so(source, tmp_path):
    path = export(source, tmp_path / "all.json")
    with Store(f"sqlite:///{tmp_path / 'target.sqlite'}") as target:
        target.import_runs(files.import_file(path))
        before = (len(target.runs()), target.row_count())
        report = target.import_runs(files.import_file(path))
        assert report.summary() == "0 runs imported (0 rows), 44 already stored: skipped"
        assert (len(target.runs()), target.row_count()) == before


def test_only_the_new_runs_of_a_file_are_stored(source, tmp_path):
    first = export(source, tmp_path / "first.json", [f"run-{n:02d}" for n in range(41)])
    every = export(source, tmp_path / "every.csv")
    with Store(f"sqlite:///{tmp_path / 'target.sqlite'}") as target:
        target.import_runs(files.import_file(first))
        report = target.import_runs(files.import_file(every))
        assert report.summary() == (
            "3 runs imported (6 rows) as run-41, run-42, run-43, 41 already stored: skipped"
        )
        assert len(target.runs()) == 44 and target.row_count() == 88


def test_a_run_exported_from_this_store_is_already_there(source, tmp_path):
    path = export(source, tmp_path / "mine.csv", ["run-00"])  # CSV: the machine's label only
    report = source.import_runs(files.import_file(path))
    assert report.skipped == ("run-00",) and not report.stored


def test_another_machines_run_of_the_same_id_is_kept_apart(tmp_path):
    with Store(f"sqlite:///{tmp_path / 'target.sqlite'}") as target:
        target.add_frame(rows("shared"), "shared", machine=LAPTOP)
        theirs = files.ImportedRun(rows("shared", sizes=(64,)), DESKTOP, {})
        first = target.import_runs(theirs)
        (kept_as,) = first.stored
        assert kept_as.startswith("shared@") and target.run_info(kept_as)["machine"] == DESKTOP
        assert target.import_runs(theirs).skipped == ("shared",)
        assert len(target.runs()) == 2


def test_a_file_without_run_ids_is_recognised_by_its_rows(tmp_path):
    path = tmp_path / "other-tool.csv"
    rows("x").drop(columns="run_id").to_csv(path, index=False)
    with Store(f"sqlite:///{tmp_path / 'target.sqlite'}") as target:
        (run_id,) = target.import_runs(files.import_file(path)).stored
        assert run_id.startswith("import-")
        assert target.import_runs(files.import_file(path)).skipped == (run_id,)
        assert len(target.runs()) == 1


def test_the_cli_says_what_it_imported_and_skipped(source, tmp_path, capsys):
    path = export(source, tmp_path / "all.parquet")
    target = f"sqlite:///{tmp_path / 'target.sqlite'}"
    capsys.readouterr()
    assert main(["import", path, "--store", target]) == 0
    assert capsys.readouterr().out.strip() == "44 runs imported (88 rows)"
    assert main(["import", path, "--store", target]) == 0
    assert capsys.readouterr().out.strip() == (
        "0 runs imported (0 rows), 44 already stored: skipped"
    )
