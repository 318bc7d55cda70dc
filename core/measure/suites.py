"""Named grids. ``post`` is every configuration the MacBook Neo post's notebooks timed."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SuitePart:
    workload: str
    grid: dict
    chart: str  # which of the post's charts this part reproduces


POST: tuple[SuitePart, ...] = (
    SuitePart(
        "elementwise",
        {"op": ["add", "mul", "exp", "sin", "relu"], "size": [10**6, 10**7, 5 * 10**7, 10**8]},
        "Element-wise ops against tensor size",
    ),
    SuitePart(
        "conv2d",
        {"batch": [1], "channels": [32, 64, 128, 256], "size": [128], "kernel": [3]},
        "Conv2d against channel count",
    ),
    SuitePart(
        "conv2d",
        {"batch": [1], "channels": [64], "size": [64, 128, 256, 512], "kernel": [3, 5, 7]},
        "Conv2d kernel x input size",
    ),
    SuitePart("matmul", {"size": [256, 512, 1024, 2048, 4096, 8192]}, "Matrix multiply"),
    SuitePart(
        "train",
        {"model": ["resnet18"], "batch": [1, 8, 32], "image_size": [224]},
        "ResNet-18 training step against batch size",
    ),
    SuitePart(
        "inference",
        {"model": ["resnet18", "mobilenet_v2"], "batch": [1, 8, 32, 64], "image_size": [224]},
        "ResNet-18 and MobileNetV2 inference against batch size",
    ),
)

# The same shapes at sizes a 2-core CI machine measures in seconds.
SMOKE: tuple[SuitePart, ...] = (
    SuitePart("elementwise", {"op": ["add", "sin"], "size": [10_000, 100_000]}, "Element-wise"),
    SuitePart("conv2d", {"channels": [8, 16], "size": [16], "kernel": [3]}, "Conv2d"),
    SuitePart("matmul", {"size": [32, 64]}, "Matrix multiply"),
    SuitePart("inference", {"model": ["resnet18"], "batch": [1], "image_size": [32]}, "Inference"),
    SuitePart("train", {"model": ["resnet18"], "batch": [2], "image_size": [32]}, "Training"),
)

SUITES = {"post": POST, "smoke": SMOKE}
