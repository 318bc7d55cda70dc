"""torchvision models with random weights: inference and one SGD training step.

FLOPs come from ``torch.utils.flop_counter`` and memory from the sizes of every
intermediate tensor, both found by running the model on the meta device, where
nothing is allocated.
"""

from __future__ import annotations

import copy
import functools

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from core.measure.workloads.base import (
    CHECK_MAX_FLOPS,
    WORKSPACE_BYTES,
    Cost,
    Param,
    Prepared,
    Workload,
)

# torchvision builder names; random weights only, nothing is ever downloaded.
MODELS = ("resnet18", "resnet50", "mobilenet_v2", "mobilenet_v3_small", "efficientnet_b0")
CLASSES = 1000


def _new_model(name: str) -> nn.Module:
    # Imported here: torchvision adds seconds to start-up, and most commands never need it.
    import torchvision

    return getattr(torchvision.models, name)(weights=None, num_classes=CLASSES)


class _TensorBytes(TorchDispatchMode):
    """Adds up the bytes every op reads and writes, and the largest single output."""

    def __init__(self):
        super().__init__()
        self.output_bytes = 0
        self.moved_bytes = 0
        self.largest_output_bytes = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        written = sum(_nbytes(t) for t in _tensors(out))
        read = sum(_nbytes(t) for t in _tensors(args))
        self.output_bytes += written
        self.moved_bytes += written + read
        self.largest_output_bytes = max(self.largest_output_bytes, written)
        return out


def _tensors(tree):
    if isinstance(tree, torch.Tensor):
        yield tree
    elif isinstance(tree, (list, tuple)):
        for item in tree:
            yield from _tensors(item)


def _nbytes(tensor: torch.Tensor) -> int:
    return tensor.numel() * tensor.element_size()


@functools.lru_cache(maxsize=256)
def _analyse(model: str, batch: int, image_size: int, dtype: torch.dtype, train: bool) -> Cost:
    with torch.device("meta"):
        net = _new_model(model).to(dtype)
        x = torch.empty(batch, 3, image_size, image_size, dtype=dtype)
    param_bytes = sum(_nbytes(p) for p in net.parameters())
    counter, sizes = FlopCounterMode(display=False), _TensorBytes()
    net.train(train)
    with counter, sizes, torch.no_grad():
        net(x)
    forward_flops = float(counter.get_total_flops())
    input_bytes = _nbytes(x)
    if not train:
        return Cost(
            flops=forward_flops,
            bytes_moved=float(sizes.moved_bytes),
            memory_bytes=float(param_bytes + 3 * sizes.largest_output_bytes + input_bytes)
            + WORKSPACE_BYTES,
            items=batch,
        )
    # Backward costs about twice the forward pass. The flop counter's own backward
    # formulas are not used: some torch versions ignore groups in the convolution
    # backward and count depthwise layers (MobileNet, EfficientNet) many times over.
    # Memory: weights and gradients, every forward output kept for backward, and a
    # couple of the largest tensors alive at once while gradients flow.
    return Cost(
        flops=3 * forward_flops,
        bytes_moved=3.0 * sizes.moved_bytes,
        memory_bytes=float(
            2 * param_bytes + sizes.output_bytes + 2 * sizes.largest_output_bytes + input_bytes
        )
        + WORKSPACE_BYTES,
        items=batch,
    )


def _inference_cost(params: dict, dtype: torch.dtype) -> Cost:
    return _analyse(params["model"], params["batch"], params["image_size"], dtype, False)


def _train_cost(params: dict, dtype: torch.dtype) -> Cost:
    return _analyse(params["model"], params["batch"], params["image_size"], dtype, True)


def _models(params: dict, device: torch.device, dtype: torch.dtype):
    """The same random weights on the CPU (the reference) and on the device."""
    torch.manual_seed(0)
    reference = _new_model(params["model"])
    model = copy.deepcopy(reference).to(device=device, dtype=dtype)
    x = torch.randn(
        params["batch"], 3, params["image_size"], params["image_size"], device=device, dtype=dtype
    )
    return reference, model, x


def _build_inference(params: dict, device: torch.device, dtype: torch.dtype) -> Prepared:
    reference, model, x = _models(params, device, dtype)
    model.eval()
    reference.eval()
    batch = params["batch"]
    per_image_flops = _inference_cost(params, dtype).flops / batch
    # In eval mode each image's output depends on that image alone: a slice is exact.
    images = int(min(batch, CHECK_MAX_FLOPS // max(per_image_flops, 1)))

    def fn():
        with torch.no_grad():
            return model(x)

    def check():
        if images < 1:
            return None
        with torch.no_grad():
            return model(x[:images]).cpu(), reference.double()(x[:images].cpu().double())

    note = f"checked the first {images} images" if 0 < images < batch else ""
    return Prepared(fn=fn, check=check, check_note=note, keep=[model, x])


def _build_train(params: dict, device: torch.device, dtype: torch.dtype) -> Prepared:
    reference, model, x = _models(params, device, dtype)
    model.train()
    reference.train()
    target = torch.randint(0, CLASSES, (params["batch"],), device=device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    loss_fn = nn.CrossEntropyLoss()
    per_image_flops = _inference_cost(params, dtype).flops / params["batch"]
    images = int(min(params["batch"], CHECK_MAX_FLOPS // max(per_image_flops, 1)))
    initial_state = copy.deepcopy(reference.state_dict()) if images >= 1 else None

    def step():
        loss = loss_fn(model(x), target)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss

    def check():
        # Timing has moved the device weights on, so both sides restart from the same
        # weights. The forward pass is compared in eval mode: batch norm over a small
        # batch in training mode turns rounding into large differences on any device,
        # and in eval mode each image depends on itself alone, so a slice is exact.
        if initial_state is None:
            return None
        fresh = copy.deepcopy(reference)
        fresh.load_state_dict(initial_state)
        fresh.eval()
        on_device = copy.deepcopy(fresh).to(device=device, dtype=dtype)
        with torch.no_grad():
            actual = on_device(x[:images]).cpu()
            expected = fresh.double()(x[:images].cpu().double())
        return actual, expected

    if images < 1:
        note = "not checked: the CPU reference would take too long"
    else:
        note = "forward pass checked in eval mode" + (
            f" on the first {images} images" if images < params["batch"] else ""
        )
    return Prepared(fn=step, check=check, check_note=note, keep=[model, x, target, optimizer])


_MODEL_PARAMS = (
    Param("model", str, "resnet18", choices=tuple(MODELS)),
    Param("batch", int, 8, low=1, high=1024, log=True),
    Param("image_size", int, 224, low=32, high=512, unit="pixels"),
)

INFERENCE = Workload(
    name="inference",
    title="Inference",
    question="How many images per second does each device push through a CNN, by batch size?",
    params=_MODEL_PARAMS,
    cost=_inference_cost,
    build=_build_inference,
    x_param="batch",
)

TRAIN = Workload(
    name="train",
    title="Training step",
    question="Does a training step at my batch size fit, and how much faster is it?",
    params=_MODEL_PARAMS,
    cost=_train_cost,
    build=_build_train,
    x_param="batch",
)
