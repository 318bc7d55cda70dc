"""Will it fit: estimates are upper bounds of what one step really takes, the largest batch
never exceeds a budget, and bad input or a point too big is refused in one line, first."""

from __future__ import annotations

import pytest
import torch

from core.errors import BadInput
from core.measure import devices, fit, memory

PX = 32  # tiny images: every model here traces and runs in well under a second


@pytest.mark.parametrize(
    ("model", "batch", "train"),
    [("mobilenet_v3_small", 2, False), ("mobilenet_v3_small", 2, True), ("resnet18", 2, True)],
)
def test_the_estimate_is_above_the_measured_cpu_peak(model, batch, train):
    done = fit.measure(model, batch, PX, "float32", train, "cpu")
    net = fit.models.new_model(model, train, PX)
    weights_bytes = sum(p.numel() * p.element_size() for p in net.parameters())
    # The peak holds at least the weights (and their gradients when training)...
    assert done.measured_bytes > weights_bytes * (2 if train else 1)
    # ...and the estimate is the upper bound it claims to be.
    assert done.holds and done.ratio >= 1
    assert done.over_bytes == done.estimate_bytes - done.measured_bytes
    assert "the measured peak" in done.summary() and "×" in done.summary()
    assert "profiler" in done.method


def test_a_training_step_peaks_above_inference():
    args = ("resnet18", 2, PX, "float32")
    assert fit.measure_peak(*args, True, "cpu") > fit.measure_peak(*args, False, "cpu")


def test_a_point_over_the_budget_is_refused_before_anything_is_allocated(monkeypatch):
    def build(*args, **kwargs):
        raise AssertionError("nothing may be built for a refused point")

    monkeypatch.setattr(fit, "_work", build)
    with pytest.raises(BadInput, match=r"^not measured: resnet18 batch 4 needs about .* allows"):
        fit.measure_peak("resnet18", 4, PX, "float32", True, "cpu", budget_bytes=10**6)


@pytest.mark.parametrize("train", [False, True])
def test_the_largest_batch_fits_and_one_more_does_not(train):
    args = ("mobilenet_v3_small", 64, "float32", train)  # at 64 px one image can train
    one = fit.estimate(args[0], 1, *args[1:])
    found = []
    for budget in (one - 1, one, one + 10**7, one + 10**8):
        batch = fit.largest_batch(*args, budget)
        found.append(batch)
        if batch:
            assert fit.estimate(args[0], batch, *args[1:]) <= budget
        assert fit.estimate(args[0], batch + 1, *args[1:]) > budget
    assert found[0] == 0 and found[1] == 1
    assert found == sorted(found), "a larger budget never allows a smaller batch"


def test_largest_batch_starts_at_2_where_training_needs_two_images():
    # resnet18's last batch norm sees 1x1 pixels at 32 px: one image cannot train.
    with pytest.raises(BadInput, match="more than 1 value per channel"):
        fit.estimate("resnet18", 1, PX, "float32", True)
    two = fit.estimate("resnet18", 2, PX, "float32", True)
    assert fit.largest_batch("resnet18", PX, "float32", True, two) == 2
    assert fit.largest_batch("resnet18", PX, "float32", True, two - 1) == 0


def test_largest_batch_without_a_budget_or_at_the_limit():
    assert fit.largest_batch("resnet18", PX, "float32", False, None) is None
    assert fit.largest_batch("resnet18", PX, "float32", False, 10**18, limit=64) == 64


@pytest.mark.parametrize(
    "need",
    [
        lambda b: 1000 + 7 * b,  # affine
        lambda b: 1000 + max(50, 3 * b) + 5 * b,  # convex, as the models' estimates are
        lambda b: 1000 + max(400, 3 * b) + 5 * b,  # the weight is the largest tensor longer
    ],
)
def test_largest_batch_is_the_edge_for_a_convex_estimate(monkeypatch, need):
    monkeypatch.setattr(fit, "estimate", lambda model, batch, **_: need(batch))
    for budget in range(1000, 6000, 37):
        batch = fit.largest_batch("m", PX, "float32", False, budget, limit=500)
        assert batch == max(b for b in range(0, 501) if b == 0 or need(b) <= budget)


