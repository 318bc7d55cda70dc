"""Result tables to and from files: CSV, JSON and Parquet.

Imports come from strangers, so every cell is checked before anything reaches the
store, and a rejected file is reported in one line that says what is wrong. Nothing
is ever unpickled: Parquet is read by pyarrow alone, with extension types refused.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import re
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pandas as pd

from core import units
from core.errors import BadInput
from core.keep import results

FILE_SCHEMA_VERSION = 1
FORMATS = ("csv", "json", "parquet")
MAX_IMPORT_BYTES = 50 * 1024 * 1024
MAX_ROWS = 1_000_000
# Rows parsed and checked at a time: a million-row file never becomes one list of cells.
CHUNK_ROWS = 50_000
MAX_COLUMNS = 200
MAX_TEXT_CHARS = 1_000_000
# One day: no single timed call of this program takes longer.
MAX_TIME_S = 86_400.0
REQUIRED_COLUMNS = ("workload", "backend", "device", "status", "median_s")
NO_RUN_ID = "imported"  # the run id of rows that came without one
PARQUET_META_PREFIX = "speedup_explorer."

_EXTENSIONS = {".csv": "csv", ".json": "json", ".parquet": "parquet", ".pq": "parquet"}
# Cells a spreadsheet would run as a formula (OWASP's list: = + - @ tab, carriage return).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_COLUMN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_MISSING_TEXT = {"", "nan", "na", "<na>", "null", "none"}
_CSV_BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
_INTEGER_RANGES = {"n": (0, 1_000_000_000), "threads": (1, 100_000)}
# Control characters (a terminal's escape sequences start with one), tab and newline kept.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


class FileRejected(BadInput):
    """An import was refused; the text says why, on one line."""


@dataclass
class ImportedRun:
    """A checked result table with what the file said about its machine and settings."""

    frame: pd.DataFrame
    machine: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
    name: str = ""  # the file's name, where known
    # Set by import_file, which checked every cell; a table built by hand is checked when
    # it is stored, so that no table is checked twice.
    checked: bool = field(default=False, repr=False)
    # Each run's machine label as its rows name it (an export's machine column), by run id.
    run_machines: dict[str, str] = field(default_factory=dict, repr=False)

    def runs(self) -> list[tuple[str, pd.DataFrame, dict]]:
        """The file's runs as they were exported: (run id, rows, machine), one per run id.

        Rows without a run id (files from other tools) are one run, whose id comes from
        its content, so that the same file imported twice names the same run. A run's
        machine is the file's own fingerprint, unless its rows name another machine.
        """
        ids = self.frame["run_id"].astype("string").fillna(NO_RUN_ID)
        found = []
        for run_id, rows in self.frame.groupby(ids, sort=False):
            if run_id == NO_RUN_ID:
                hashed = pd.util.hash_pandas_object(rows.drop(columns="run_id"), index=False)
                digest = hashlib.sha1(hashed.to_numpy().tobytes(), usedforsecurity=False)
                run_id = f"import-{digest.hexdigest()[:12]}"
            machine = dict(self.machine)
            label = self.run_machines.get(str(run_id))
            if label and machine.get("machine") != label:
                machine = {"machine": label}  # the file's fingerprint is another machine's
            found.append((str(run_id), rows.assign(run_id=run_id), machine))
        return found

    def settings_of(self, run_id: str) -> dict:
        """A run's own settings (its machine state among them): an export of stored runs
        keeps each run's under ``run_settings``; other files have one for all."""
        own = self.settings.get("run_settings")
        if isinstance(own, dict) and isinstance(own.get(str(run_id)), dict):
            return own[str(run_id)]
        return self.settings


def _check_format(fmt: str) -> str:
    if (wanted := _EXTENSIONS.get("." + str(fmt).lower().lstrip("."))) is None:
        raise FileRejected(f"format '{fmt}' is not supported; use csv, json or parquet")
    return wanted


def _is_formula(value: Any) -> bool:
    """Whether a spreadsheet would run this cell; plain numbers such as -2.5 are left alone."""
    return isinstance(value, str) and value[:1] in _FORMULA_START and not _PLAIN_NUMBER.match(value)


