"""torchvision models with random weights: inference and one SGD training step.

FLOPs come from ``torch.utils.flop_counter`` and memory from the sizes of every
intermediate tensor, both found by running the model on the meta device, where
nothing is allocated.
"""

from __future__ import annotations

import copy
import functools
from typing import TYPE_CHECKING

from core.measure.workloads.base import WORKSPACE_BYTES, Cost, Param, Prepared, Workload, dtype_name
from core.measure.workloads.forward import NOT_CHECKED, batch_forward, checked_images, seeded_twin

if TYPE_CHECKING:
    import torch
    from torch import nn

# torchvision builder names; random weights only, nothing is ever downloaded.
MODELS = ("resnet18", "resnet50", "mobilenet_v2", "mobilenet_v3_small", "efficientnet_b0")
CLASSES = 1000


def _new_model(name: str) -> nn.Module:
    # Imported here: torchvision adds seconds to start-up, and most commands never need it.
    import torchvision

    return getattr(torchvision.models, name)(weights=None, num_classes=CLASSES)


def _tensor_bytes():
    """A dispatch mode that adds up the bytes every op reads and writes, and the largest
    single output (a function so that torch is imported only when a model is costed)."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    def tensors(tree):
        if isinstance(tree, torch.Tensor):
            yield tree
        elif isinstance(tree, (list, tuple)):
            for item in tree:
                yield from tensors(item)

    class TensorBytes(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.output_bytes = 0
            self.moved_bytes = 0
            self.largest_output_bytes = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            written = sum(_nbytes(t) for t in tensors(out))
            read = sum(_nbytes(t) for t in tensors(args))
            self.output_bytes += written
            self.moved_bytes += written + read
            self.largest_output_bytes = max(self.largest_output_bytes, written)
            return out

    return TensorBytes()


def _nbytes(tensor: torch.Tensor) -> int:
    return tensor.numel() * tensor.element_size()


@functools.lru_cache(maxsize=256)
def _analyse(model: str, batch: int, image_size: int, dtype: torch.dtype, train: bool) -> Cost:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    dtype = getattr(torch, dtype_name(dtype))  # a name works too
    with torch.device("meta"):
        net = _new_model(model).to(dtype)
        x = torch.empty(batch, 3, image_size, image_size, dtype=dtype)
    param_bytes = sum(_nbytes(p) for p in net.parameters())
    counter, sizes = FlopCounterMode(display=False), _tensor_bytes()
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
    """The same random weights on the CPU (the reference) and on the device, and an input."""
    batch, size = params["batch"], params["image_size"]
    return seeded_twin(lambda: _new_model(params["model"]), (batch, 3, size, size), device, dtype)


def _build_inference(params: dict, device: torch.device, dtype: torch.dtype) -> Prepared:
    reference, model, x = _models(params, device, dtype)
    model.eval()
    reference.eval()
    return batch_forward(reference, model, x, _inference_cost(params, dtype).flops / len(x))


def _build_train(params: dict, device: torch.device, dtype: torch.dtype) -> Prepared:
    import torch
    from torch import nn

    reference, model, x = _models(params, device, dtype)
    model.train()
    reference.train()
    target = torch.randint(0, CLASSES, (params["batch"],), device=device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    loss_fn = nn.CrossEntropyLoss()
    images = checked_images(params["batch"], _inference_cost(params, dtype).flops / len(x))
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
        note = NOT_CHECKED
    else:
        note = "forward pass checked in eval mode" + (
            f" on the first {images} images" if images < params["batch"] else ""
        )
    return Prepared(fn=step, check=check, check_note=note, keep=[model, x, target, optimizer])


_MODEL_PARAMS = (
    Param("model", str, "resnet18", choices=tuple(MODELS)),
    Param("batch", int, 8, low=1, high=1024, log=True, axis="batch size"),
    Param("image_size", int, 224, low=32, high=512, unit="pixels", axis="image size (px)"),
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
