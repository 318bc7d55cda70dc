"""The results store, on SQLite and, where a server is given, on PostgreSQL.

Set SPEEDUP_EXPLORER_TEST_PG to a SQLAlchemy URL (for example
postgresql+psycopg://postgres:postgres@127.0.0.1:5432/postgres) to run every store
test on PostgreSQL too; each test gets a schema of its own there. With
CI_REQUIRE_POSTGRES=1 a missing or unreachable server fails instead of skipping.
"""

import json
import os
import sqlite3
import uuid
from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest
import sqlalchemy as sa

from core.keep import files, results, store
from core.keep.files import FileRejected, ImportedRun
from core.keep.store import SCHEMA_VERSION, Store, StoreError
from core.measure import sweep

PG_URL = os.environ.get("SPEEDUP_EXPLORER_TEST_PG", "").strip()
REQUIRE_PG = os.environ.get("CI_REQUIRE_POSTGRES", "") == "1"
MACHINE = {"machine": "Test GPU + Test CPU", "cpu_model": "Test CPU"}
SETTINGS = {"repeats": 5, "dtype": "float32"}
CONV = ["batch", "channels", "size", "kernel"]


def _no_postgres(reason: str):
    if REQUIRE_PG:
        pytest.fail(f"CI_REQUIRE_POSTGRES=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request, tmp_path):
    """A URL of an empty store: a SQLite file, or a fresh schema on the PostgreSQL server."""
    if request.param == "sqlite":
        yield f"sqlite:///{(tmp_path / 'store.sqlite').as_posix()}"
        return
    if not PG_URL:
        _no_postgres("SPEEDUP_EXPLORER_TEST_PG is not set (a PostgreSQL SQLAlchemy URL)")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_URL, connect_args={"connect_timeout": 5})
    try:
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.OperationalError as error:
        admin.dispose()
        shown = sa.make_url(PG_URL).render_as_string(hide_password=True)
        why = str(error.orig).strip().splitlines()[0]
        _no_postgres(f"PostgreSQL at {shown} is unreachable: {why}")
    url = sa.make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    yield url.render_as_string(hide_password=False)
    with admin.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture
def open_store(store_url):
    """Opens stores on the test's URL and closes them all afterwards."""
    opened = []

    def make() -> Store:
        opened.append(Store(store_url))
        return opened[-1]

    yield make
    for each in opened:
        each.close()


def conv_row(run_id: str, kernel: int, **overrides) -> dict:
    row = {
        "run_id": run_id,
        "timestamp": "2026-03-21T10:15:00+00:00",
        "workload": "conv2d",
        "batch": 1,
        "channels": 64,
        "size": 128,
        "kernel": kernel,
        "backend": "cpu (2 threads)",
        "device": "cpu",
        "device_name": "Test CPU",
        "dtype": "float32",
        "threads": 2,
        "median_s": 0.001 * kernel,
        "p25_s": 0.0009 * kernel,
        "p75_s": 0.0011 * kernel,
        "min_s": 0.0008 * kernel,
        "max_s": 0.0012 * kernel,
        "mean_s": 0.00101 * kernel,
        "n": 5,
        "rel_precision": 0.02,
        "noisy": False,
        "first_call_s": 0.04,
        "times_s": json.dumps([0.001 * kernel] * 5),
        "dispatch_floor_s": 1e-6,
        "flops": 1e9 * kernel,
        "bytes": 1e6,
        "gflops_per_s": 100.0,
        "gb_per_s": 1.0,
        "memory_estimate_bytes": 5e6,
        "peak_memory_bytes": 7e6,
        "max_rel_err": 1e-7,
        "cold_cache": True,
        "pct_of_ceiling": 12.5,
        "flags": "",
        "status": "ok",
        "message": "",
    }
    row.update(overrides)
    return row


def conv_rows(run_id: str) -> list[dict]:
    return [
        conv_row(run_id, 3),
        conv_row(run_id, 5, backend="cuda:0", device="cuda:0", threads=None, noisy=None),
        conv_row(run_id, 7, status="failed", median_s=None, n=None, message="out of memory"),
    ]


def count(s: Store) -> tuple[int, int]:
    return len(s.runs()), s.row_count()


# --- opening -------------------------------------------------------------------------


