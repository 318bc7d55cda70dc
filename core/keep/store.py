"""Where runs are kept: one SQL database, SQLite by default, PostgreSQL by URL, both
through SQLAlchemy Core. A run is one sweep on one machine; its rows are the tidy rows of
``core.keep.results``, each fixed column an SQL column and the workload's parameters,
which differ per workload, one JSON object.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from core import units
from core.keep import results
from core.keep.files import ImportedRun, validate_frame

SCHEMA_VERSION = 1
STORE_ENV_VAR = "SPEEDUP_EXPLORER_STORE"
APP_NAME = "speedup-explorer"
SOURCES = ("measured", "imported", "reference")
# How long a write waits for another writer (SQLite allows one at a time) before giving up;
# a measured row that still cannot be stored then goes to the recovery file.
WRITE_WAIT_S = 30.0
# Rows converted and inserted at a time: a million-row import never becomes one list of dicts.
INSERT_CHUNK_ROWS = 20_000
_NO_RUN = "run '{}' does not exist; start_run() comes first"


class StoreError(RuntimeError):
    """The store cannot do what was asked; the text says why, on one line."""


# The SQL type of each pandas dtype in results.MEASUREMENT_COLUMNS.
_SQL_TYPES = dict(string=sa.Text, Int64=sa.BigInteger, float64=sa.Double, boolean=sa.Boolean)
# SQLite only autoincrements a column declared exactly INTEGER PRIMARY KEY.
_ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

metadata = sa.MetaData()

meta_table = sa.Table("meta", metadata, sa.Column("schema_version", sa.Integer, nullable=False))

runs_table = sa.Table(
    "runs",
    metadata,
    sa.Column("run_id", sa.Text, primary_key=True),
    # Naive UTC: SQLite keeps no time zone, so both engines store the same thing.
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("workload", sa.Text, nullable=False),
    sa.Column("label", sa.Text, nullable=False),
    sa.Column("machine", sa.Text, nullable=False),
    sa.Column("settings", sa.Text, nullable=False),
    sa.Column("source", sa.Text, nullable=False),
)

results_table = sa.Table(
    "results",
    metadata,
    sa.Column("id", _ROW_ID, primary_key=True, autoincrement=True),
    sa.Column(
        "run_id",
        sa.Text,
        sa.ForeignKey("runs.run_id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("workload", sa.Text, nullable=False),
    sa.Column("timestamp", sa.Text),
    sa.Column("params", sa.Text, nullable=False),
    *[sa.Column(name, _SQL_TYPES[dtype]()) for name, dtype in results.MEASUREMENT_COLUMNS.items()],
)

# What names one point of a run on one backend: a run measures it once, in one or more rounds.
_SAME_POINT = ("run_id", "workload", "params", "backend", "dtype")

# Each column's Python type, as the database driver wants a cell (params is JSON text).
_CASTS = {
    c.name: c.type.python_type for c in results_table.columns if c.name not in ("id", "params")
}


def _migrate_0_to_1(conn: Connection) -> None:
    """Version 0 stores had no ``meta`` table and no ``runs.source``."""
    columns = {c["name"] for c in sa.inspect(conn).get_columns("runs")}
    if "source" not in columns:
        conn.execute(sa.text("ALTER TABLE runs ADD COLUMN source TEXT NOT NULL DEFAULT 'measured'"))


# MIGRATIONS[v] upgrades a store from version v to v + 1, inside the opening transaction.
MIGRATIONS: list[Callable[[Connection], None]] = [_migrate_0_to_1]
assert len(MIGRATIONS) == SCHEMA_VERSION


def default_store_url() -> str:
    """The SQLite file in this user's data folder, unless SPEEDUP_EXPLORER_STORE names a URL."""
    if override := os.environ.get(STORE_ENV_VAR, "").strip():
        return override
    folder = _data_folder()
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(folder / 'results.sqlite').as_posix()}"


def _data_folder() -> Path:
    """This user's data folder: the default store's, and the recovery file of a server's."""
    import platformdirs  # only needed for the default locations

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def _first_line(error: BaseException) -> str:
    """The first line of what the database driver said, under SQLAlchemy's wrapper."""
    return units.one_line(getattr(error, "orig", None) or error)