def _neutralise(value: Any) -> Any:
    return "'" + value if _is_formula(value) else value


def export_bytes(frame: pd.DataFrame, fmt: str, machine: dict, settings: dict) -> bytes:
    """A result table as a file's content, with the machine it ran on and the settings.

    JSON holds all three; Parquet keeps machine and settings in its key-value metadata;
    CSV holds the rows only, with text cells that a spreadsheet would run as formulas
    prefixed by an apostrophe. Writing it is the caller's (the CLI writes atomically).
    """
    fmt, out = _check_format(fmt), frame.copy()
    if fmt == "csv":
        for name in out.columns:
            if not pd.api.types.is_numeric_dtype(out[name]):  # booleans are numeric too
                out[name] = out[name].astype(object).map(_neutralise)
        out.columns = [_neutralise(str(c)) for c in out.columns]
        out["schema_version"] = FILE_SCHEMA_VERSION
        return out.to_csv(index=False, lineterminator="\n").encode("utf-8")
    extra = dict(schema_version=FILE_SCHEMA_VERSION, machine=machine or {}, settings=settings or {})
    if fmt == "json":
        rows = [
            {str(name): units.plain(value, finite=True) for name, value in row.items()}
            for row in frame.to_dict(orient="records")
        ]
        # allow_nan=False: NaN is not JSON, and other readers choke on it.
        text = json.dumps({**extra, "rows": rows}, allow_nan=False, default=str, indent=1)
        return text.encode("utf-8")
    import pyarrow as pa
    import pyarrow.parquet as pq

    for name in out.columns:
        if out[name].dtype == object:
            # Object columns of mixed None and numbers confuse Arrow's type inference.
            out[name] = out[name].map(lambda value: units.plain(value, finite=True))
    table = pa.Table.from_pandas(out, preserve_index=False)
    ours = {
        f"{PARQUET_META_PREFIX}{k}".encode(): json.dumps(v, default=str).encode()
        for k, v in extra.items()
    }
    sink = io.BytesIO()
    pq.write_table(table.replace_schema_metadata({**(table.schema.metadata or {}), **ours}), sink)
    return sink.getvalue()


def _refuse_over(size_bytes: int, max_bytes: int) -> None:
    if size_bytes > max_bytes:
        raise FileRejected(
            f"the file is {units.bytes_(size_bytes)}; "
            f"files over {units.bytes_(max_bytes)} are not imported"
        )


def _read_limited(source: Any, max_bytes: int) -> tuple[bytes, str]:
    """The file's bytes and name, refusing anything over ``max_bytes`` before reading it all."""
    name = ""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        name = path.name
        try:
            # Non-blocking, so that opening a FIFO returns at once; only a regular file is read.
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
            with os.fdopen(fd, "rb") as handle:
                info = os.fstat(handle.fileno())
                if not stat.S_ISREG(info.st_mode):
                    raise FileRejected(f"{units.echo(path.name)} is not a regular file")
                _refuse_over(info.st_size, max_bytes)
                data = handle.read(max_bytes + 1)
        except OSError as error:
            raise FileRejected(f"cannot read {path.name}: {error.strerror or error}") from None
    elif hasattr(source, "read"):
        name = Path(str(getattr(source, "name", "") or "")).name
        declared = getattr(source, "size", None)  # Streamlit's UploadedFile knows it
        if isinstance(declared, int):
            _refuse_over(declared, max_bytes)
        data = source.read(max_bytes + 1)
        if isinstance(data, str):
            data = data.encode("utf-8")
    else:
        raise FileRejected(
            f"cannot import a {type(source).__name__}; give a path or the file's bytes"
        )
    _refuse_over(len(data), max_bytes)  # also a file that grew while we looked
    return bytes(data), name