def test_new_store_is_at_the_current_version(open_store, store_url):
    open_store()
    engine = sa.create_engine(store_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT schema_version FROM meta")).scalars().all() == [1]
    engine.dispose()
    assert open_store().runs().empty  # a second open of the same store changes nothing


def test_sqlite_uses_wal_and_normal_sync(tmp_path):
    path = tmp_path / "store.sqlite"
    with Store(f"sqlite:///{path}") as s, s.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_newer_schema_version_is_refused(open_store, store_url):
    open_store()
    engine = sa.create_engine(store_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE meta SET schema_version = 7"))
    engine.dispose()
    with pytest.raises(StoreError) as caught:
        Store(store_url)
    assert str(caught.value) == (
        "store schema version 7 is newer than this program's 1; upgrade speedup-explorer"
    )


V0_TABLES = """
CREATE TABLE runs (
    run_id TEXT PRIMARY KEY, created_at TIMESTAMP NOT NULL, workload TEXT NOT NULL,
    label TEXT NOT NULL, machine TEXT NOT NULL, settings TEXT NOT NULL
);
CREATE TABLE results (
    id INTEGER PRIMARY KEY, run_id TEXT NOT NULL REFERENCES runs (run_id),
    workload TEXT NOT NULL, timestamp TEXT, params TEXT NOT NULL,
    backend TEXT, device TEXT, median_s DOUBLE PRECISION, n BIGINT, status TEXT
);
INSERT INTO runs VALUES ('old-run', '2025-01-02 03:04:05', 'matmul', 'from v0',
    '{"machine": "Old box"}', '{}');
INSERT INTO results (run_id, workload, timestamp, params, backend, device, median_s, n, status)
    VALUES ('old-run', 'matmul', '2025-01-02T03:04:05+00:00', '{"size": 512}', 'cpu', 'cpu',
    0.25, 5, 'ok');
"""


def test_unversioned_v0_store_is_upgraded(store_url):
    """A hand-made version-0 store: no meta table, no runs.source, fewer result columns."""
    engine = sa.create_engine(store_url)
    ddl = V0_TABLES
    if engine.dialect.name == "postgresql":
        ddl = ddl.replace("id INTEGER PRIMARY KEY", "id BIGSERIAL PRIMARY KEY")
    with engine.begin() as conn:
        for statement in filter(str.strip, ddl.split(";")):
            conn.execute(sa.text(statement))
    engine.dispose()
    with Store(store_url) as s:
        runs = s.runs()
        assert runs["run_id"].tolist() == ["old-run"]
        assert runs["source"].tolist() == ["measured"]
        assert runs["machine"].tolist() == ["Old box"]
        frame = s.load("old-run")
        assert frame["size"].tolist() == [512]
        assert frame["median_s"].tolist() == [0.25]
        assert frame["p25_s"].isna().all()  # a column v0 did not have
        s.add_row({**conv_row("old-run", 3), "workload": "matmul"})
        assert s.row_count("old-run") == 2
    engine = sa.create_engine(store_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT schema_version FROM meta")).scalar() == SCHEMA_VERSION
    engine.dispose()


def test_migration_list_matches_schema_version():
    assert len(store.MIGRATIONS) == SCHEMA_VERSION


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("not a url", "is not a database URL"),
        ("nosuchdb://host/x", "cannot use store"),
        ("postgresql+psycopg://u:secret@127.0.0.1:1/db", "cannot open store"),
        ("sqlite:////nonexistent-folder/deeper/store.sqlite", "cannot open store"),
    ],
)
def test_bad_urls_give_one_line_errors(url, expected):
    with pytest.raises(StoreError, match=expected) as caught:
        Store(url)
    message = str(caught.value)
    assert "\n" not in message and "secret" not in message


def test_default_url_is_in_the_user_data_folder(monkeypatch, tmp_path):
    import platformdirs

    monkeypatch.delenv(store.STORE_ENV_VAR, raising=False)
    monkeypatch.setattr(platformdirs, "user_data_dir", lambda *a, **k: str(tmp_path / "data"))
    url = store.default_store_url()
    assert url == f"sqlite:///{(tmp_path / 'data' / 'results.sqlite').as_posix()}"
    assert (tmp_path / "data").is_dir()
    monkeypatch.setenv(store.STORE_ENV_VAR, "postgresql+psycopg://example/db")
    assert store.default_store_url() == "postgresql+psycopg://example/db"


# --- writing and reading -------------------------------------------------------------


def test_rows_round_trip_with_values_and_dtypes(open_store):
    s = open_store()
    s.start_run("run-1", "conv2d", MACHINE, SETTINGS, label="first")
    rows = conv_rows("run-1")
    for row in rows:
        s.add_row(row)
    loaded = s.load("run-1")
    expected = results.to_frame(rows, CONV)
    assert loaded["machine"].tolist() == [MACHINE["machine"]] * 3
    assert loaded["source"].tolist() == ["measured"] * 3
    pd.testing.assert_frame_equal(loaded.drop(columns=["machine", "source"]), expected)


def test_each_row_is_committed_at_once(open_store):
    writer, reader = open_store(), open_store()
    writer.start_run("run-1", "conv2d", MACHINE, SETTINGS)
    writer.add_row(conv_row("run-1", 3))
    # A separate connection pool sees the row: it was committed, not left in a transaction.
    assert reader.row_count("run-1") == 1
    writer.add_row(conv_row("run-1", 5))
    assert reader.row_count("run-1") == 2


def test_add_frame_writes_a_table_and_starts_the_run(open_store):
    s = open_store()
    frame = results.to_frame(conv_rows("ignored"), CONV)
    assert s.add_frame(frame, "run-2", machine=MACHINE, settings=SETTINGS, label="t") == 3
    info = s.run_info("run-2")
    assert info["machine"] == MACHINE and info["settings"] == SETTINGS
    assert info["workload"] == "conv2d" and info["label"] == "t"
    assert s.load(["run-2"])["run_id"].unique().tolist() == ["run-2"]


def test_mixed_workloads_load_with_every_parameter(open_store):
    s = open_store()
    s.start_run("a", "conv2d", MACHINE, SETTINGS)
    s.start_run("b", "matmul", {"machine": "Other"}, SETTINGS)
    s.add_row(conv_row("a", 3))
    s.add_row(
        {
            **conv_row("b", 3),
            "workload": "matmul",
            "size": 1024,
            "batch": None,
            "channels": None,
            "kernel": None,
        }
    )
    frame = s.load(["a", "b"])
    assert results.param_columns(frame)[:4] == CONV
    assert frame["size"].tolist() == [128, 1024]
    assert frame["kernel"].isna().tolist() == [False, True]
    assert frame["machine"].tolist() == ["Test GPU + Test CPU", "Other"]


def test_history_carries_what_estimates_learn_from(open_store):
    s = open_store()
    s.start_run("a", "conv2d", MACHINE, SETTINGS)
    s.start_run("b", "conv2d", {"machine": "Other"}, SETTINGS)
    s.add_row(conv_row("a", 3, wall_s=1.5, first_call_s=0.5))
    s.add_row(conv_row("a", 5, wall_s=9.0, variant="compile", rounds=3))
    s.add_row(conv_row("b", 3, wall_s=2.0))  # another machine's time is no guide here
    history = s.history("conv2d", MACHINE["machine"])
    by_kernel = history.set_index("flops")
    assert sorted(history["wall_s"]) == [1.5, 9.0]
    # Compiling is no guide to eager points, and three rounds cost three times one.
    assert by_kernel.loc[5e9, "variant"] == "compile" and by_kernel.loc[5e9, "rounds"] == 3
    assert pd.isna(by_kernel.loc[3e9, "variant"])  # eager, as rows before variants were
    # A first call's one-time set-up (a library's first use) is not the point's to repeat.
    assert by_kernel.loc[3e9, "first_call_s"] == 0.5 and by_kernel.loc[3e9, "median_s"] == 0.003
    assert sweep._round_s(by_kernel.loc[3e9].to_dict()) == pytest.approx(1.5 - (0.5 - 0.003))
    # Whether a point settled: enough repeats for the precision target, and its precision.
    assert by_kernel.loc[3e9, ["n", "rel_precision"]].tolist() == [
        conv_row("a", 3)[name] for name in ("n", "rel_precision")
    ]


def test_errors_on_unknown_or_duplicate_runs(open_store):
    s = open_store()
    with pytest.raises(StoreError, match="run 'nope' does not exist"):
        s.add_row(conv_row("nope", 3))
    s.start_run("run-1", "conv2d", MACHINE, SETTINGS)
    with pytest.raises(StoreError, match="already exists"):
        s.start_run("run-1", "conv2d", MACHINE, SETTINGS)
    with pytest.raises(StoreError, match="source 'made up'"):
        s.start_run("run-2", "conv2d", MACHINE, SETTINGS, source="made up")
    with pytest.raises(StoreError, match="is not in the store"):
        s.run_info("nope")
    assert s.load("nope").empty


def test_runs_lists_counts_and_filters(open_store):
    s = open_store()
    s.start_run("conv", "conv2d", MACHINE, SETTINGS, label="convs")
    for row in conv_rows("conv"):
        s.add_row(row)
    s.start_run("mm", "matmul", {"machine": "Other box"}, SETTINGS)
    runs = s.runs()
    assert set(runs["run_id"]) == {"conv", "mm"}
    conv = runs.set_index("run_id").loc["conv"]
    assert (conv["rows"], conv["ok_rows"]) == (3, 2)
    assert conv["label"] == "convs" and conv["source"] == "measured"
    assert conv["fingerprint"] == MACHINE and conv["settings"] == SETTINGS
    assert str(runs["created_at"].dtype).startswith("datetime64") and runs["created_at"].dt.tz
    assert s.runs(workload="matmul")["run_id"].tolist() == ["mm"]
    assert s.runs(machine="Other box")["run_id"].tolist() == ["mm"]
    future = datetime.now(timezone.utc) + timedelta(hours=1)
    assert s.runs(since=future).empty
    assert len(s.runs(since=(future - timedelta(days=1)).isoformat())) == 2


def test_delete_run_removes_its_rows_only(open_store):
    s = open_store()
    for run_id in ("keep", "drop"):
        s.start_run(run_id, "conv2d", MACHINE, SETTINGS)
        for row in conv_rows(run_id):
            s.add_row(row)
    assert s.delete_run("drop") == 3
    assert s.runs()["run_id"].tolist() == ["keep"]
    assert s.row_count() == 3


# --- imports -------------------------------------------------------------------------


def exported(tmp_path, fmt: str = "json") -> str:
    path = tmp_path / f"results.{fmt}"
    frame = results.to_frame(conv_rows("their-run"), CONV)
    path.write_bytes(files.export_bytes(frame, fmt, MACHINE, SETTINGS))
    return path


def test_import_run_stores_a_new_run(open_store, tmp_path):
    s = open_store()
    (run_id,) = s.import_runs(files.import_file(exported(tmp_path))).stored
    info = s.run_info(run_id)
    assert info["source"] == "imported" and info["machine"] == MACHINE
    assert info["label"] == "imported from results.json"
    frame = s.load(run_id)
    assert len(frame) == 3 and frame["run_id"].unique().tolist() == [run_id]
    assert frame["median_s"].tolist()[:2] == [0.003, 0.005]
    # Importing the same file twice stores it once.
    assert s.import_runs(files.import_file(exported(tmp_path))).skipped == (run_id,)


def test_import_without_machine_gets_a_label(open_store, tmp_path):
    s = open_store()
    (run_id,) = s.import_runs(files.import_file(exported(tmp_path, "csv")), label="theirs").stored
    info = s.run_info(run_id)
    assert info["machine"]["machine"] == "unknown machine (imported)"
    assert info["label"] == "theirs"


def _truncated(tmp_path):
    path = exported(tmp_path, "json")
    path.write_bytes(path.read_bytes()[:-40])
    return path


def _wrong_type(tmp_path):
    path = exported(tmp_path, "csv")
    path.write_text(path.read_text().replace(",0.003,", ",abc,", 1))
    return path


def _huge(tmp_path):
    path = tmp_path / "huge.parquet"
    with open(path, "wb") as handle:
        handle.truncate(files.MAX_IMPORT_BYTES + 1)
    return path


def _formula(tmp_path):
    path = exported(tmp_path, "csv")
    path.write_text(path.read_text().replace(",out of memory,", ",=cmd|' /C calc'!A0,"))
    return path


def _future_version(tmp_path):
    path = exported(tmp_path, "json")
    document = json.loads(path.read_text())
    document["schema_version"] = 99
    path.write_text(json.dumps(document))
    return path


def _pickle(tmp_path):
    import pickle

    path = tmp_path / "results.parquet"
    path.write_bytes(pickle.dumps({"rows": [1, 2, 3]}))
    return path


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (_truncated, "truncated"),
        (_wrong_type, "median_s is not a number"),
        (_huge, "not imported"),
        (_formula, "formula"),
        (_future_version, "schema_version 99 is not supported"),
        (_pickle, "pickle"),
    ],
)
def test_hostile_imports_leave_the_store_unchanged(open_store, tmp_path, make, expected):
    s = open_store()
    s.import_runs(files.import_file(exported(tmp_path)))
    before = count(s)
    with pytest.raises(FileRejected, match=expected):
        s.import_runs(files.import_file(make(tmp_path)))
    assert count(s) == before


def test_import_run_checks_a_frame_before_writing(open_store):
    s = open_store()
    rows = conv_rows("x")
    rows[2]["median_s"] = -1.0
    bad = ImportedRun(results.to_frame(rows, CONV), MACHINE, SETTINGS)
    with pytest.raises(FileRejected, match="row 3: median_s is below 0"):
        s.import_runs(bad)
    assert count(s) == (0, 0)


def test_import_run_is_one_transaction(open_store, monkeypatch):
    s = open_store()
    good = ImportedRun(results.to_frame(conv_rows("x"), CONV), MACHINE, SETTINGS)

    def fail_after_run_insert(conn, run_id):
        raise StoreError("the database went away")

    monkeypatch.setattr(Store, "_check_run", staticmethod(fail_after_run_insert))
    with pytest.raises(StoreError, match="went away"):
        s.import_runs(good)
    monkeypatch.undo()
    assert count(s) == (0, 0)
