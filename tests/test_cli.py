"""The CLI end to end, in a subprocess, as a user runs it."""

import subprocess
import sys

import pandas as pd
import pytest

from core.cli import main
from tests.helpers import cli


def test_info_names_the_cpu_threads_and_torch(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "cpu:" in out
    assert "CPU threads in use" in out
    assert "torch " in out


def test_list_shows_parameters_with_defaults_and_ranges(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "elementwise:" in out
    assert "size=10000000  (1000..1e9 elements)" in out


def test_run_writes_a_table_and_a_csv(tmp_path):
    out = tmp_path / "r.csv"
    done = cli(
        "run",
        "elementwise",
        "op=add,sin",
        "size=1e3",
        "--devices",
        "cpu:1,cpu:2",
        "--point-budget-s",
        "0.05",
        "--out",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    assert "speedup" in done.stdout and "cpu (2 threads)" in done.stdout
    frame = pd.read_csv(out)
    assert len(frame) == 4
    assert set(frame["status"]) == {"ok"}


def test_a_refused_point_is_reported_not_raised(capsys):
    assert main(["run", "matmul", "size=4096", "--memory-budget", "1MB", "--devices", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "refused" in out and "needs about" in out


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["run", "nope"], "workload: 'nope'"),
        (["run", "elementwise", "op=tan"], "op: 'tan'"),
        (["run", "inference", "model=vgg"], "model: 'vgg'"),
        (["run", "elementwise", "--devices", "tpu"], "device: 'tpu'"),
        (["run", "elementwise", "--dtype", "int3"], "dtype: 'int3'"),
        (["run", "elementwise", "size=0"], "size: 0 is out of range"),
        (["run", "elementwise", "size=-5"], "size: -5 is out of range"),
        (["run", "elementwise", "size=abc"], "size: 'abc' is not a number"),
        (["run", "elementwise", "size=1e99"], "out of range"),
        (["run", "elementwise", "size="], "size: no value"),
        (["run", "matmul", "size=16", "size=32"], "size: given twice"),
        (["run", "elementwise", "--memory-budget", "8XB"], "memory budget: '8XB'"),
        (["run", "elementwise", "--threads", "0"], "--threads"),
        (["run", "elementwise", "--budget-s", "soon"], "--budget-s"),
        (["run", "elementwise", "--out", "x.xlsx"], "--out"),
        (["suite", "bogus"], "suite: 'bogus'"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_no_traceback(args, fragment, capsys):
    # In-process, to keep the suite quick; the subprocess test below covers the real entry.
    assert main(args) == 2
    stderr = capsys.readouterr().err
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert fragment in lines[0]


def test_bad_input_from_the_real_entry_point_is_one_line():
    done = cli("run", "elementwise", "size=abc")
    assert done.returncode == 2
    assert done.stderr.strip() == "error: size: 'abc' is not a number; allowed 1000..1e9"


def test_importing_core_loads_no_streamlit():
    code = (
        "import sys, core, core.cli, core.measure.sweep, core.show.charts, core.show.crossover, "
        "core.keep.store, core.keep.files, core.keep.reference; "
        "assert 'streamlit' not in sys.modules, 'streamlit loaded'"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_the_cli_imports_torch_only_for_commands_that_measure(tmp_path):
    code = (
        "import sys; from core.cli import main; "
        f"assert main(['runs', '--store', 'sqlite:///{tmp_path}/s.sqlite']) == 0; "
        "assert 'torch' not in sys.modules, 'torch loaded'"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_out_is_checked_before_anything_is_measured(tmp_path, capsys, monkeypatch):
    from core.measure import sweep

    monkeypatch.setattr(sweep, "measure_task", lambda *a, **k: pytest.fail("measured"))
    existing = tmp_path / "old.csv"
    existing.write_text("keep me")
    bad = {
        str(tmp_path / "no" / "such" / "r.csv"): "does not exist",
        str(tmp_path): "is not a CSV",
        str(tmp_path / "r.txt"): "is not a CSV",
        str(existing): "--force",
    }
    for out, fragment in bad.items():
        assert main(["run", "matmul", "size=16", "--no-store", "--out", out]) == 2
        assert fragment in capsys.readouterr().err
    assert existing.read_text() == "keep me"


def test_export_never_writes_over_the_store_nor_in_the_wrong_format(tmp_path, capsys):
    store = tmp_path / "store.sqlite"
    url = f"sqlite:///{store}"
    assert main(["run", "matmul", "size=16", "--point-budget-s", "0.02", "--store", url]) == 0
    before = store.read_bytes()
    args = ["export", "--store", url, "--format", "csv", "--force", "--out"]
    assert main([*args, str(store)]) == 2
    assert store.read_bytes() == before
    assert main([*args, str(tmp_path / "x.parquet")]) == 2
    assert "--format is csv" in capsys.readouterr().err
    assert main([*args, str(tmp_path / "x.csv")]) == 0
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".speedup-")]


def test_thread_counts_and_budgets_beyond_the_machine_are_clamped_with_a_note(capsys):
    from core.measure import devices

    logical = devices.cpu_core_counts()[1]
    args = ["run", "matmul", "size=16", "--no-store", "--point-budget-s", "0.02"]
    assert main([*args, "--devices", "cpu:100000", "--memory-budget", "1e30TB"]) == 0
    captured = capsys.readouterr()
    assert "100000 CPU threads asked for" in captured.err
    assert "is more than cpu has" in captured.err
    assert f"cpu ({4 * logical} threads" in captured.out


def test_long_bad_input_is_cut_in_the_one_line_error(capsys):
    assert main(["run", "elementwise", "op=" + "x" * 10_000, "--no-store"]) == 2
    err = capsys.readouterr().err
    assert len(err) < 500 and err.count("\n") == 1


@pytest.fixture
def quick_selftest(monkeypatch):
    """The self-test's checks replaced by instant ones with known verdicts."""
    from core.measure import selftest

    def use(*verdicts):
        checks = {f"check {i}": (lambda d, v=v: (v, f"said {v}")) for i, v in enumerate(verdicts)}
        monkeypatch.setattr(selftest, "CHECKS", checks)
        monkeypatch.setattr(selftest.devices, "device_strings", lambda: ["cpu"])

    return use


def test_selftest_prints_a_verdict_per_check_and_writes_an_importable_report(
    tmp_path, capsys, quick_selftest
):
    from core.keep import files

    quick_selftest("pass", "not applicable")
    out = tmp_path / "selftest.json"
    assert main(["selftest", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "check 0 on cpu: pass (said pass)" in printed
    assert "check 1 on cpu: not applicable (said not applicable)" in printed
    assert "1 pass, 0 fail, 1 not applicable" in printed
    imported = files.import_file(out)
    assert list(imported.frame["status"]) == ["ok", "skipped"]
    assert imported.machine["machine"]  # the machine card travels with the report


def test_selftest_exits_1_when_a_check_fails(quick_selftest, capsys):
    quick_selftest("pass", "fail")
    with pytest.raises(SystemExit) as stopped:
        main(["selftest"])
    assert stopped.value.code == 1
    assert "check 1 on cpu: fail" in capsys.readouterr().out


def test_selftest_refuses_a_bad_out_before_running(tmp_path, quick_selftest, capsys):
    quick_selftest("fail")  # never reached: bad input exits 2 first
    assert main(["selftest", "--out", str(tmp_path / "report.txt")]) == 2
    existing = tmp_path / "report.json"
    existing.write_text("{}")
    assert main(["selftest", "--out", str(existing)]) == 2
    assert "--force" in capsys.readouterr().err
