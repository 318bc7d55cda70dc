"""Will it fit? A model's memory need, before anything runs, against named machines, and
the real peak of one forward pass or training step to show how far off the estimate is.

The estimate is ``models.model_cost``'s upper bound, traced on the meta device. The
measured peak counts what the estimate counts: weights, input and targets, gradients,
every intermediate tensor and the libraries' workspaces, as allocated by PyTorch.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch

from core import units
from core.errors import BadInput
from core.measure import devices, memory
from core.measure.workloads import dtype_name, models

DTYPES = ("float32", "float16", "bfloat16")
MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 32, 1024
MAX_BATCH = 1 << 20  # largest_batch looks no further: "at least this many"
DEFAULT_MODEL = "resnet18"


@dataclass(frozen=True)
class Preset:
    """A machine a user may ask about, and the bytes a model may use there."""

    name: str
    usable_bytes: int | None  # None: this machine cannot tell
    source: str  # where the figure comes from, in words


@functools.cache
def classification_models() -> tuple[str, ...]:
    """Every torchvision classification model (the ViTs among them), sorted by name."""
    import torchvision

    return tuple(sorted(torchvision.models.list_models(module=torchvision.models)))


def presets() -> list[Preset]:
    """The MacBook Neo and a 16 GB laptop, as the post's Mac sees them, then this machine's
    accelerator (if any) and CPU, at the memory guard's default budget for each."""
    # memory.PRESETS_BYTES: macOS lets Metal use about two thirds of a Mac's unified memory
    # (its recommendedMaxWorkingSetSize, what mps_adapter.recommended_max_memory_bytes reads);
    # past it the Mac swaps. The post's MacBook Neo has 8 GB (core/keep/data/post_machines.json,
    # shared/reference/README.md).
    metal = "about 2/3 of {} unified memory, what Metal recommends the GPU may use"
    found = [
        Preset(
            "MacBook Neo 8 GB (MPS)", memory.PRESETS_BYTES["8 GB laptop"], metal.format("8 GiB")
        ),
        Preset("16 GB laptop (MPS)", memory.PRESETS_BYTES["16 GB laptop"], metal.format("16 GiB")),
    ]
    share = memory.DEFAULT_ACCELERATOR_SHARE
    for name in devices.device_strings()[1:]:
        device = torch.device(name)
        kind = "MPS" if device.type == "mps" else name
        source = (
            f"{share:.0%} of what is free now (the memory guard's default)"
            if device.type != "mps"
            else f"{memory.DEFAULT_SHARE['mps']:.0%} of what Metal allows now"
        )
        label = f"This machine's GPU ({devices.accelerator_name(device)}, {kind})"
        found.append(Preset(label, memory.default_budget_bytes(device), source))
    cpu_share = memory.DEFAULT_SHARE["cpu"]
    found.append(
        Preset(
            "This machine's CPU (RAM)",
            memory.default_budget_bytes("cpu"),
            f"{cpu_share:.0%} of the RAM available now (the memory guard's default)",
        )
    )
    return found


def check(model: str, batch: int, image_size: int, dtype: str, train: bool = False) -> None:
    """Raise BadInput, in one line, for a combination that cannot be costed or run."""
    if model not in classification_models():
        raise BadInput(
            f"model: '{units.echo(model)}' is not a torchvision classification model; "
            f"e.g. {DEFAULT_MODEL}, mobilenet_v2, vit_b_16"
        )
    if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
        raise BadInput(f"batch: '{units.echo(batch)}' must be a whole number of at least 1")
    if not isinstance(image_size, int) or not MIN_IMAGE_SIZE <= image_size <= MAX_IMAGE_SIZE:
        raise BadInput(
            f"image size: '{units.echo(image_size)}' must be a whole number of pixels "
            f"from {MIN_IMAGE_SIZE} to {MAX_IMAGE_SIZE}"
        )
    patch = models.patch_size(model)
    if patch and image_size % patch:
        raise BadInput(
            f"{model} needs an image size that is a multiple of {patch} px, "
            f"e.g. {snap_image_size(model, image_size)}"
        )
    if dtype_name(dtype) not in DTYPES:
        raise BadInput(f"dtype: '{units.echo(dtype)}' must be one of {', '.join(DTYPES)}")