def test_largest_batch_never_exceeds_the_budget_whatever_the_estimate(monkeypatch):
    def need(b):  # not convex: a step at 40, and a dip
        return 1000 + 5 * b + (400 if b > 40 else 0) - (30 if b == 300 else 0)

    monkeypatch.setattr(fit, "estimate", lambda model, batch, **_: need(batch))
    for budget in range(1000, 4000, 23):
        batch = fit.largest_batch("m", PX, "float32", False, budget, limit=500)
        assert batch == 0 or need(batch) <= budget


def test_presets_name_the_neo_and_this_machine():
    found = {p.name: p for p in fit.presets()}
    neo = found["MacBook Neo 8 GB (MPS)"]
    assert neo.usable_bytes == memory.PRESETS_BYTES["8 GB laptop"] == int(8 * 1024**3 * 2 / 3)
    assert "Metal" in neo.source
    assert found["16 GB laptop (MPS)"].usable_bytes == 2 * neo.usable_bytes
    assert found["This machine's CPU (RAM)"].usable_bytes == pytest.approx(
        memory.default_budget_bytes("cpu"), rel=0.2
    )
    gpus = [name for name in found if name.startswith("This machine's GPU")]
    assert len(gpus) == len(devices.device_strings()) - 1


def test_the_table_says_what_fits_where():
    rows = fit.fits_table("resnet18", 2, PX, "float32", True)
    assert [r["machine"] for r in rows] == [p.name for p in fit.presets()]
    for row in rows:
        assert row["needed_bytes"] == fit.estimate("resnet18", 2, PX, "float32", True)
        assert row["fits"] == (row["needed_bytes"] <= row["usable_bytes"])
        assert row["largest_batch"] >= 2


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("resnet9000", 1, PX), "not a torchvision classification model"),
        (("resnet18", 0, PX), "batch"),
        (("resnet18", 1, 8), "image size"),
        (("vit_b_16", 1, 40), "multiple of 16 px, e.g. 48"),
        (("inception_v3", 1, PX), "inception_v3 at 32 px"),  # too small for its pooling
    ],
)
def test_bad_input_is_one_line(args, words):
    with pytest.raises(BadInput, match=words) as caught:
        fit.estimate(*args, "float32", False)
    assert "\n" not in str(caught.value)


def test_a_dtype_the_page_does_not_offer_is_refused():
    with pytest.raises(BadInput, match="dtype"):
        fit.estimate("resnet18", 1, PX, "int8", False)


def test_vit_image_sizes_snap_to_the_patch():
    assert fit.snap_image_size("vit_b_16", 40) == 48
    assert fit.snap_image_size("vit_b_32", 224) == 224
    assert fit.snap_image_size("vit_h_14", 32) == 42
    assert fit.snap_image_size("resnet18", 40) == 40


def test_every_classification_model_is_offered():
    names = fit.classification_models()
    assert {"resnet18", "vit_b_16", "convnext_tiny", "efficientnet_b0"} <= set(names)
    assert not any(n.startswith(("fasterrcnn", "raft", "deeplab")) for n in names)


def test_mps_samples_after_every_op_forward_and_backward():
    # No Mac here: the sampler is what MPS's peak relies on, so count what it sees.
    seen = []
    x = torch.ones(3, requires_grad=True)
    with fit._SampleAfterEachOp(lambda: seen.append(1)):
        (x.sin() * 2).sum().backward()
    assert len(seen) >= 4  # sin, mul, sum, and the backward ops
    assert "sampled after every op" in fit.measurement_method("mps")
    assert "max_memory_allocated" in fit.measurement_method("cuda:0")
