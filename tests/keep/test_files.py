"""Export and import: round trips keep every value and dtype; hostile files are refused."""

import csv
import io
import json
import math
import os
import pickle

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core.keep import files, results
from core.keep.files import FileRejected, export_bytes, import_file

MACHINE = {"machine": "Test GPU + Test CPU", "cpu_model": "Test CPU", "ram_bytes": 8 * 1024**3}
SETTINGS = {"repeats": 7, "warmup": 2, "dtype": "float32"}
FORMATS = ["csv", "json", "parquet"]


def measured(**overrides) -> dict:
    row = {
        "run_id": "20260321T101500-abc123",
        "timestamp": "2026-03-21T10:15:00+00:00",
        "workload": "conv2d",
        "batch": 1,
        "channels": 64,
        "size": 128,
        "kernel": 3,
        "backend": "cpu (2 threads)",
        "device": "cpu",
        "device_name": "Test CPU",
        "dtype": "float32",
        "threads": 2,
        "median_s": 0.003370000000000001,
        "p25_s": 0.0031,
        "p75_s": 0.0035,
        "min_s": 0.003,
        "max_s": 0.004,
        "mean_s": 0.0033,
        "n": 7,
        "rel_precision": 0.012,
        "noisy": False,
        "first_call_s": 0.05,
        "times_s": json.dumps([0.003, 0.0031, 0.00337, 0.0035, 0.004, 0.0033, 0.0034]),
        "dispatch_floor_s": 1.2e-6,
        "flops": 2.4e9,
        "bytes": 8.4e6,
        "gflops_per_s": 712.1,
        "gb_per_s": 2.5,
        "memory_estimate_bytes": 9.0e6,
        "peak_memory_bytes": 1.2e8,
        "max_rel_err": 1.1e-7,
        "cold_cache": False,
        "pct_of_ceiling": 41.5,
        "flags": "",
        "status": "ok",
        "message": "",
    }
    row.update(overrides)
    return row


def sample_frame() -> pd.DataFrame:
    rows = [
        measured(),
        measured(
            backend="cuda:0",
            device="cuda:0",
            device_name="Test GPU",
            threads=None,
            median_s=0.000203,
            noisy=True,
            flags="noisy,suspect",
            # Text a spreadsheet would run, and text that merely starts with a minus.
            message='=HYPERLINK("http://example.invalid","x")',
        ),
        measured(
            kernel=7,
            status="failed",
            median_s=None,
            p25_s=None,
            p75_s=None,
            min_s=None,
            max_s=None,
            mean_s=None,
            n=None,
            noisy=None,
            times_s=None,
            cold_cache=None,
            message="-1 ms under the floor, so: out of memory",
        ),
        measured(kernel=5, message="-2.5", flags="mismatch"),
    ]
    return results.to_frame(rows, ["batch", "channels", "size", "kernel"])


def mixed_frame() -> pd.DataFrame:
    """Two workloads in one table: each leaves the other's parameters empty."""
    rows = [
        measured(
            workload="elementwise", op="exp", size=1_000_000, batch=None, channels=None, kernel=None
        ),
        measured(),
    ]
    return results.to_frame(rows, ["op", "size", "batch", "channels", "kernel"])


def round_trip(frame: pd.DataFrame, fmt: str, tmp_path) -> files.ImportedRun:
    path = tmp_path / f"results.{fmt}"
    path.write_bytes(export_bytes(frame, fmt, MACHINE, SETTINGS))
    return import_file(path)


# --- round trips ---------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip_keeps_values_and_dtypes(fmt, tmp_path):
    frame = sample_frame()
    imported = round_trip(frame, fmt, tmp_path)
    pd.testing.assert_frame_equal(imported.frame, frame, check_exact=True)
    assert imported.name == f"results.{fmt}"
    if fmt == "csv":
        assert imported.machine == {} and imported.settings == {}
    else:
        assert imported.machine == MACHINE
        assert imported.settings == SETTINGS


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip_of_mixed_workloads(fmt, tmp_path):
    frame = mixed_frame()
    imported = round_trip(frame, fmt, tmp_path)
    pd.testing.assert_frame_equal(imported.frame, frame, check_exact=True)


@pytest.mark.parametrize("fmt", FORMATS)
def test_derived_columns_are_dropped_and_machine_label_kept(fmt, tmp_path):
    frame = results.add_speedup(sample_frame())
    frame["machine"] = "Test GPU + Test CPU"
    frame["source"] = "measured"
    imported = round_trip(frame, fmt, tmp_path)
    assert "speedup" not in imported.frame and "source" not in imported.frame
    assert "machine" not in imported.frame
    assert imported.machine["machine"] == "Test GPU + Test CPU"


