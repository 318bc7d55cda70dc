"""torchvision models with random weights: inference and one SGD training step.

FLOPs come from ``torch.utils.flop_counter`` and memory from the sizes of every
intermediate tensor, both found by running the model on the meta device, where
nothing is allocated.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from typing import TYPE_CHECKING

from core.measure.workloads import variants
from core.measure.workloads.base import WORKSPACE_BYTES, Cost, Param, Prepared, Workload, dtype_name
from core.measure.workloads.forward import NOT_CHECKED, batch_forward, checked_images, seeded_twin

if TYPE_CHECKING:
    import torch

# torchvision builder names; random weights only, nothing is ever downloaded.
MODELS = (
    "resnet18",
    "resnet50",
    "mobilenet_v2",
    "mobilenet_v3_small",
    "efficientnet_b0",
    "vit_b_16",
)
CLASSES = 1000


def patch_size(name: str) -> int:
    """A vision transformer's patch size from its torchvision name (vit_b_16: 16); 0 for
    models that take any image size."""
    head, _, tail = name.rpartition("_")
    return int(tail) if name.startswith("vit_") and tail.isdigit() and head else 0


def new_model(name: str, train: bool, image_size: int = 224) -> torch.nn.Module:
    """Any torchvision classification model by name, with random weights. A vision
    transformer is built for ``image_size`` (its position embeddings depend on it)."""
    # Imported here: torchvision adds seconds to start-up, and most commands never need it.
    import torchvision

    extra = {"image_size": image_size} if patch_size(name) else {}
    made = torchvision.models.get_model(name, weights=None, num_classes=CLASSES, **extra)
    if extra:
        # torchvision starts a ViT's head at zero, so every output would be 0 and the check
        # against the CPU would pass whatever the device computed. Same cost, random head.
        import torch

        torch.nn.init.normal_(made.heads.head.weight, std=0.02)
    return made.train(train)


def _unsupported(params: dict, device_type: str, dtype) -> str | None:
    patch = patch_size(params["model"])
    if patch and params["image_size"] % patch:
        return f"{params['model']} needs an image size that is a multiple of {patch} px"
    return None


def _nbytes(tree) -> int:
    """Bytes of a tensor, or of every tensor in nested lists and tuples; 0 for anything else."""
    import torch

    if isinstance(tree, (list, tuple)):
        return sum(map(_nbytes, tree))
    return tree.numel() * tree.element_size() if isinstance(tree, torch.Tensor) else 0


def _tensor_bytes():
    """A dispatch mode that adds up the bytes every op reads and writes, and the largest
    single output (a function so that torch is imported only when a model is costed)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class TensorBytes(TorchDispatchMode):
        output_bytes = moved_bytes = largest_output_bytes = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            written = _nbytes(out)
            self.output_bytes += written
            self.moved_bytes += written + _nbytes(args)
            self.largest_output_bytes = max(self.largest_output_bytes, written)
            return out

    return TensorBytes()