def _what_binary_is(data: bytes) -> str:
    if data[:1] == b"\x80" and data[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "it looks like a Python pickle, which is never loaded"
    if data[:4] == b"PK\x03\x04":
        return "it looks like a zip archive (torch.save writes those), which is never loaded"
    return "it is binary data"


def format_of_path(path: str) -> str:
    """csv, json or parquet, from a file name's extension; FileRejected otherwise."""
    if (fmt := _EXTENSIONS.get(Path(path).suffix.lower())) is None:
        raise FileRejected(
            f"'{path}' is not a CSV, JSON or Parquet file: its name must end in one of "
            + ", ".join(_EXTENSIONS)
        )
    return fmt


def _text_of(data: bytes, fmt: str) -> str:
    if b"\x00" in data:
        raise FileRejected(f"this is not a {fmt.upper()} file: {_what_binary_is(data)}")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise FileRejected(
            f"this is not a {fmt.upper()} file: byte {error.start} is not UTF-8 text"
        ) from None
    if not text.strip():
        raise FileRejected("the file is empty")
    return text


def _check_row_count(count: int) -> None:
    if count > MAX_ROWS:
        raise FileRejected(
            f"the file has more than {MAX_ROWS} rows; split it into files of at most "
            f"{MAX_ROWS} rows each"
        )


@dataclass
class _Raw:
    chunks: Iterable[dict[str, list]]  # the columns, CHUNK_ROWS rows at a time
    machine: dict
    settings: dict
    version: Any  # None: each chunk's schema_version column, if any, says
    origin: str  # "csv" cells are all text; "typed" cells carry their own types


def _chunked(count: int, take: Callable[[int, int], dict[str, list]]) -> Iterator[dict[str, list]]:
    """``take(start, stop)``, the columns of those rows, for each CHUNK_ROWS of ``count``."""
    for start in range(0, max(count, 1), CHUNK_ROWS):  # an empty table is one empty chunk
        yield take(start, min(start + CHUNK_ROWS, count))


def _lines(text: str) -> Iterator[str]:
    """The text's lines with their endings, without a copy of the whole text."""
    start = 0
    while start < len(text):
        end = text.find("\n", start)
        end = len(text) if end < 0 else end + 1
        yield text[start:end]
        start = end


def _parse_csv(data: bytes) -> _Raw:
    text = _text_of(data, "csv")
    if not text.endswith("\n"):
        # Every writer ends the last row with a line break; a file cut short does not.
        raise FileRejected("the file is truncated: its last line is cut off")
    csv.field_size_limit(max(csv.field_size_limit(), MAX_TEXT_CHARS))
    reader = csv.reader(_lines(text), strict=True)
    try:
        header = next(reader)
    except csv.Error as error:
        raise FileRejected(f"not a valid CSV file at line 1: {error}") from None
    if len(header) == 1 and any(sep in header[0] for sep in ";\t|"):
        raise FileRejected(
            f"the header is one column ({_show(header[0])}); is this comma-separated? "
            "Only commas separate columns here"
        )
    names = _check_names(header)
    return _Raw(_csv_chunks(reader, names), {}, {}, None, "csv")


def _csv_chunks(reader: Any, names: list[str]) -> Iterator[dict[str, list]]:
    rows: list[list[str]] = []
    count = 0
    try:
        for fields in filter(None, reader):  # blank lines are skipped
            if len(fields) != len(names):
                raise FileRejected(
                    f"row {count + 1} has {len(fields)} fields where the header has "
                    f"{len(names)} (line {reader.line_num}); the file may be truncated"
                )
            rows.append(fields)
            count += 1
            _check_row_count(count)
            if len(rows) == CHUNK_ROWS:
                yield {name: [fields[i] for fields in rows] for i, name in enumerate(names)}
                rows = []
    except csv.Error as error:
        raise FileRejected(
            f"not a valid CSV file at line {reader.line_num}: {error}; the file may be truncated"
        ) from None
    if rows or not count:
        yield {name: [fields[i] for fields in rows] for i, name in enumerate(names)}


def _parse_json(data: bytes) -> _Raw:
    text = _text_of(data, "json")
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise FileRejected(
            f"not valid JSON at line {error.lineno}, column {error.colno}: {error.msg}; "
            "the file may be truncated"
        ) from None
    except RecursionError:
        raise FileRejected("the JSON is nested too deeply") from None
    except ValueError:  # Python reads integers of at most 4300 digits
        raise FileRejected("a number in the JSON has thousands of digits") from None
    if not isinstance(document, dict):
        raise FileRejected(
            "the JSON must be an object with schema_version, machine, settings, rows"
        )
    if "schema_version" not in document:
        raise FileRejected("the JSON has no schema_version")
    rows = document.get("rows")
    if not isinstance(rows, list):
        raise FileRejected("the JSON has no 'rows' list")
    _check_row_count(len(rows))
    machine, settings = document.get("machine", {}), document.get("settings", {})
    for key, value in (("machine", machine), ("settings", settings)):
        if value is not None and not isinstance(value, dict):
            raise FileRejected(f"the JSON's {key} must be an object")
    for number, row in enumerate(rows, start=1):
        if not isinstance(row, dict):
            raise FileRejected(f"JSON row {number} is not an object")
    names = _check_names(list(dict.fromkeys(name for row in rows for name in row)))
    for number, row in enumerate(rows, start=1):
        for name, value in row.items():
            if isinstance(value, (dict, list)):
                raise FileRejected(f"row {number}: {name} is a nested {type(value).__name__}")

    def take(start: int, stop: int) -> dict[str, list]:
        return {name: [row.get(name) for row in rows[start:stop]] for name in names}

    chunks = _chunked(len(rows), take)
    return _Raw(chunks, machine or {}, settings or {}, document["schema_version"], "typed")


def _parse_parquet(data: bytes) -> _Raw:
    if data[:4] != b"PAR1":
        raise FileRejected(f"this is not a Parquet file: {_what_binary_is(data)}")
    if len(data) < 12 or data[-4:] != b"PAR1":
        raise FileRejected("the Parquet file is truncated: its footer is missing")
    import pyarrow as pa
    import pyarrow.parquet as pq

    plain = ("integer", "floating", "boolean", "string", "large_string", "null")
    try:
        parquet = pq.ParquetFile(io.BytesIO(data))
        info = parquet.metadata
        _check_row_count(info.num_rows)
        if info.num_columns > MAX_COLUMNS:
            raise FileRejected(f"the file has more than {MAX_COLUMNS} columns")
        expanded_bytes = sum(info.row_group(i).total_byte_size for i in range(info.num_row_groups))
        # A compressed Parquet file can expand far beyond its size on disk.
        if expanded_bytes > 20 * max(len(data), MAX_IMPORT_BYTES // 10):
            raise FileRejected(
                f"the Parquet file expands to {units.bytes_(expanded_bytes)}, which is too much"
            )
        schema = parquet.schema_arrow
        for column in schema:
            kind, name = column.type, column.name
            tags = column.metadata or {}
            if isinstance(kind, pa.ExtensionType) or b"ARROW:extension:name" in tags:
                # Old pyarrow unpickled Python extension types; refuse them outright.
                raise FileRejected(f"column '{name}' has an extension type, which is refused")
            kind = kind.value_type if pa.types.is_dictionary(kind) else kind
            kinds = plain + (("timestamp", "date") if name == "timestamp" else ())
            if not any(getattr(pa.types, f"is_{each}")(kind) for each in kinds):
                raise FileRejected(f"column '{name}' has type {kind}, which is not a plain value")
        table = parquet.read()
    except FileRejected:
        raise
    except (pa.ArrowException, OSError, ValueError) as error:
        raise FileRejected(f"not a readable Parquet file: {units.one_line(error)}") from None
    names = _check_names(table.column_names)

    def take(start: int, stop: int) -> dict[str, list]:
        part = table.slice(start, stop - start)
        # to_pylist decodes dictionary columns; plain writes dates and times as ISO text.
        return {
            name: [units.plain(value) for value in column.to_pylist()]
            for name, column in zip(names, part.columns, strict=True)
        }

    meta = {k.decode("utf-8", "replace"): v for k, v in (schema.metadata or {}).items()}
    machine, settings = _json_metadata(meta, "machine"), _json_metadata(meta, "settings")
    version = meta.get(f"{PARQUET_META_PREFIX}schema_version")
    version = None if version is None else version.decode("utf-8", "replace")
    return _Raw(_chunked(table.num_rows, take), machine, settings, version, "typed")


def _json_metadata(meta: dict, key: str) -> dict:
    raw = meta.get(f"{PARQUET_META_PREFIX}{key}")
    if raw is None:
        return {}
    try:
        value = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise FileRejected(f"the Parquet metadata's {key} is not valid JSON") from None
    if not isinstance(value, dict):
        raise FileRejected(f"the Parquet metadata's {key} must be an object")
    return value


def _check_names(names: list) -> list[str]:
    if len(names) > MAX_COLUMNS:
        raise FileRejected(f"the file has {len(names)} columns; at most {MAX_COLUMNS} are read")
    for number, name in enumerate(names, start=1):
        if not isinstance(name, str) or not name.strip():
            raise FileRejected(f"column {number} has no name")
        if not _COLUMN_NAME.match(name):
            raise FileRejected(
                f"column name {_show(name)} is not allowed: letters, digits and _ only"
            )
        if name in names[: number - 1]:
            raise FileRejected(f"column '{name}' appears twice")
    return list(names)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _reject(index: int, name: str, problem: str, value: Any) -> FileRejected:
    return FileRejected(f"row {index + 1}: {name} {problem} ({_show(value)})")


def _is_missing(value: Any, origin: str, *, text: bool = False) -> bool:
    """Whether a cell is empty. In CSV a number's cell may also say nan, NA or null."""
    if units.missing(value):
        return True
    if origin != "csv" or not isinstance(value, str):
        return False
    return value == "" if text else value.strip().lower() in _MISSING_TEXT


def _text_column(name: str, values: list, origin: str) -> list:
    # CSV cannot tell an empty string from a missing one; the sweep writes "" here.
    empty = "" if origin == "csv" and name in ("flags", "message") else None
    out = []
    for index, value in enumerate(values):
        if _is_missing(value, origin, text=True):
            out.append(empty)
            continue
        if not isinstance(value, str):
            raise _reject(index, name, "is not text", value)
        value = _CONTROL.sub("", value)  # no terminal escapes reach the store or a screen
        if len(value) > MAX_TEXT_CHARS:
            raise _reject(index, name, f"is longer than {MAX_TEXT_CHARS} characters", value)
        if origin == "csv":
            if _is_formula(value):
                raise _reject(index, name, "looks like a spreadsheet formula", value)
            if value.startswith("'") and value[1:].startswith(_FORMULA_START):
                value = value[1:]  # undo our own export's neutralising apostrophe
        out.append(value)
    return out


def _number(value: Any, origin: str) -> float | None:
    """The cell as a float, or None where it is not a number at all."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:  # an integer of hundreds of digits
            return math.inf if value > 0 else -math.inf
    if origin == "csv" and isinstance(value, str):
        text = value.strip()
        if _PLAIN_NUMBER.match(text) or text.lower().lstrip("+-") in ("inf", "infinity"):
            return float(text)
    return None


def _numeric_column(
    name: str, values: list, origin: str, integer: bool = False, low=None, high=None
) -> list:
    out: list = []
    for index, value in enumerate(values):
        if _is_missing(value, origin):
            out.append(None)
            continue
        number = _number(value, origin)
        if number is None:
            raise _reject(index, name, f"is not a{' whole' if integer else ''} number", value)
        if not math.isfinite(number):
            problem = "is too large" if isinstance(value, int) else "is not finite"
            raise _reject(index, name, problem, value)
        if integer and number != int(number):
            raise _reject(index, name, "is not a whole number", value)
        if low is not None and number < low:
            raise _reject(index, name, f"is below {units.compact(low)}", value)
        if high is not None and number > high:
            raise _reject(index, name, f"is above {units.compact(high)}", value)
        out.append(int(number) if integer else number)
    return out


def _bool_column(name: str, values: list, origin: str) -> list:
    out: list = []
    for index, value in enumerate(values):
        word = value.strip().lower() if origin == "csv" and isinstance(value, str) else None
        if _is_missing(value, origin):
            out.append(None)
        elif isinstance(value, bool) or (isinstance(value, int) and value in (0, 1)):
            out.append(bool(value))
        elif word in _CSV_BOOLEANS:
            out.append(_CSV_BOOLEANS[word])
        else:
            raise _reject(index, name, "is not true or false", value)
    return out


def _param_column(name: str, values: list, origin: str) -> list:
    """A workload parameter: numbers if every cell is one, else text."""
    present = [v for v in values if not _is_missing(v, origin)]
    if origin == "csv":
        numeric = all(_number(v, origin) is not None for v in present)
    else:
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present)
        if present and all(isinstance(v, bool) for v in present):
            return [None if _is_missing(v, origin) else v for v in values]
        if not numeric and not all(isinstance(v, str) for v in present):
            first = next(v for v in present if not isinstance(v, str))
            raise _reject(values.index(first), name, "mixes numbers and text", first)
    if not numeric or not present:
        return _text_column(name, values, origin)
    numbers = _numeric_column(name, values, origin)
    whole = all(
        re.match(r"^[+-]?\d+$", v.strip()) if origin == "csv" else isinstance(v, int)
        for v in present
    )
    # Whole numbers with gaps become floats, as pandas itself would make them.
    if whole and len(present) == len(values):
        return [int(n) for n in numbers]
    return [math.nan if n is None else n for n in numbers]


def _is_times_list(text: str) -> bool:
    try:
        times = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return False
    return isinstance(times, list) and all(
        isinstance(t, (int, float)) and not isinstance(t, bool) and 0 <= t <= MAX_TIME_S
        for t in times  # NaN and infinities fail the range
    )


def _validate(raw: _Raw) -> tuple[pd.DataFrame, dict[str, set[str]]]:
    """Every cell checked and typed, chunk by chunk, or FileRejected for the first one that
    is wrong (its row counted from the file's start); also the machine labels of the rows,
    by run id."""
    frames, labels, versions, offset = [], {}, set(), 0
    for columns in raw.chunks:
        # CSV has no header for the schema version: it comes as a column, if at all.
        versions.update(str(v).strip() for v in columns.get("schema_version", ()))
        version = raw.version
        if version is None and len(versions) > 1:
            raise FileRejected(f"the file mixes schema versions {', '.join(sorted(versions))}")
        if version is None and versions:
            version = next(iter(versions))
        # None: plain CSV or Parquet rows from another tool, in the current layout.
        supported = (str(FILE_SCHEMA_VERSION), f"{FILE_SCHEMA_VERSION}.0")
        wrong = isinstance(version, bool) or str(version).strip() not in supported
        if version is not None and wrong:
            raise FileRejected(
                f"schema_version {_show(version)} is not supported; this program reads version "
                f"{FILE_SCHEMA_VERSION}"
            )
        try:
            frames.append(_validate_columns(columns, raw.origin))
            if "machine" in columns:
                machines = _text_column("machine", columns["machine"], raw.origin)
                run_ids = frames[-1]["run_id"].astype("string").fillna(NO_RUN_ID)
                for run_id, label in zip(run_ids, machines, strict=True):
                    if label:
                        labels.setdefault(run_id, set()).add(label)
        except FileRejected as error:
            found = re.match(r"row (\d+)(.*)", str(error), re.DOTALL)
            if not offset or not found:
                raise
            raise FileRejected(f"row {int(found[1]) + offset}{found[2]}") from None
        offset += len(frames[-1])
        del columns  # not held while the next chunk is read
    frame = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    return frame, labels


def _validate_columns(columns: dict[str, list], origin: str) -> pd.DataFrame:
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        comma = origin == "csv" and len(columns) == 1
        hint = " (is the file comma-separated?)" if comma else ""
        raise FileRejected(f"required columns missing: {', '.join(missing)}{hint}")
    row_count = len(next(iter(columns.values())))
    if row_count == 0:
        raise FileRejected("the file has no result rows")
    checked = {
        name: _text_column(name, columns[name], origin)
        for name in results.LEADING_COLUMNS
        if name in columns
    }
    for index, workload in enumerate(checked["workload"]):
        if workload is None or not re.match(r"^[A-Za-z0-9_]{1,64}$", workload):
            raise _reject(index, "workload", "is not a workload name", workload)
    params = results.param_columns(columns, derived=False)
    for name in params:
        checked[name] = _param_column(name, columns[name], origin)
    for name, dtype in results.MEASUREMENT_COLUMNS.items():
        values = columns.get(name)
        if values is None:
            continue
        if dtype in ("string", "boolean"):
            check = _text_column if dtype == "string" else _bool_column
            checked[name] = check(name, values, origin)
        else:
            # Seconds, not rates: gflops_per_s and gb_per_s also end in _s.
            seconds = name.endswith("_s") and not name.endswith("_per_s")
            high = MAX_TIME_S if seconds else None
            low, high = _INTEGER_RANGES.get(name, (0, high))
            checked[name] = _numeric_column(name, values, origin, dtype == "Int64", low, high)
    for name in ("backend", "device"):
        for index, value in enumerate(checked[name]):
            if value is None:
                raise _reject(index, name, "is empty", value)
    for index, status in enumerate(checked["status"]):
        if status not in results.STATUSES:
            raise _reject(index, "status", f"is not one of {', '.join(results.STATUSES)}", status)
        if status == "ok" and checked["median_s"][index] is None:
            raise _reject(index, "median_s", "is empty on an ok row", None)
    for index, text in enumerate(checked.get("times_s", [])):
        if text is not None and not _is_times_list(text):
            raise _reject(index, "times_s", "is not a JSON list of times", text)
    if "run_id" not in checked:
        checked["run_id"] = [NO_RUN_ID] * row_count
    return results.to_frame(checked, params)


def validate_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A table built in memory, checked as strictly as an imported file."""
    if len(frame) > MAX_ROWS:
        raise FileRejected(f"the table has more than {MAX_ROWS} rows")
    names = _check_names([str(c) for c in frame.columns])

    def take(start: int, stop: int) -> dict[str, list]:
        part = frame.iloc[start:stop]
        # Infinities are kept (finite=False), so that the cell checks refuse them as in a file.
        return {
            name: [units.plain(v) for v in part[column].astype(object).tolist()]
            for name, column in zip(names, frame.columns, strict=True)
        }

    return _validate(_Raw(_chunked(len(frame), take), {}, {}, None, "typed"))[0]


def import_file(
    path_or_bytes: str | os.PathLike | bytes | IO,
    fmt: str | None = None,
    max_bytes: int = MAX_IMPORT_BYTES,
) -> ImportedRun:
    """Read and check a results file; raises FileRejected with the first problem found.

    ``fmt`` is csv, json or parquet; without it the extension decides, and where
    there is none (raw bytes), the content.
    """
    data, name = _read_limited(path_or_bytes, max_bytes)
    if not data:
        raise FileRejected("the file is empty")
    if fmt or Path(name).suffix:
        fmt = _check_format(fmt) if fmt else format_of_path(name)
    elif data[:4] == b"PAR1":
        fmt = "parquet"
    else:
        fmt = "json" if data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"{" else "csv"
    raw = {"csv": _parse_csv, "json": _parse_json, "parquet": _parse_parquet}[fmt](data)
    frame, labels = _validate(raw)
    machine, settings = _clean(raw.machine), _clean(raw.settings)
    everywhere = set().union(*labels.values())
    if everywhere and "machine" not in machine:
        # A file with rows of several machines: its label must not credit one.
        machine["machine"] = _label_of(everywhere)
    run_machines = {run_id: _label_of(found) for run_id, found in labels.items()}
    return ImportedRun(frame, machine, settings, name, checked=True, run_machines=run_machines)


def _label_of(labels: set[str]) -> str:
    if len(labels) == 1:
        return next(iter(labels))
    return "several machines: " + ", ".join(sorted(labels))


def _clean(value: Any) -> Any:
    """A file's machine or settings object with control characters taken out of its text."""
    if isinstance(value, str):
        return _CONTROL.sub("", value)
    if isinstance(value, dict):
        return {_clean(str(k)): _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value