def test_json_layout(tmp_path):
    document = json.loads(export_bytes(sample_frame(), "json", MACHINE, SETTINGS))
    assert document["schema_version"] == 1
    assert document["machine"] == MACHINE and document["settings"] == SETTINGS
    assert len(document["rows"]) == 4
    assert document["rows"][2]["median_s"] is None  # strict JSON: no NaN


def test_parquet_metadata_carries_version_and_machine():
    data = export_bytes(sample_frame(), "parquet", MACHINE, SETTINGS)
    meta = pq.read_schema(io.BytesIO(data)).metadata
    assert meta[b"speedup_explorer.schema_version"] == b"1"
    assert json.loads(meta[b"speedup_explorer.machine"]) == MACHINE


def test_csv_neutralises_formula_cells_and_import_restores_them():
    text = export_bytes(sample_frame(), "csv", MACHINE, SETTINGS).decode()
    assert "'=HYPERLINK" in text
    assert "'-1 ms under the floor" in text
    assert ",-2.5," in text  # a plain negative number is left alone
    assert "schema_version" in text.splitlines()[0]
    imported = import_file(text.encode(), fmt="csv")
    assert imported.frame.loc[1, "message"].startswith("=HYPERLINK")


def test_export_bytes_are_a_files_content():
    frame = sample_frame()
    assert export_bytes(frame, "parquet", MACHINE, SETTINGS)[:4] == b"PAR1"
    assert export_bytes(frame, "csv", MACHINE, SETTINGS).decode().startswith("run_id,")


def test_import_from_bytes_and_file_objects_sniffs_the_format():
    frame = sample_frame()
    for fmt in FORMATS:
        data = export_bytes(frame, fmt, MACHINE, SETTINGS)
        pd.testing.assert_frame_equal(import_file(data).frame, frame)
        upload = io.BytesIO(data)
        upload.name = f"upload.{fmt}"
        assert import_file(upload).name == f"upload.{fmt}"