def snap_image_size(model: str, image_size: int) -> int:
    """The nearest image size ``model`` takes: a ViT's is a multiple of its patch."""
    patch = models.patch_size(model)
    if not patch:
        return image_size
    snapped = max((2 * image_size + patch) // (2 * patch), 1) * patch  # ties round up
    while snapped < MIN_IMAGE_SIZE:
        snapped += patch
    return min(snapped, MAX_IMAGE_SIZE // patch * patch)


def estimate(model: str, batch: int, image_size: int, dtype: str, train: bool) -> int:
    """An upper bound on the bytes one forward pass (``train`` False) or one SGD training
    step needs, found without allocating anything (cached per point)."""
    check(model, batch, image_size, dtype, train)
    try:
        cost = models.model_cost(model, batch, image_size, dtype_name(dtype), bool(train))
    except (RuntimeError, ValueError, TypeError, IndexError) as error:
        # Too small an image for the model's pooling, say: the model's own words.
        raise BadInput(f"{model} at {image_size} px: {units.one_line(error, limit=160)}") from None
    return math.ceil(cost.memory_bytes)


def largest_batch(
    model: str,
    image_size: int,
    dtype: str,
    train: bool,
    budget_bytes: int | None,
    limit: int = MAX_BATCH,
) -> int | None:
    """The largest batch whose estimate is within ``budget_bytes`` (0: not even one image;
    ``limit``: that many or more; None: no budget known), confirmed with the estimator.

    The estimate is convex in the batch: affine pieces (every output, plus the largest
    one, which is a weight at small batches and an activation at large ones). So the
    line through two large batches, extended down, lies under it and crosses the budget
    at the most that can fit; the batch there usually does, and two tracings shared by
    every budget plus one to confirm answer it. Where it does not, a search finds it."""
    if budget_bytes is None:
        return None
    need = functools.partial(estimate, model, image_size=image_size, dtype=dtype, train=train)
    try:
        low = 1
        smallest = need(batch=low)
    except BadInput:  # batch norm in training needs two values per channel: start at 2
        low = 2
        smallest = need(batch=low)
    if smallest > budget_bytes:
        return 0
    if limit <= low or need(batch=limit) <= budget_bytes:
        return max(limit, low)
    half = max(limit // 2, 1)
    rise = need(batch=limit) - need(batch=half)
    guess = half + (budget_bytes - need(batch=half)) * (limit - half) // max(rise, 1)
    if low <= guess < limit and need(batch=guess) <= budget_bytes:
        return guess  # by convexity, guess + 1 is over the budget
    guess = min(max(guess, low + 1), limit - 1)
    # Largest known to fit and smallest known not to; step out by 1, 2, 4, ... from the
    # guess until the edge is crossed, then halve.
    fits, too_big, step = low, limit, 1
    while too_big - fits > 1:
        if not fits < guess < too_big:
            guess = (fits + too_big) // 2
        if need(batch=guess) <= budget_bytes:
            fits, guess = guess, guess + step
        else:
            too_big, guess = guess, guess - step
        step *= 2
    return fits


def fits_table(model: str, batch: int, image_size: int, dtype: str, train: bool) -> list[dict]:
    """One row per preset: what the point needs, what the preset allows, whether it fits,
    and the largest batch that does."""
    need_bytes = estimate(model, batch, image_size, dtype, train)
    rows = []
    for preset in presets():
        usable = preset.usable_bytes
        rows.append(
            {
                "machine": preset.name,
                "needed_bytes": need_bytes,
                "usable_bytes": usable,
                "fits": None if usable is None else need_bytes <= usable,
                "largest_batch": largest_batch(model, image_size, dtype, train, usable),
                "source": preset.source,
            }
        )
    return rows


# ---------------------------------------------------------------- measuring


def measurement_method(device: torch.device | str) -> str:
    """What ``measure_peak`` counts on ``device``, in words for the page and the tables."""
    kind = torch.device(device).type
    if kind == "cpu":
        return (
            "tensor memory from PyTorch's CPU allocator, peak of its allocations and frees "
            "as torch.profiler recorded them, plus the weights, input and targets held before"
        )
    if kind == "mps":
        return "MPS allocated memory, sampled after every op (MPS keeps no peak counter)"
    return f"{kind} max_memory_allocated during the work, less what was allocated before"


class _SampleAfterEachOp:
    """Calls ``sample`` after every op (forward and backward): for MPS, which has no peak
    counter. A factory, so that torch's dispatch machinery is imported only when needed."""

    def __new__(cls, sample):
        from torch.utils._python_dispatch import TorchDispatchMode

        class Sampler(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                out = func(*args, **(kwargs or {}))
                sample()
                return out

        return Sampler()


def _work(model: str, batch: int, image_size: int, dtype: torch.dtype, train: bool, device):
    """The model, input and targets on ``device``, and the one call to measure."""
    torch.manual_seed(0)
    net = models.new_model(model, train, image_size).to(device=device, dtype=dtype)
    x = torch.randn(batch, 3, image_size, image_size, device=device, dtype=dtype)
    target = torch.randint(0, models.CLASSES, (batch,), device=device)
    if not train:

        def call():
            with torch.no_grad():
                net(x)

        return (net, x, target), call
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01)

    def call():
        out = net(x)
        # GoogLeNet and Inception return their auxiliary outputs too while training.
        logits = out[0] if isinstance(out, tuple) else out
        torch.nn.functional.cross_entropy(logits, target).backward()
        optimizer.step()

    return (net, x, target), call


def _held_bytes(net, *tensors) -> int:
    """Bytes of the weights, buffers and the given tensors."""
    held = [*net.parameters(), *net.buffers(), *tensors]
    return sum(t.numel() * t.element_size() for t in held)


def _cpu_peak(net, x, target, call) -> int:
    """Peak tensor bytes on the CPU: PyTorch has no counter there, and the resident set
    counts code, caches and freed memory the C library keeps, so the allocator's own
    allocations and frees are read from the profiler and added up in order."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        call()
    events = getattr(getattr(prof.profiler, "kineto_results", None), "events", None)
    if events is None:
        raise BadInput("this torch's profiler does not report memory events on the CPU")
    changes = sorted((e.start_ns(), e.nbytes()) for e in events() if e.name() == "[memory]")
    live = peak = 0
    for _, change in changes:
        live += change
        peak = max(peak, live)
    return _held_bytes(net, x, target) + peak


def measure_peak(
    model: str,
    batch: int,
    image_size: int,
    dtype: str,
    train: bool,
    device: torch.device | str,
    budget_bytes: int | None = None,
) -> int:
    """Run one forward pass (no_grad) or one training step (forward, backward, SGD step)
    and return the peak memory of that work, model and input included. Refused first, in
    one line and before anything is allocated, when the estimate is over the device's
    budget (``budget_bytes``, else the memory guard's default)."""
    device = torch.device(device)
    need_bytes = estimate(model, batch, image_size, dtype, train)
    budget = memory.default_budget_bytes(device) if budget_bytes is None else budget_bytes
    budget, _ = memory.capped_budget(budget, device)
    if (refused := memory.refusal(need_bytes, budget, device)) is not None:
        raise BadInput(f"not measured: {model} batch {batch} {refused}")
    torch_dtype = getattr(torch, dtype_name(dtype))
    devices.empty_cache(device)
    before = devices.allocated_bytes(device)
    try:
        (net, x, target), call = _work(model, batch, image_size, torch_dtype, train, device)
        if device.type == "cpu":
            return _cpu_peak(net, x, target, call)
        peak = devices.PeakMemory(device)
        if peak.sample is not None:  # MPS: no peak counter, so sample after every op
            with _SampleAfterEachOp(peak.sample):
                call()
        else:
            call()
        devices.synchronize(device)
        top = peak.peak_bytes()
        if top is None:
            raise BadInput(f"{device} does not report its memory use")
        return max(int(top) - int(before or 0), 0)
    except RuntimeError as error:  # a dtype or op the device lacks: its own words
        raise BadInput(f"{model} on {device}: {units.one_line(error, limit=160)}") from None
    finally:
        net = x = target = call = None
        devices.empty_cache(device)


@dataclass(frozen=True)
class Measured:
    """The estimate beside the measured peak, and how far apart they are."""

    device: str
    estimate_bytes: int
    measured_bytes: int
    method: str

    @property
    def ratio(self) -> float:
        """estimate / measured: 1 is exact, above 1 an over-estimate (as it should be)."""
        return self.estimate_bytes / self.measured_bytes if self.measured_bytes else math.inf

    @property
    def over_bytes(self) -> int:
        """How many bytes the estimate is above the measured peak (negative: below)."""
        return self.estimate_bytes - self.measured_bytes

    @property
    def holds(self) -> bool:
        """Whether the estimate is the upper bound it claims to be."""
        return self.estimate_bytes >= self.measured_bytes

    def summary(self) -> str:
        """One line: 'the estimate is 2.31× the measured peak (+1.2 GB)'."""
        sign = "+" if self.over_bytes >= 0 else "-"
        line = (
            f"the estimate is {units.ratio(self.ratio)} the measured peak "
            f"({sign}{units.bytes_si(abs(self.over_bytes))})"
        )
        return line if self.holds else line + ": below it, so not an upper bound here"


def measure(
    model: str,
    batch: int,
    image_size: int,
    dtype: str,
    train: bool,
    device: torch.device | str,
    budget_bytes: int | None = None,
) -> Measured:
    """``measure_peak`` beside the estimate."""
    peak = measure_peak(model, batch, image_size, dtype, train, device, budget_bytes)
    return Measured(
        device=str(torch.device(device)),
        estimate_bytes=estimate(model, batch, image_size, dtype, train),
        measured_bytes=peak,
        method=measurement_method(device),
    )


def measure_devices() -> list[str]:
    """The devices ``measure_peak`` can run on here: the CPU, then each accelerator."""
    return devices.device_strings()
