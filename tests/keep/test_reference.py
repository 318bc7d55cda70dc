"""The post's published figures, shipped as a tidy table."""

import hashlib
from pathlib import Path

import pandas as pd
import pytest

from core.keep import files, reference, results
from core.measure.workloads import REGISTRY

NEO, RYZEN = "MacBook Neo 8 GB (post)", "Ryzen AI HX 370 (post)"
SHARED_COPY = (
    Path(__file__).resolve().parents[3] / "shared/reference/macbook_neo_and_ryzen_notebooks.csv"
)


def one(frame: pd.DataFrame, **where) -> pd.Series:
    mask = pd.Series(True, index=frame.index)
    for name, value in where.items():
        mask &= frame[name] == value
    matches = frame[mask.fillna(False).astype(bool)]
    assert len(matches) == 1, where
    return matches.iloc[0]


def test_every_published_figure_is_there():
    frame = reference.reference_frame()
    assert len(frame) == 138
    assert reference.reference_machines() == [NEO, RYZEN]
    assert set(frame["machine"]) == {NEO, RYZEN}
    assert (frame["source"] == "reference").all()
    assert (frame["status"] == "ok").all()
    assert frame.groupby("machine").size().to_dict() == {NEO: 106, RYZEN: 32}
    assert set(frame["workload"]) == {"elementwise", "conv2d", "matmul", "inference", "train"}


def test_known_values():
    frame = reference.reference_frame()
    neo_mps = one(frame, machine=NEO, workload="matmul", size=4096, device="mps")
    assert neo_mps["median_s"] == pytest.approx(0.09455, rel=1e-12)
    assert neo_mps["mean_s"] == neo_mps["median_s"] and neo_mps["n"] == 10
    assert "only the mean" in neo_mps["message"]
    neo_cpu = one(frame, machine=NEO, workload="matmul", size=4096, device="cpu")
    assert neo_cpu["median_s"] == pytest.approx(0.12598)
    assert neo_cpu["backend"] == "cpu (post default, 2 threads)" and neo_cpu["threads"] == 2
    ryzen = one(frame, machine=RYZEN, workload="train", batch=32, device="cuda")
    assert ryzen["median_s"] == pytest.approx(0.363) and ryzen["n"] == 20
    assert ryzen["backend"] == "cuda (rocm)" and ryzen["model"] == "resnet18"
    exp = one(frame, machine=NEO, workload="elementwise", op="exp", size=100_000_000, device="mps")
    assert exp["median_s"] == pytest.approx(0.01871)
    conv = one(frame, workload="conv2d", size=512, kernel=7, device="mps")
    assert conv["median_s"] == pytest.approx(0.08081)
    assert "~60 ms" in conv["message"]


def test_the_twice_measured_conv_point_is_told_apart_by_provenance():
    frame = reference.reference_frame("conv2d")
    twice = frame[(frame["size"] == 128) & (frame["kernel"] == 3) & (frame["channels"] == 64)]
    assert len(twice) == 4
    assert twice["provenance"].nunique() == 2
    assert sorted(twice.loc[twice["device"] == "mps", "median_s"]) == pytest.approx(
        [0.00203, 0.00291]
    )


def test_one_workload_has_just_its_own_parameters():
    post = set(reference.reference_frame()["workload"])
    assert post == {"elementwise", "conv2d", "matmul", "inference", "train"}
    for name, workload in ((n, w) for n, w in REGISTRY.items() if n in post):
        params = list(workload.param_names)
        frame = reference.reference_frame(name)
        assert set(frame["workload"]) == {name}
        assert results.param_columns(frame) == [*params, "machine", "source", "provenance"]
        for column in params:
            assert not frame[column].isna().any()  # parameters added since take defaults
    assert len(reference.reference_frame("matmul")) == 22
    assert set(reference.reference_frame("conv2d")["variant"]) == {"eager"}
    with pytest.raises(ValueError, match="no figures"):
        reference.reference_frame("nope")


def test_speedup_per_machine():
    frame = reference.reference_frame("matmul")
    neo = results.add_speedup(frame[frame["machine"] == NEO])
    at_4096 = one(neo, size=4096, device="mps")
    assert at_4096["speedup"] == pytest.approx(125.98 / 94.55)


def test_reference_frame_passes_import_checks(tmp_path):
    frame = reference.reference_frame()
    files.validate_frame(frame)
    path = tmp_path / "post.json"
    path.write_bytes(files.export_bytes(frame, "json", reference.reference_fingerprints()[NEO], {}))
    imported = files.import_file(path)
    assert len(imported.frame) == 138
    assert imported.frame["provenance"].str.startswith("cicorias/pytorch-metal-mps").all()


def test_fingerprints_describe_the_post_machines():
    prints = reference.reference_fingerprints()
    assert set(prints) == {NEO, RYZEN}
    assert prints[NEO]["torch"] == "2.10.0" and prints[NEO]["ram_bytes"] == 8 * 1024**3
    assert prints[RYZEN]["torch"] == "2.8.0+rocm7.1"


def test_data_file_and_provenance_ship_with_the_code():
    data = reference.DATA_PATH.read_bytes()
    assert (
        hashlib.sha256(data).hexdigest()
        in (reference.DATA_PATH.parent / "PROVENANCE.md").read_text()
    )
    provenance = (reference.DATA_PATH.parent / "PROVENANCE.md").read_text()
    assert "cicorias/pytorch-metal-mps" in provenance
    assert "MacBook Neo 8GB: MPS/Metal Actually Works" in provenance and "2026-03-21" in provenance
    if SHARED_COPY.exists():
        assert SHARED_COPY.read_bytes() == data