def test_hand_written_csv_is_accepted(tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text(
        "workload,size,backend,device,status,median_s\r\n"
        "matmul,1024,cpu,cpu,ok,0.01\r\n"
        "matmul,1024,cuda,cuda:0,ok,1e-3\r\n"
        "matmul,2048,cuda,cuda:0,failed,\r\n"
    )
    frame = import_file(path).frame
    assert list(frame["size"]) == [1024, 1024, 2048]
    assert frame["median_s"].tolist()[:2] == [0.01, 0.001]
    assert math.isnan(frame["median_s"].iloc[2])
    assert frame["run_id"].tolist() == ["imported"] * 3


# --- hostile files -------------------------------------------------------------------


def csv_with(tmp_path, **overrides) -> os.PathLike:
    frame = results.to_frame(
        [measured(), measured(kernel=5), measured(kernel=7)],
        ["batch", "channels", "size", "kernel"],
    )
    text = export_bytes(frame, "csv", MACHINE, SETTINGS).decode()
    header, *lines = text.splitlines()
    names = header.split(",")
    edited = []
    for number, line in enumerate(lines, start=1):
        fields = next(csv.reader([line]))
        for name, (row_number, value) in overrides.items():
            if row_number == number:
                fields[names.index(name)] = value
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerow(fields)
        edited.append(out.getvalue())
    path = tmp_path / "edited.csv"
    path.write_text(header + "\n" + "".join(edited))
    return path


def rejected(source, match: str, **kwargs) -> str:
    with pytest.raises(FileRejected, match=match) as caught:
        import_file(source, **kwargs)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_wrong_type_names_row_column_and_value(tmp_path):
    message = rejected(csv_with(tmp_path, median_s=(3, "abc")), "median_s")
    assert message == "row 3: median_s is not a number ('abc')"


def test_wrong_types_in_json_are_not_coerced():
    document = json.loads(export_bytes(sample_frame(), "json", MACHINE, SETTINGS))
    document["rows"][0]["median_s"] = "0.5"
    rejected(json.dumps(document).encode(), r"row 1: median_s is not a number \('0.5'\)")
    document["rows"][0]["median_s"] = True
    rejected(json.dumps(document).encode(), "row 1: median_s is not a number")
    document["rows"][0]["median_s"] = 0.5
    document["rows"][1]["threads"] = 2.5
    rejected(json.dumps(document).encode(), "row 2: threads is not a whole number")
    document["rows"][1]["threads"] = 2
    document["rows"][1]["device"] = {"nested": 1}
    rejected(json.dumps(document).encode(), "row 2: device is a nested dict")


@pytest.mark.parametrize(
    ("column", "value", "problem"),
    [
        ("median_s", "-0.5", "is below 0"),
        ("min_s", "inf", "is not finite"),
        ("p25_s", "1e400", "is not finite"),
        ("max_s", "9e9", "is above 86400"),
        ("n", "-3", "is below 0"),
        ("threads", "0", "is below 1"),
        ("noisy", "maybe", "is not true or false"),
        ("status", "great", "is not one of ok, skipped, failed, refused"),
        ("times_s", "[0.1, -1]", "is not a JSON list of times"),
        ("times_s", "not json", "is not a JSON list of times"),
        ("workload", "mat mul", "is not a workload name"),
        ("backend", "", "is empty"),
        ("median_s", "", "is empty on an ok row"),
    ],
)
def test_out_of_range_values_are_rejected(tmp_path, column, value, problem):
    message = rejected(csv_with(tmp_path, **{column: (2, value)}), column)
    assert message.startswith(f"row 2: {column} {problem}")


@pytest.mark.parametrize(
    "cell",
    ["=cmd|' /C calc'!A0", "+SUM(A1:A2)", "@SUM(A1)", "-2+3", "\t=1+1", "=1"],
)
def test_formula_like_csv_cells_are_rejected(tmp_path, cell):
    message = rejected(csv_with(tmp_path, message=(1, cell)), "formula")
    assert message.startswith("row 1: message looks like a spreadsheet formula")


def test_formula_like_column_name_is_rejected(tmp_path):
    path = tmp_path / "evil.csv"
    path.write_text("workload,backend,device,status,median_s,=cmd()\nmatmul,cpu,cpu,ok,1,x\n")
    rejected(path, "column name '=cmd\\(\\)' is not allowed")


def test_plain_negative_numbers_are_not_formulas(tmp_path):
    imported = import_file(csv_with(tmp_path, message=(1, "-12.5"), device_name=(2, "-3")))
    assert imported.frame.loc[0, "message"] == "-12.5"


@pytest.mark.parametrize("fmt", FORMATS)
def test_truncated_files_are_rejected(tmp_path, fmt):
    data = export_bytes(sample_frame(), fmt, MACHINE, SETTINGS)
    for cut in (len(data) // 2, len(data) - 3):
        path = tmp_path / f"cut.{fmt}"
        path.write_bytes(data[:cut])
        rejected(path, "truncated|cut off")


def test_csv_row_with_missing_fields_is_rejected(tmp_path):
    path = tmp_path / "short.csv"
    path.write_text("workload,backend,device,status,median_s\nmatmul,cpu,cpu,ok,1\nmatmul,cpu\n")
    rejected(path, "row 2 has 2 fields where the header has 5")


def test_huge_sparse_file_is_rejected_before_reading(tmp_path, monkeypatch):
    path = tmp_path / "huge.csv"
    with open(path, "wb") as handle:
        handle.truncate(files.MAX_IMPORT_BYTES + 1024 * 1024)  # sparse: takes no disk
    opened = []
    real_open = type(path).open
    monkeypatch.setattr(type(path), "open", lambda *a, **k: opened.append(a) or real_open(*a, **k))
    rejected(path, r"the file is 51.0 MiB; files over 50.0 MiB are not imported")
    assert opened == []


def test_size_limit_applies_to_bytes_and_uploads():
    data = export_bytes(sample_frame(), "csv", MACHINE, SETTINGS)
    rejected(data, "files over", max_bytes=100)

    class Upload(io.BytesIO):
        size = 10**12  # as Streamlit reports it, before anything is read

        def read(self, *args):
            raise AssertionError("an oversized upload must not be read")

    rejected(Upload(b"x"), "files over", max_bytes=1000)
    rejected(io.BytesIO(data), "files over", max_bytes=100)


@pytest.mark.parametrize("fmt", FORMATS)
def test_unknown_schema_version_is_rejected(tmp_path, fmt):
    frame = sample_frame()
    if fmt == "json":
        document = json.loads(export_bytes(frame, "json", MACHINE, SETTINGS))
        document["schema_version"] = 2
        data = json.dumps(document).encode()
    elif fmt == "csv":
        data = export_bytes(frame, "csv", MACHINE, SETTINGS).replace(b",1\n", b",2\n")
    else:
        table = pq.read_table(io.BytesIO(export_bytes(frame, "parquet", MACHINE, SETTINGS)))
        meta = dict(table.schema.metadata)
        meta[b"speedup_explorer.schema_version"] = b"2"
        sink = io.BytesIO()
        pq.write_table(table.replace_schema_metadata(meta), sink)
        data = sink.getvalue()
    message = rejected(data, "schema_version", fmt=fmt)
    assert "is not supported; this program reads version 1" in message


def test_json_without_schema_version_is_rejected():
    document = json.loads(export_bytes(sample_frame(), "json", MACHINE, SETTINGS))
    del document["schema_version"]
    rejected(json.dumps(document).encode(), "no schema_version", fmt="json")


class _Payload:
    """Would create a file if anything ever unpickled it."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".json"])
def test_pickle_renamed_is_rejected_and_never_loaded(tmp_path, suffix, monkeypatch):
    marker = tmp_path / "unpickled"
    path = tmp_path / f"results{suffix}"
    path.write_bytes(pickle.dumps(_Payload(marker), protocol=4))

    def forbidden(*args, **kwargs):
        raise AssertionError("nothing may be unpickled")

    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    message = rejected(path, "not a")
    if suffix == ".parquet":
        assert "pickle" in message
    assert not marker.exists()


def test_other_binary_and_wrong_encodings_are_rejected(tmp_path):
    rejected(b"PK\x03\x04" + b"\x00" * 40, "zip archive", fmt="parquet")
    rejected("caf\xe9".encode("latin-1") + b",x\n", "not UTF-8", fmt="csv")
    rejected(b"", "empty")
    rejected(b"\n\n", "empty", fmt="csv")
    path = tmp_path / "sheet.xlsx"
    path.write_bytes(b"PK\x03\x04")
    rejected(path, "not a CSV, JSON or Parquet file")
    rejected(b"x", "format 'xlsx' is not supported", fmt="xlsx")


def test_missing_and_duplicate_columns_are_rejected(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("workload,backend,device,status\nmatmul,cpu,cpu,ok\n")
    rejected(path, "required columns missing: median_s")
    path.write_text("workload;backend;device;status;median_s\nmatmul;cpu;cpu;ok;1\n")
    rejected(path, "comma-separated|not allowed")
    path.write_text("workload,backend,device,status,median_s,size,size\nm,c,c,ok,1,1,2\n")
    rejected(path, "column 'size' appears twice")
    path.write_text("workload,backend,device,status,median_s\n")
    rejected(path, "no result rows")


def test_parquet_with_non_plain_column_types_is_rejected():
    table = pa.table(
        {
            "workload": ["matmul"],
            "backend": ["cpu"],
            "device": ["cpu"],
            "status": ["ok"],
            "median_s": [0.1],
            "blob": pa.array([b"\x80\x04"], type=pa.binary()),
        }
    )
    sink = io.BytesIO()
    pq.write_table(table, sink)
    rejected(sink.getvalue(), "column 'blob' has type binary")


def test_parquet_from_another_tool_is_read():
    table = pa.table(
        {
            "workload": ["matmul", "matmul"],
            "size": [256, 512],
            "backend": pa.array(["cpu", "cpu"]).dictionary_encode(),
            "device": ["cpu", "cpu"],
            "status": ["ok", "ok"],
            "median_s": [0.1, 0.2],
            "n": pa.array([5, None], type=pa.int32()),
        }
    )
    sink = io.BytesIO()
    pq.write_table(table, sink)
    frame = import_file(sink.getvalue()).frame
    assert frame["size"].tolist() == [256, 512]
    assert str(frame["n"].dtype) == "Int64" and frame["n"].isna().tolist() == [False, True]


def test_validate_frame_checks_frames_built_in_memory():
    frame = sample_frame()
    pd.testing.assert_frame_equal(files.validate_frame(frame), frame)
    bad = frame.copy()
    bad.loc[0, "median_s"] = -1.0
    with pytest.raises(FileRejected, match="row 1: median_s is below 0"):
        files.validate_frame(bad)
    bad.loc[0, "median_s"] = math.inf
    with pytest.raises(FileRejected, match="row 1: median_s is not finite"):
        files.validate_frame(bad)


def test_a_fast_gpus_rates_are_not_taken_for_times(tmp_path):
    # 105 TFLOP/s is 104,639 GFLOP/s: far above a day in seconds, and perfectly real.
    from core.keep import files, results

    row = {
        "run_id": "r",
        "timestamp": "2026-11-27T09:00:00+00:00",
        "workload": "matmul",
        "size": 8192,
        "backend": "cuda:0",
        "device": "cuda:0",
        "dtype": "bfloat16",
        "status": "ok",
        "median_s": 0.0105,
        "gflops_per_s": 104_639.6,
        "gb_per_s": 3_500.0,
    }
    path = tmp_path / "fast.csv"
    path.write_bytes(files.export_bytes(results.to_frame([row], ["size"]), "csv", {}, {}))
    imported = files.import_file(path)
    assert imported.frame["gflops_per_s"].iloc[0] == 104_639.6