@functools.lru_cache(maxsize=256)
def _analyse(
    model: str, batch: int, image_size: int, dtype: torch.dtype, train: bool, copies: int = 0
) -> Cost:
    """``copies``: extra weight-sized copies a variant holds (autocast's half-width casts,
    a compiled graph's own buffers, a reordered layout)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    dtype = getattr(torch, dtype_name(dtype))  # a name works too
    with torch.device("meta"):
        net = new_model(model, train, image_size).to(dtype)
        x = torch.empty(batch, 3, image_size, image_size, dtype=dtype)
    counter, sizes = FlopCounterMode(display=False), _tensor_bytes()
    with counter, sizes, torch.no_grad():
        net(x)
    flops, largest = float(counter.get_total_flops()), sizes.largest_output_bytes
    # Training holds weights, gradients and one more weight-sized transient (measured: the
    # tensors alone came to 0.67 of resnet18's peak at batch 2 without it).
    weights_bytes = _nbytes(list(net.parameters()))
    fixed_bytes = weights_bytes * ((3 if train else 1) + copies) + _nbytes(x)
    if not train:
        memory = fixed_bytes + 3 * largest
        return Cost(flops, float(sizes.moved_bytes), float(memory) + WORKSPACE_BYTES, batch)
    # Backward costs about twice the forward pass. The flop counter's own backward
    # formulas are not used: some torch versions ignore groups in the convolution
    # backward and count depthwise layers (MobileNet, EfficientNet) many times over.
    # Memory: weights and gradients, every forward output kept for backward, and a
    # couple of the largest tensors alive at once while gradients flow.
    memory = fixed_bytes + sizes.output_bytes + 2 * largest
    return Cost(3 * flops, 3.0 * sizes.moved_bytes, float(memory) + WORKSPACE_BYTES, batch)


def model_cost(
    model: str, batch: int, image_size: int, dtype, train: bool, variant: str = "eager"
) -> Cost:
    """Work and an upper bound on memory for any torchvision classification model, found
    on the meta device without allocating anything (cached)."""
    copies = 0 if variant == variants.EAGER else 1
    return _analyse(model, batch, image_size, dtype_name(dtype), train, copies)


def _cost(train: bool) -> Callable[[dict, torch.dtype], Cost]:
    return lambda p, dtype: model_cost(
        p["model"], p["batch"], p["image_size"], dtype, train, variants.of(p)
    )


def _twin(params: dict, device: torch.device, dtype: torch.dtype, train: bool):
    """(reference, model, x, FLOPs per image): one set of seeded weights on the CPU and device."""
    batch, size = params["batch"], params["image_size"]
    make = functools.partial(new_model, params["model"], train, size)
    flops_per_image = _analyse(params["model"], batch, size, dtype, False).flops / batch
    return *seeded_twin(make, (batch, 3, size, size), device, dtype), flops_per_image


def _build_inference(params: dict, device: torch.device, dtype: torch.dtype) -> Prepared:
    return batch_forward(*_twin(params, device, dtype, train=False), variants.of(params))


def _build_train(params: dict, device: torch.device, dtype: torch.dtype) -> Prepared:
    import torch

    reference, model, x, flops_per_image = _twin(params, device, dtype, train=True)
    variant = variants.of(params)
    model, x = variants.laid_out(model, x, variant)
    target = torch.randint(0, CLASSES, (params["batch"],), device=device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    images = checked_images(len(x), flops_per_image)
    # The model is compiled, as people do; the optimizer step stays eager. Under autocast
    # the forward pass and the loss are lowered, and backward runs outside, as torch
    # recommends (without a gradient scaler: it changes no kernel's speed).
    forward = variants.compiled(model) if variant == variants.COMPILE else model

    def step():
        with variants.context(variant, device):
            loss = torch.nn.functional.cross_entropy(forward(x), target)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss

    def check():
        # Timing has moved the device weights on, so both sides restart from the CPU
        # reference's, which nothing changes. The forward pass is compared in eval mode:
        # batch norm over a small batch in training mode turns rounding into large
        # differences on any device, and in eval mode each image depends on itself alone.
        if images < 1:
            return None
        fresh = copy.deepcopy(reference).eval()
        on_device = copy.deepcopy(fresh).to(device=device, dtype=dtype)
        # Compiling the eval-mode copy too would cost as long again: it is checked eagerly.
        checked = variants.EAGER if variant == variants.COMPILE else variant
        return batch_forward(fresh, on_device, x, flops_per_image, checked).check()

    part = f" on the first {images} images" if images < len(x) else ""
    how = " (eagerly; the compiled step is timed, not compared)" if variant == "compile" else ""
    note = NOT_CHECKED if images < 1 else f"forward pass checked in eval mode{how}{part}"
    return Prepared(fn=step, check=check, check_note=note)


_MODEL_PARAMS = (
    Param("model", str, "resnet18", choices=tuple(MODELS)),
    Param("batch", int, 8, low=1, high=1024, log=True, axis="batch size"),
    Param("image_size", int, 224, low=32, high=512, unit="pixels", axis="image size (px)"),
    variants.param(),
)

# Inference and training share the model, batch and image-size parameters.
_model_workload = functools.partial(
    Workload, params=_MODEL_PARAMS, x_param="batch", unsupported=_unsupported
)

INFERENCE = _model_workload(
    name="inference",
    title="Inference",
    question="How many images per second does each device push through a CNN, by batch size?",
    cost=_cost(train=False),
    build=_build_inference,
)

TRAIN = _model_workload(
    name="train",
    title="Training step",
    question="Does a training step at my batch size fit, and how much faster is it?",
    cost=_cost(train=True),
    build=_build_train,
)
