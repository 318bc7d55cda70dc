"""The CLI with the store: every finished point survives a kill, and files travel."""

import os
import signal
import subprocess
import sys
import time

from core.cli import main
from core.keep.store import Store


def _run_matmul(url: str, sizes: str, *extra: str) -> int:
    quick = ["--devices", "cpu", "--point-budget-s", "0.02", "--store", url]
    return main(["run", "matmul", f"size={sizes}", *quick, *extra])


def test_a_killed_sweep_keeps_every_finished_point(tmp_path):
    url = f"sqlite:///{tmp_path / 'kill.sqlite'}"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "core",
            "run",
            "matmul",
            "size=16,24,32,48,64,96,128,160,192,224,256",
            "--devices",
            "cpu:1,cpu:2",
            "--point-budget-s",
            "0.3",
            "--store",
            url,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        seen = 0
        while time.monotonic() < deadline and seen < 3:
            time.sleep(0.2)
            if os.path.exists(tmp_path / "kill.sqlite"):
                try:
                    seen = Store(url).row_count()
                except Exception:  # the file may exist before its tables do
                    seen = 0
        assert seen >= 3, "the sweep never got going"
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    store = Store(url)
    kept = store.load(list(store.runs()["run_id"]))
    assert len(kept) >= seen
    assert len(kept) < 22  # it was stopped part-way
    assert set(kept["status"]) == {"ok"}
    assert kept["median_s"].notna().all()


def test_runs_export_and_import_round_trip(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 's.sqlite'}"
    assert _run_matmul(url, "16,32") == 0
    assert main(["runs", "--store", url]) == 0
    assert "matmul" in capsys.readouterr().out
    for fmt in ("csv", "json", "parquet"):
        out = tmp_path / f"r.{fmt}"
        assert main(["export", "--format", fmt, "--out", str(out), "--store", url]) == 0
        other = f"sqlite:///{tmp_path / f'{fmt}.sqlite'}"
        assert main(["import", str(out), "--store", other]) == 0
        back = Store(other)
        frame = back.load(list(back.runs()["run_id"]))
        assert sorted(frame["size"]) == [16, 32]


def test_a_hostile_import_is_refused_and_leaves_the_store_alone(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'h.sqlite'}"
    bad = tmp_path / "bad.csv"
    bad.write_text("workload,backend,device,status,median_s\nmatmul,cpu,cpu,ok,=cmd()\n")
    assert main(["import", str(bad), "--store", url]) == 2
    assert "median_s" in capsys.readouterr().err
    assert Store(url).row_count() == 0


def test_no_store_writes_nothing(tmp_path):
    url = f"sqlite:///{tmp_path / 'n.sqlite'}"
    assert _run_matmul(url, "16", "--no-store") == 0
    assert not (tmp_path / "n.sqlite").exists()


def test_an_export_of_two_machines_keeps_each_rows_machine(tmp_path):
    url = f"sqlite:///{tmp_path / 'two.sqlite'}"
    assert _run_matmul(url, "16") == 0
    source = Store(url)
    frame = source.load(list(source.runs()["run_id"])).drop(columns=["machine", "source"])
    source.add_frame(frame.assign(run_id="other"), "other", machine={"machine": "Laptop X"})
    out = tmp_path / "both.json"
    assert main(["export", "--format", "json", "--out", str(out), "--store", url]) == 0
    target = f"sqlite:///{tmp_path / 'back.sqlite'}"
    assert main(["import", str(out), "--store", target]) == 0
    back = Store(target)
    rows = back.load(list(back.runs()["run_id"]))
    here = source.runs().set_index("run_id")["machine"].drop("other").iloc[0]
    assert set(rows["machine"]) == {here, "Laptop X"}
    assert back.runs().set_index("run_id").loc["other", "machine"] == "Laptop X"
