"""Issue 10: never lose a result. Concurrent writers, damaged, read-only and foreign stores,
and imports that used to crash, hang or store terminal escapes."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from core.cli import main
from core.keep import files, store
from core.keep.store import Store, StoreError
from tests.helpers import cli

ROOT = Path(__file__).resolve().parents[1]
GRID = ["elementwise", "op=add,mul", "size=1e3,1e4,1e5"]
FAST = ["--devices", "cpu", "--point-budget-s", "0.02", "--no-check"]


def _main(capsys, *args: str) -> tuple[int, str, str]:
    """The CLI in this process (torch is imported once for all tests)."""
    code = main(list(args))
    done = capsys.readouterr()
    return code, done.out, done.err


def _rows(url: str) -> int:
    with Store(url) as kept:
        return kept.row_count()


def _result_rows(count: int = 3) -> list[dict]:
    return [
        {"workload": "matmul", "size": 16 * (i + 1), "backend": "cpu", "device": "cpu",
         "status": "ok", "median_s": 1e-4 * (i + 1), "dtype": "float32"}
        for i in range(count)
    ]  # fmt: skip


def _json_file(path: Path, rows: list[dict], machine: dict | None = None) -> Path:
    document = {"schema_version": 1, "machine": machine or {}, "settings": {}, "rows": rows}
    path.write_text(json.dumps(document))
    return path


# --- 1. concurrent writers -------------------------------------------------------------


def test_eight_concurrent_cli_runs_keep_every_row(tmp_path):
    url = f"sqlite:///{tmp_path / 'shared.sqlite'}"
    outs = [tmp_path / f"out{i}.csv" for i in range(8)]
    base = [sys.executable, "-m", "core", "run", *GRID, "--point-budget-s", "0.05", "--no-check"]
    base += ["--devices", "cpu:1"]  # eight processes on two cores: no thread oversubscription
    processes = [
        subprocess.Popen(
            [*base, "--store", url, "--out", str(out)],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for out in outs
    ]
    errors = [p.communicate(timeout=240)[1] for p in processes]
    failed = [
        e.strip().splitlines()[-1] for p, e in zip(processes, errors, strict=True) if p.returncode
    ]
    assert not failed, failed
    written = sum(len(pd.read_csv(out)) for out in outs)
    assert written >= 8 * 6
    assert _rows(url) == written
    with Store(url) as kept:
        assert len(kept.runs()) == 8


_SESSION = textwrap.dedent(
    """
    import pathlib, sys, time
    sys.path.insert(0, {root!r})
    import core.measure.sweep, ui.runner  # the slow imports, before the start line
    from tests.ui.apptest_helpers import open_page
    folder = pathlib.Path(sys.argv[1])
    (folder / f"ready{{sys.argv[2]}}").touch()
    while len(list(folder.glob("ready*"))) < 4:  # all four sessions open the store at once
        time.sleep(0.01)
    at = open_page("pages/matmul.py", size="16,32", devices="cpu")
    # Four sessions at once keep the machine busy, and the page rightly says so: only
    # other warnings are problems here.
    problems = [str(e.value) for e in [*at.exception, *at.warning, *at.error]
                if not str(e.value).startswith("The machine was busy")]
    print(len(at.dataframe[0].value) if at.dataframe else 0)
    print(problems)
    """
)


def test_four_concurrent_app_sessions_keep_every_row(tmp_path):
    url = f"sqlite:///{tmp_path / 'app.sqlite'}"
    script = tmp_path / "session.py"
    script.write_text(_SESSION.format(root=str(ROOT)))
    env = {**os.environ, "SPEEDUP_EXPLORER_STORE": url}
    processes = [
        subprocess.Popen(
            [sys.executable, str(script), str(tmp_path), str(i)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(4)
    ]
    outputs = [p.communicate(timeout=240)[0].strip().splitlines() for p in processes]
    assert all(p.returncode == 0 for p in processes), outputs
    assert [o[-1] for o in outputs] == ["[]"] * 4, outputs  # no "not being saved" warning
    written = sum(int(o[-2]) for o in outputs)
    assert written >= 4 * 2
    assert _rows(url) == written


def test_a_row_that_cannot_wait_any_longer_goes_to_the_recovery_file(tmp_path, monkeypatch):
    path = tmp_path / "busy.sqlite"
    url = f"sqlite:///{path}"
    kept = Store(url)
    kept.start_run("r1", "matmul", {"machine": "m"}, {})
    monkeypatch.setattr(store, "WRITE_WAIT_S", 0.3)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another writer keeps the lock
    try:
        row = {**_result_rows(1)[0], "run_id": "r1"}
        with pytest.raises(StoreError) as caught:
            kept.add_row(row)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    recovery = Path(f"{path}.recovery.jsonl")
    assert str(recovery) in str(caught.value)
    (saved,) = [json.loads(line) for line in recovery.read_text().splitlines()]
    assert saved["row"]["median_s"] == row["median_s"] and saved["row"]["run_id"] == "r1"
    assert kept.row_count() == 0
    kept.close()


# --- 3. a damaged store ----------------------------------------------------------------


def test_a_damaged_store_refuses_run_and_import(tmp_path, capsys):
    path = tmp_path / "damaged.sqlite"
    url = f"sqlite:///{path}"
    rows = [{**row, "message": "x" * 200} for row in _result_rows(3)] * 300
    with Store(url) as kept:
        kept.import_runs(files.ImportedRun(pd.DataFrame(rows)))
    size = path.stat().st_size
    assert size > 64 * 1024 and not Path(f"{path}-wal").exists()
    with path.open("r+b") as handle:
        handle.seek(size // 2 // 4096 * 4096)
        handle.write(b"\xa5" * 4096)
    good = _json_file(tmp_path / "good.json", _result_rows())
    for args in (["run", *GRID, *FAST], ["import", str(good)]):
        code, out, err = _main(capsys, *args, "--store", url)
        assert code in (1, 2), err
        assert "saved" not in err + out and "imported" not in out
        (line,) = err.strip().splitlines()
        assert "damaged" in line and "export" in line and "new store" in line, line


# --- 5. a read-only store --------------------------------------------------------------


def test_a_read_only_store_is_refused_before_measuring(tmp_path, capsys):
    path = tmp_path / "ro.sqlite"
    Store(f"sqlite:///{path}").close()
    url = f"sqlite:///file:{path}?mode=ro&uri=true"
    code, _, err = _main(capsys, "run", *GRID, *FAST, "--store", url)
    assert code == 2, err
    assert "backends:" not in err  # refused before the sweep began
    (line,) = err.strip().splitlines()
    assert "cannot be written" in line, line


# --- 6. read-only commands and foreign databases ----------------------------------------


def _tables_and_journal(path: Path) -> tuple[list, str]:
    with sqlite3.connect(path) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master ORDER BY name")]
        return names, conn.execute("PRAGMA journal_mode").fetchone()[0]


def test_a_foreign_database_is_refused_and_left_alone(tmp_path, capsys):
    path = tmp_path / "foreign.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    before = _tables_and_journal(path)
    url = f"sqlite:///{path}"
    good = _json_file(tmp_path / "good.json", _result_rows())
    commands = [
        ["runs"],
        ["export", "--format", "csv", "--out", str(tmp_path / "x.csv")],
        ["import", str(good)],
        ["run", *GRID, *FAST],
    ]
    for args in commands:
        code, _, err = _main(capsys, *args, "--store", url)
        assert code == 2, (args, err)
        (line,) = err.strip().splitlines()
        assert "not a speedup-explorer store" in line, line
    assert _tables_and_journal(path) == before


def test_read_only_commands_create_nothing(tmp_path, capsys):
    path = tmp_path / "nothing.sqlite"
    assert main(["runs", "--store", f"sqlite:///{path}"]) == 0
    assert "no runs stored yet" in capsys.readouterr().out
    assert not path.exists()
    out = str(tmp_path / "x.csv")
    assert main(["export", "--format", "csv", "--out", out, "--store", f"sqlite:///{path}"]) == 2
    assert not path.exists()


def test_reading_opens_no_write_transaction(tmp_path):
    path = tmp_path / "kept.sqlite"
    url = f"sqlite:///{path}"
    with Store(url) as kept:
        kept.start_run("r1", "matmul", {"machine": "m"}, {})
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # a writer busy elsewhere does not block a reader
    try:
        with Store(url, write=False) as reader:
            assert list(reader.runs()["run_id"]) == ["r1"]
    finally:
        holder.execute("ROLLBACK")
        holder.close()


# --- 10, 11, 13, 15: imports ----------------------------------------------------------


@pytest.mark.parametrize("column", ["median_s", "n", "size"])
def test_a_huge_integer_is_refused_naming_row_and_column(tmp_path, capsys, column):
    rows = _result_rows()
    rows[1][column] = int("9" * 401)
    path = _json_file(tmp_path / "huge.json", rows)
    with pytest.raises(files.FileRejected, match=rf"^row 2: {column} is too large"):
        files.import_file(path)
    assert main(["import", str(path)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"error: row 2: {column} ")


def test_a_number_with_thousands_of_digits_is_refused(tmp_path):
    text = json.dumps({"schema_version": 1, "rows": _result_rows()})
    path = tmp_path / "digits.json"
    path.write_text(text.replace('"median_s": 0.0001', '"median_s": ' + "9" * 5000, 1))
    with pytest.raises(files.FileRejected, match="digits"):
        files.import_file(path)


def test_importing_a_fifo_is_refused_at_once(tmp_path):
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    done = cli("import", str(fifo), timeout=60)
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert "not a regular file" in line, line
    with pytest.raises(files.FileRejected, match="not a regular file"):
        files.import_file(fifo)


def test_a_header_only_csv_says_it_has_no_rows():
    header = ",".join([*files.REQUIRED_COLUMNS, "schema_version"]) + "\n"
    with pytest.raises(files.FileRejected, match="no result rows") as caught:
        files.import_file(header.encode(), "csv")
    assert "schema" not in str(caught.value)


def test_a_semicolon_csv_asks_whether_it_is_comma_separated():
    rows = ["workload;size;backend;device;status;median_s", "matmul;16;cpu;cpu;ok;0,5"]
    text = "\n".join([*rows, "matmul;32;cpu;cpu;ok;1,5"]) + "\n"
    with pytest.raises(files.FileRejected, match="comma-separated"):
        files.import_file(text.encode(), "csv")


ESCAPES = "\x1b]0;PWNED\x07\x1b[2J"


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_control_characters_are_stripped_from_imported_text(tmp_path, fmt):
    rows = [{**row, "machine": f"box{ESCAPES}", "message": f"m{ESCAPES}"} for row in _result_rows()]
    if fmt == "json":
        path = _json_file(tmp_path / "esc.json", rows, machine={"cpu_model": f"cpu{ESCAPES}"})
    else:
        path = tmp_path / "esc.csv"
        pd.DataFrame(rows).to_csv(path, index=False)
    imported = files.import_file(path)
    assert imported.machine["machine"] == "box]0;PWNED[2J"
    assert set(imported.frame["message"]) == {"m]0;PWNED[2J"}
    url = f"sqlite:///{tmp_path / 'esc.sqlite'}"
    with Store(url) as kept:
        (run_id,) = kept.import_runs(imported).stored
        stored = kept.runs().iloc[0]
        assert stored["machine"] == "box]0;PWNED[2J"
        assert "\x1b" not in json.dumps(kept.run_info(run_id)["machine"], ensure_ascii=False)


def test_a_file_over_the_row_limit_is_refused_with_the_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "MAX_ROWS", 5)
    path = tmp_path / "many.csv"
    pd.DataFrame(_result_rows(6)).to_csv(path, index=False)
    with pytest.raises(files.FileRejected, match="more than 5 rows"):
        files.import_file(path)


def test_a_chunked_import_is_all_or_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "CHUNK_ROWS", 2)
    rows = _result_rows(5)
    rows[4]["status"] = "bogus"
    path = tmp_path / "late.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    with pytest.raises(files.FileRejected, match="row 5: status"):
        files.import_file(path)
    rows[4]["status"] = "ok"
    pd.DataFrame(rows).to_csv(path, index=False)
    imported = files.import_file(path)
    assert list(imported.frame["size"]) == [16, 32, 48, 64, 80]
    with Store(f"sqlite:///{tmp_path / 'chunks.sqlite'}") as kept:
        (run_id,) = kept.import_runs(imported).stored
        assert kept.row_count(run_id) == 5