def _sqlite_pragmas(write: bool) -> Callable[[Any, Any], None]:
    def set_pragmas(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" hook own transactions: pysqlite's own handling does not
        # put DDL inside them, and a migration must be all or nothing.
        dbapi_connection.isolation_level = None
        # The busy wait comes first: switching a new file to WAL takes a lock too. Each
        # attempt waits a second at most; Store._write retries up to WRITE_WAIT_S.
        # WAL keeps readers (the app) and the writer (a sweep) out of each other's way;
        # NORMAL sync in WAL mode loses nothing committed when a process is killed. A
        # reader changes nothing, not even the journal mode of another program's file.
        pragmas = ["busy_timeout=1000", "foreign_keys=ON"]
        pragmas += ["synchronous=NORMAL"] if write else ["query_only=ON"]
        for p in pragmas:
            dbapi_connection.execute(f"PRAGMA {p}")
        if write:
            query = (
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
            tables = {row[0] for row in dbapi_connection.execute(query)}
            if not tables or "meta" in tables or {"runs", "results"} <= tables:
                dbapi_connection.execute("PRAGMA journal_mode=WAL")  # never another program's

    return set_pragmas


def _begin(conn: Connection) -> None:
    # A writer takes the write lock up front: a deferred transaction that reads first
    # fails at once ("database is locked") under WAL when another writer got in between.
    immediate = conn.get_execution_options().get("write_lock")
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _is_busy(error: BaseException) -> bool:
    orig = getattr(error, "orig", error)
    text = str(orig).lower()
    return isinstance(orig, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (also a file: URI); None for memory and other engines."""
    parsed = sa.make_url(url)
    database = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or database in ("", ":memory:"):
        return None
    if database.startswith("file:"):
        database = database[5:].split("?")[0]
        if not database or database == ":memory:" or "mode=memory" in url:
            return None
    return Path(database)


def _make_engine(url: str, write: bool = True) -> tuple[Engine, str]:
    """The engine and a printable URL (no password). Nothing is connected yet."""
    try:
        parsed = sa.make_url(url)
    except (sa.exc.ArgumentError, ValueError) as error:
        hidden = re.sub(r"://[^@/]*@", "://***@", str(url))  # no password on screen
        raise StoreError(
            f"store URL '{hidden}' is not a database URL: {_first_line(error)}"
        ) from None
    shown = parsed.render_as_string(hide_password=True)
    kwargs: dict[str, Any] = {}
    if parsed.get_backend_name() == "postgresql":
        kwargs["pool_pre_ping"] = True  # a server restart must not break the next write
        if "connect_timeout" not in parsed.query:
            # An unreachable server should fail in seconds, not after the OS's TCP timeout.
            kwargs["connect_args"] = {"connect_timeout": 5}
    try:
        engine = sa.create_engine(parsed, **kwargs)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as error:
        raise StoreError(f"cannot use store {shown}: {_first_line(error)}") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas(write))
        event.listen(engine, "begin", _begin)
    return engine, shown


def _record(row: dict, run_id: str | None = None) -> dict:
    """One result row as the ``results`` table holds it."""
    # JSON and the drivers want built-in types, and None for every missing or infinite value.
    plain = {name: units.plain(value, finite=True) for name, value in row.items()}
    # Other workloads' parameters in a mixed table are empty here and not kept.
    params = {
        n: plain[n] for n in results.param_columns(plain, derived=False) if plain[n] is not None
    }
    if run_id is not None:
        plain["run_id"] = run_id
    for name in ("workload", "run_id"):
        if not plain.get(name):
            raise StoreError(f"a result row has no {name}")
    record = {n: None if plain.get(n) is None else cast(plain[n]) for n, cast in _CASTS.items()}
    return {**record, "params": json.dumps(params)}


def _run_exists(conn: Connection, run_id: str) -> bool:
    query = sa.select(runs_table.c.run_id).where(runs_table.c.run_id == run_id)
    return conn.execute(query).first() is not None


@dataclass(frozen=True)
class ImportReport:
    """What an import did: the runs it stored, those already stored, the rows written."""

    stored: tuple[str, ...]
    skipped: tuple[str, ...]
    rows: int

    def summary(self) -> str:
        """'3 runs imported (120 rows), 41 already stored: skipped'."""
        count = len(self.stored)
        text = f"{count} run{'s' * (count != 1)} imported ({self.rows} rows)"
        if self.stored and len(self.stored) <= 3:
            text += f" as {', '.join(self.stored)}"
        if self.skipped:
            text += f", {len(self.skipped)} already stored: skipped"
        return text


def _import_target(conn: Connection, run_id: str, machine: dict) -> str | None:
    """Where an imported run goes: its own id, or, when another machine's run has that id,
    its id and its machine's; None when it is stored there already."""
    digest = hashlib.sha1(json.dumps(machine, sort_keys=True, default=str).encode())
    for candidate in (run_id, f"{run_id}@{digest.hexdigest()[:8]}"):
        query = sa.select(runs_table.c.machine).where(runs_table.c.run_id == candidate)
        found = conn.execute(query).scalar()
        if found is None:
            return candidate
        there = json.loads(found)
        if all(there.get(key) == value for key, value in machine.items()):
            return None
    raise StoreError(f"run '{run_id}' is stored twice already, for other machines")


_DAMAGED = (
    "store {} is damaged ({}); nothing was written to it. To recover, export what can still "
    "be read (python -m core export --store <this store> --format csv --out old.csv), then "
    "start a new store (another file, or move this one away)"
)


class Store:
    """A results database.

    ``Store(url)`` opens it for writing: it creates or upgrades the tables, checks that a
    SQLite file is not damaged and proves that it can write, all before anything is
    measured. ``Store(url, write=False)`` only reads: it creates, migrates and changes
    nothing, and a database that does not exist yet reads as an empty store. Either way a
    database that holds other tables and none of this program's is refused.
    """

    def __init__(self, url: str | None = None, *, write: bool = True) -> None:
        self.url = url or default_store_url()
        self.write = write
        self.engine, self.shown_url = _make_engine(self.url, write)
        # Writes take SQLite's write lock up front (BEGIN IMMEDIATE).
        self._writer = self.engine.execution_options(write_lock=True)
        self._empty = False  # a read-only view of a store that has no tables yet
        if not write and (path := sqlite_file(self.url)) is not None and not path.exists():
            self._empty = True  # connecting would create the file
            return
        with self._errors("cannot open store"):
            if write:
                self._write("cannot open store", self._prepare)
            else:
                with self.engine.connect() as conn:
                    self._empty = self._version(conn) is None

    # -- plumbing

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        try:
            yield
        except StoreError:
            raise
        except (sa.exc.SQLAlchemyError, OSError) as error:
            why = _first_line(error)
            if any(word in why.lower() for word in ("readonly", "read-only", "permission")):
                raise StoreError(f"store {self.shown_url} cannot be written: {why}") from None
            raise StoreError(f"{action} {self.shown_url}: {why}") from None

    def _write(self, action: str, work: Callable[[Connection], Any]) -> Any:
        """``work(conn)`` in one write transaction, retried while another writer holds
        SQLite's lock, for WRITE_WAIT_S at most; StoreError after that."""
        deadline, pause = time.monotonic() + WRITE_WAIT_S, 0.02
        with self._errors(action):
            while True:
                try:
                    with self._writer.begin() as conn:
                        return work(conn)
                except sa.exc.OperationalError as error:
                    if not _is_busy(error) or time.monotonic() >= deadline:
                        raise
                time.sleep(pause)
                pause = min(pause * 2, 0.5)

    def _version(self, conn: Connection) -> int | None:
        """The schema version; None for a database with no tables at all. A database of
        another program's tables, or of a newer schema, is refused."""
        tables = set(sa.inspect(conn).get_table_names())
        if not tables:
            return None
        if "meta" not in tables and not {"runs", "results"} <= tables:
            shown = ", ".join(sorted(units.echo(t, 30) for t in tables)[:3])
            raise StoreError(
                f"{self.shown_url} is not a speedup-explorer store: it holds other tables "
                f"({shown}) and none of this program's; name another store"
            )
        version = 0
        if "meta" in tables:
            newest = sa.select(sa.func.max(meta_table.c.schema_version))
            version = conn.execute(newest).scalar() or 0
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"store schema version {version} is newer than this program's "
                f"{SCHEMA_VERSION}; upgrade speedup-explorer"
            )
        if version < SCHEMA_VERSION and not self.write:
            raise StoreError(
                f"store schema version {version} is older than this program's "
                f"{SCHEMA_VERSION}; run or import once to upgrade it"
            )
        return version

    def _read(self, action: str, query: sa.Select) -> pd.DataFrame:
        """The query's rows; a read-only view of a store with no tables yet has none."""
        if self._empty:
            names = [column.name for column in query.selected_columns]
            return pd.DataFrame({name: pd.Series(dtype=object) for name in names})
        with self._errors(action), self.engine.connect() as conn:
            return pd.read_sql(query, conn)

    def _check_intact(self, conn: Connection) -> None:
        """SQLite's quick check, once per opening for writing: a damaged file is refused
        before a result is measured, instead of taking rows it may not give back."""
        if conn.dialect.name != "sqlite":
            return
        try:
            found = [row[0] for row in conn.exec_driver_sql("PRAGMA quick_check").fetchall()]
        except sa.exc.DatabaseError as error:
            if _is_busy(error):
                raise
            found = [_first_line(error)]
        if found != ["ok"]:
            raise StoreError(_DAMAGED.format(self.shown_url, units.echo(found[0], 80)))

    def _prepare(self, conn: Connection) -> None:
        self._check_intact(conn)
        version = self._version(conn)  # None: a new store
        for migrate in [] if version is None else MIGRATIONS[version:]:
            migrate(conn)
        metadata.create_all(conn)
        self._add_missing_result_columns(conn)
        # Written on every opening: a store that cannot be written says so now, before
        # anything is measured, not after the first point.
        conn.execute(meta_table.delete())
        conn.execute(meta_table.insert().values(schema_version=SCHEMA_VERSION))

    def rescued(self, error: StoreError, row: dict, run: dict | None = None) -> StoreError:
        """Keep a measured row that could not be stored in the recovery file beside the
        store (JSON lines); the error to raise names the file."""
        if (path := sqlite_file(self.url)) is not None:
            path = path.with_name(path.name + ".recovery.jsonl")
        else:
            path = _data_folder() / "recovery.jsonl"
        line = {
            "saved_at": datetime.now(timezone.utc).isoformat(),
            "store": self.shown_url,
            "run": run,
            "row": {name: units.plain(value, finite=True) for name, value in row.items()},
        }
        try:
            with path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(line, default=str) + "\n")
        except OSError as problem:
            why = problem.strerror or problem
            return StoreError(f"{error}; the row could not be kept in {path} either: {why}")
        return StoreError(f"{error}; the row was kept in {path}")

    @staticmethod
    def _add_missing_result_columns(conn: Connection) -> None:
        # Measurement columns added to core.keep.results later arrive as empty columns: a
        # nullable column changes nothing for older rows, so it needs no schema version.
        present = {c["name"] for c in sa.inspect(conn).get_columns("results")}
        preparer = conn.dialect.identifier_preparer
        for column in results_table.columns:
            if column.name not in present:
                name, sql_type = preparer.quote(column.name), column.type.compile(conn.dialect)
                conn.execute(sa.text(f"ALTER TABLE results ADD COLUMN {name} {sql_type}"))

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.shown_url!r})"

    # -- writing

    def start_run(
        self, run_id: str, workload: str, machine: dict, settings: dict, label="", source="measured"
    ) -> str:
        self._write(
            "cannot start run in",
            lambda conn: self._insert_run(conn, run_id, workload, machine, settings, label, source),
        )
        return run_id

    @staticmethod
    def _insert_run(conn: Connection, run_id, workload, machine, settings, label, source) -> None:
        if source not in SOURCES:
            raise StoreError(f"source '{source}' is not one of {', '.join(SOURCES)}")
        if not run_id:
            raise StoreError("a run needs a run_id")
        if _run_exists(conn, run_id):
            raise StoreError(f"run '{run_id}' already exists in the store")
        label, now = label or "", datetime.now(timezone.utc).replace(tzinfo=None)
        machine, settings = (json.dumps(v or {}, default=str) for v in (machine, settings))
        row = dict(run_id=run_id, created_at=now, workload=workload, label=label, source=source)
        conn.execute(runs_table.insert().values(**row, machine=machine, settings=settings))

    def add_row(self, row: dict) -> None:
        """Write one finished point now, in its own transaction. A row that cannot be
        stored is kept in the recovery file, which the StoreError names."""
        record = _record(row)

        # A lone INSERT, with the foreign key checking the run. A point measured again in a
        # later round (busy or noisy) replaces its earlier row in the same transaction.
        def insert(conn: Connection) -> None:
            try:
                if (row.get("rounds") or 1) > 1:
                    same = [results_table.c[c] == record[c] for c in _SAME_POINT]
                    conn.execute(results_table.delete().where(*same))
                conn.execute(results_table.insert(), [record])
            except sa.exc.IntegrityError:
                raise StoreError(_NO_RUN.format(record["run_id"])) from None

        try:
            self._write("cannot save a result to", insert)
        except StoreError as error:
            raise self.rescued(error, row) from None

    @staticmethod
    def _check_run(conn: Connection, run_id: str) -> None:
        if not _run_exists(conn, run_id):
            raise StoreError(_NO_RUN.format(run_id))

    def add_frame(
        self,
        frame: pd.DataFrame,
        run_id: str | None = None,
        *,
        machine: dict | None = None,
        settings: dict | None = None,
        label: str = "",
        source: str = "measured",
    ) -> int:
        """Write a whole table in one transaction; returns the number of rows written.

        With ``run_id``, every row goes to that run (started here, with ``machine``
        and ``settings``, if it does not exist yet); without it, each row's own
        ``run_id`` must name a started run.
        """

        run = dict(machine=machine, settings=settings, label=label, source=source)
        self._write("cannot save results to", lambda c: self._insert_frame(c, frame, run_id, run))
        return len(frame)

    def _insert_frame(self, conn: Connection, frame: pd.DataFrame, run_id, run: dict) -> None:
        if run_id is not None and not _run_exists(conn, run_id):
            workloads = ",".join(dict.fromkeys(str(w) for w in frame.get("workload", [])))
            self._insert_run(conn, run_id, workloads, **run)
        for start in range(0, len(frame), INSERT_CHUNK_ROWS):
            part = frame.iloc[start : start + INSERT_CHUNK_ROWS].to_dict(orient="records")
            records = [_record(row, run_id) for row in part]
            for wanted in dict.fromkeys(r["run_id"] for r in records):
                self._check_run(conn, wanted)
            conn.execute(results_table.insert(), records)

    def import_runs(self, imported: ImportedRun, label: str | None = None) -> ImportReport:
        """Store an imported file's runs as they were exported, skipping those already
        stored; all of them or, on any problem, none of them.

        A run is already stored when a run of its id has its machine: every fingerprint
        field the file gives matches (a CSV only gives the machine's label). A run whose
        id is taken by another machine's run is stored under its id and that machine's.
        A table that ``import_file`` did not check is checked here, before anything is written.
        """
        if not imported.checked:
            imported = replace(imported, frame=validate_frame(imported.frame), checked=True)
        if label is None:
            label = f"imported from {imported.name}" if imported.name else "imported"
        runs = imported.runs()

        def write(conn: Connection) -> ImportReport:  # retried whole while SQLite is busy
            stored, skipped, rows = [], [], 0
            for run_id, frame, machine in runs:
                machine = {"machine": "unknown machine (imported)", **machine}
                where = _import_target(conn, run_id, machine)
                if where is None:
                    skipped.append(run_id)
                    continue
                run = dict(machine=machine, settings=imported.settings_of(run_id), label=label,
                           source="imported")  # fmt: skip
                self._insert_frame(conn, frame, where, run)
                stored.append(where)
                rows += len(frame)
            return ImportReport(tuple(stored), tuple(skipped), rows)

        return self._write("cannot import into", write)

    def delete_run(self, run_id: str) -> int:
        """Remove a run and its rows; returns how many result rows went with it."""

        def delete(conn: Connection) -> int:
            gone = conn.execute(results_table.delete().where(results_table.c.run_id == run_id))
            conn.execute(runs_table.delete().where(runs_table.c.run_id == run_id))
            return int(gone.rowcount or 0)

        return self._write("cannot delete from", delete)

    # -- reading

    def runs(
        self,
        workload: str | None = None,
        machine: str | None = None,
        since: datetime | str | None = None,
    ) -> pd.DataFrame:
        """One row per run, newest first, with how many rows it has and how many are ok.

        ``machine`` is a machine label as ``devices.machine_fingerprint()`` writes it.
        """
        r, res = runs_table, results_table
        ok = sa.func.sum(sa.case((res.c.status == "ok", 1), else_=0))
        columns = ["run_id", "created_at", "workload", "label", "source", "machine", "settings"]
        run_columns = [r.c[name] for name in columns]
        query = (
            sa.select(*run_columns, sa.func.count(res.c.id).label("rows"), ok.label("ok_rows"))
            .select_from(r.outerjoin(res, res.c.run_id == r.c.run_id))
            .group_by(*run_columns)
            .order_by(r.c.created_at.desc(), r.c.run_id)
        )
        if workload is not None:
            has_rows = sa.select(res.c.run_id).where(res.c.workload == workload)
            query = query.where(sa.or_(r.c.workload == workload, r.c.run_id.in_(has_rows)))
        if isinstance(since, str):
            try:
                since = datetime.fromisoformat(since)
            except ValueError:
                raise StoreError(f"'{units.echo(since)}' is not an ISO date or time") from None
        if since is not None:
            if since.tzinfo is not None:  # stored as naive UTC
                since = since.astimezone(timezone.utc).replace(tzinfo=None)
            query = query.where(r.c.created_at >= since)
        frame = self._read("cannot read runs from", query)
        frame["fingerprint"] = frame.pop("machine").map(json.loads)
        frame["settings"] = frame["settings"].map(json.loads)
        frame["machine"] = frame["fingerprint"].map(lambda found: found.get("machine", ""))
        if machine is not None:
            frame = frame[frame["machine"] == machine].reset_index(drop=True)
        frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)  # stored naive UTC
        frame[["rows", "ok_rows"]] = frame[["rows", "ok_rows"]].fillna(0).astype("int64")
        return frame[[*columns[:-1], "rows", "ok_rows", "fingerprint", "settings"]]

    def run_info(self, run_id: str) -> dict:
        """A run's machine fingerprint, settings, label and source."""
        item = None
        if not self._empty:
            with self._errors("cannot read runs from"), self.engine.connect() as conn:
                query = sa.select(runs_table).where(runs_table.c.run_id == run_id)
                item = conn.execute(query).mappings().first()
        if item is None:
            raise StoreError(f"run '{run_id}' is not in the store")
        return {**item, **{key: json.loads(item[key]) for key in ("machine", "settings")}}

    def load(self, run_ids: str | Iterable[str], limit: int | None = None) -> pd.DataFrame:
        """The tidy result table of these runs, with ``machine`` and ``source`` added; with
        ``limit``, their first rows only (the app draws at most that many)."""
        run_ids = [run_ids] if isinstance(run_ids, str) else list(run_ids)
        res, r = results_table, runs_table
        query = (
            sa.select(res, r.c.machine.label("_machine"), r.c.source.label("_source"))
            .select_from(res.join(r, r.c.run_id == res.c.run_id))
            .where(res.c.run_id.in_(run_ids))
            .order_by(res.c.id)
            .limit(limit)
        )
        table = self._read("cannot read results from", query)
        if table.empty:
            return results.empty_frame().assign(machine=None, source=None)
        params = pd.DataFrame([json.loads(p) for p in table.pop("params")], index=table.index)
        label_of = {m: json.loads(m).get("machine", "") for m in set(table["_machine"])}
        table["machine"] = table.pop("_machine").map(label_of)
        table["source"] = table.pop("_source")
        return results.to_frame(
            pd.concat([table.drop(columns="id"), params], axis=1), params.columns
        )

    def history(self, workload: str, machine: str, limit: int = 500) -> pd.DataFrame:
        """The newest measured rows of ``workload`` on ``machine`` (a machine label), with
        what time estimates learn from (``sweep.learned``): the point's parameters,
        backend, dtype, flops, bytes, wall_s, rounds, flags, its first and steady calls (a
        first call's one-time set-up is not the point's), and its repeats and precision
        (whether it settled or spent its budget)."""
        res, r = results_table, runs_table
        names = ("workload", "backend", "dtype", "flops", "bytes", "wall_s", "rounds", "flags")
        names += ("first_call_s", "median_s", "n", "rel_precision")
        columns = [res.c[c] for c in (*names, "params")]
        query = (
            sa.select(*columns, r.c.machine.label("_machine"))
            .select_from(res.join(r, r.c.run_id == res.c.run_id))
            .where(res.c.workload == workload, res.c.status == "ok", res.c.wall_s.is_not(None))
            .order_by(res.c.id.desc())
            .limit(limit)
        )
        table = self._read("cannot read results from", query)
        mine = table.pop("_machine").map(lambda text: json.loads(text).get("machine") == machine)
        # A point's parameters say which earlier points it is like (an op, a model, a
        # variant: compiling is no guide to eager points).
        params = pd.DataFrame([json.loads(text) for text in table.pop("params")], index=table.index)
        table = table.join(params[[name for name in params if name not in table]])
        return table[mine.astype(bool)].reset_index(drop=True)

    def row_count(self, run_id: str | None = None) -> int:
        """How many result rows the store holds (of one run, if given)."""
        query = sa.select(sa.func.count()).select_from(results_table)
        if run_id is not None:
            query = query.where(results_table.c.run_id == run_id)
        if self._empty:
            return 0
        with self._errors("cannot read results from"), self.engine.connect() as conn:
            return int(conn.execute(query).scalar() or 0)
