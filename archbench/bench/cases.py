"""What gets benchmarked: every registered network × mode × device × batch size, plus two comparisons.

The comparisons run side by side in the same session and share a pytest-benchmark group:

* hand-written vs native BatchNorm: ``lenet5_bn`` vs ``lenet5_bn_torch`` (the same network but for the layer);
* ``resnet18`` in its torchvision-compatible configuration vs ``torchvision.models.resnet18``, both at
  3×224×224 with 1000 classes (the same math, so any gap is our overhead).

Batch sizes: a quick default (1 and 64 for LeNet-sized networks; 1 and 16 for networks of at least
:data:`LARGE_MACS` per image on the CPU, 1 and 64 on CUDA) or a wider ``sweep``; an explicit list overrides
both. A training step at batch 1 is skipped, with the reason, for networks with a BatchNorm over features
(one value per channel has no batch variance).

Example:
    >>> opts = SuiteOptions(devices=("cpu",), models="lenet5")
    >>> [c.id for c in enumerate_cases(opts)][:2]
    ['lenet5-forward-cpu-b1', 'lenet5-forward-cpu-b64']
"""

from __future__ import annotations

import fnmatch
import functools
from dataclasses import dataclass, field

import torch
from torch import nn

from archbench.bench.timing import usable_cores
from archbench.bench.work import MODES, Work, model_work
from archbench.errors import ArchbenchError

DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
DEVICE_SELECTIONS: tuple[str, ...] = ("all", "auto", "cpu", "cuda")

#: Networks with at least this many forward MACs per image get the "large" batch sizes.
LARGE_MACS = 100_000_000
QUICK_BATCHES = {("small", "cpu"): (1, 64), ("small", "cuda"): (1, 64), ("large", "cpu"): (1, 16), ("large", "cuda"): (1, 64)}
SWEEP_BATCHES = {
    ("small", "cpu"): (1, 8, 64, 256, 1024),
    ("small", "cuda"): (1, 64, 256, 1024, 4096),
    ("large", "cpu"): (1, 4, 16, 32, 64),
    ("large", "cuda"): (1, 16, 64, 256, 1024),
}

BN_PAIR = ("lenet5_bn", "lenet5_bn_torch")
RESNET_OURS = "resnet18(variant=torchvision)"
RESNET_TORCHVISION = "torchvision.models.resnet18"
RESNET_PAIR_INPUT = (3, 224, 224)


@dataclass(frozen=True)
class SuiteOptions:
    """The options of one benchmark session (pytest options ``--archbench-*``, or ``archbench bench``).

    Attributes:
        devices: devices to parametrise over (``"cpu"``, ``"cuda"``); CUDA rows skip when it is absent.
        models: shell-style wildcard over registered names; the resnet18 pair joins when it matches "resnet18".
        batches: explicit batch sizes; None for the quick default or the sweep.
        sweep: the wider batch sweep.
        dtype: autocast dtype (``"float32"``: no autocast).
        channels_last: models and inputs in the channels-last memory format.
        compile: models through ``torch.compile``.
        threads: torch intra-op threads (set explicitly; default every usable core).
        max_time: seconds of timed rounds per benchmark (more rounds for fast workloads).
        min_rounds: timed rounds, at least.
        max_rounds: timed rounds, at most.
        warmup_seconds: warm-up at the exact input shape, at least, after a first untimed call.
    """

    devices: tuple[str, ...] = ("cpu", "cuda")
    models: str = "*"
    batches: tuple[int, ...] | None = None
    sweep: bool = False
    dtype: str = "float32"
    channels_last: bool = False
    compile: bool = False
    threads: int = field(default_factory=usable_cores)
    max_time: float = 1.0
    min_rounds: int = 5
    max_rounds: int = 2000
    warmup_seconds: float = 0.25

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise ArchbenchError(f"Unknown dtype {self.dtype!r}; use one of {', '.join(DTYPES)}.")
        if self.batches is not None and (not self.batches or min(self.batches) < 1):
            raise ArchbenchError(f"Batch sizes must be positive whole numbers, got {list(self.batches)}.")
        if self.threads < 1 or self.min_rounds < 1 or self.max_rounds < self.min_rounds or self.max_time <= 0:
            raise ArchbenchError(
                "Benchmark budget must have threads ≥ 1, min_rounds ≥ 1, max_rounds ≥ min_rounds and max_time > 0, "
                f"got threads={self.threads}, min_rounds={self.min_rounds}, max_rounds={self.max_rounds}, "
                f"max_time={self.max_time}."
            )


def devices_for(selection: str) -> tuple[str, ...]:
    """Devices of a selection: ``all`` = cpu and cuda; ``auto`` = cuda if present, else cpu.

    Example:
        >>> devices_for("all")
        ('cpu', 'cuda')
    """
    if selection == "all":
        return ("cpu", "cuda")
    if selection == "auto":
        return ("cuda",) if torch.cuda.is_available() else ("cpu",)
    if selection in ("cpu", "cuda"):
        return (selection,)
    raise ArchbenchError(f"Unknown device selection {selection!r}; use one of {', '.join(DEVICE_SELECTIONS)}.")


def parse_batches(text: str) -> tuple[int, ...]:
    """``"1,16,64"`` → ``(1, 16, 64)``.

    Raises:
        ArchbenchError: for anything but positive whole numbers separated by commas.
    """
    try:
        batches = tuple(int(part) for part in text.replace(" ", ",").split(",") if part)
    except ValueError:
        batches = ()
    if not batches or min(batches) < 1:
        raise ArchbenchError(f"Batch sizes must be positive whole numbers separated by commas, got {text!r}.")
    return batches


@dataclass(frozen=True)
class BenchCase:
    """One benchmark: which network, how it is run, on what, at which batch.

    Attributes:
        model: the name recorded in the results (a registry name, or one of the resnet18 pair's labels).
        mode: ``"forward"`` or ``"train_step"``.
        device: ``"cpu"`` or ``"cuda"``.
        batch: images per call.
        input_shape: one image, (C, H, W).
        num_classes: output width (the labels of the training step are drawn below it).
        output: ``"logits"`` or ``"log_probs"`` (picks CrossEntropyLoss or NLLLoss).
        group: the pytest-benchmark group: network (or comparison) and mode.
        dtype: autocast dtype name.
        channels_last: channels-last memory format.
        compile: through ``torch.compile``.
        skip: why this case cannot run (None if it can).
    """

    model: str
    mode: str
    device: str
    batch: int
    input_shape: tuple[int, ...]
    num_classes: int
    output: str
    group: str
    dtype: str = "float32"
    channels_last: bool = False
    compile: bool = False
    skip: str | None = None

    @property
    def id(self) -> str:
        """The pytest id, e.g. ``lenet5-train_step-cpu-b64`` (with ``-bfloat16``, ``-cl``, ``-compiled``)."""
        name = {RESNET_OURS: "resnet18_ours", RESNET_TORCHVISION: "resnet18_torchvision"}.get(self.model, self.model)
        parts = [name, self.mode, self.device, f"b{self.batch}"]
        if self.dtype != "float32":
            parts.append(self.dtype)
        if self.channels_last:
            parts.append("cl")
        if self.compile:
            parts.append("compiled")
        return "-".join(parts)


def build_model(model: str) -> nn.Module:
    """A fresh float32 CPU instance of a case's network (by registry name or pair label)."""
    import archbench

    if model == RESNET_OURS:
        return archbench.get_model("resnet18", in_channels=3, num_classes=1000, variant="torchvision")
    if model == RESNET_TORCHVISION:
        import torchvision

        return torchvision.models.resnet18(num_classes=1000)
    return archbench.get_model(model)


@functools.lru_cache(maxsize=None)
def work_of(model: str, input_shape: tuple[int, ...]) -> Work:
    """Parameters, MACs and FLOPs per image of a case's network (cached per network and input)."""
    return model_work(build_model(model), input_shape)


@functools.lru_cache(maxsize=None)
def needs_batch_of_two(model: str) -> bool:
    """True if a training step needs batch ≥ 2: a BatchNorm over features sees one value per channel at 1."""
    for module in build_model(model).modules():
        if isinstance(module, nn.BatchNorm1d):
            return True
        if "BatchNorm" in type(module).__name__ and getattr(module, "num_dims", None) == 2:
            return True
    return False


def _group(model: str, mode: str) -> str:
    if model in BN_PAIR:
        return f"{BN_PAIR[0]} vs {BN_PAIR[1]} (BatchNorm: ours vs torch) {mode}"
    if model in (RESNET_OURS, RESNET_TORCHVISION):
        c, h, w = RESNET_PAIR_INPUT
        return f"resnet18 ours vs torchvision ({c}x{h}x{w}) {mode}"
    return f"{model} {mode}"


def _batches(options: SuiteOptions, model: str, input_shape: tuple[int, ...], device: str) -> tuple[int, ...]:
    if options.batches is not None:
        return options.batches
    size = "large" if work_of(model, input_shape).macs_per_image >= LARGE_MACS else "small"
    return (SWEEP_BATCHES if options.sweep else QUICK_BATCHES)[(size, device)]


def enumerate_cases(options: SuiteOptions) -> list[BenchCase]:
    """Every case of a session, in a stable order: network, mode, device, batch.

    The two members of a comparison alternate (ours, theirs, ours, theirs...) so that a drift in machine
    load hits both alike.

    Raises:
        ArchbenchError: if the pattern matches no network.
    """
    import archbench

    names = archbench.list_models(options.models)
    if not names:
        raise ArchbenchError(f"No model matches {options.models!r}; run `archbench list` to see all names.")
    Entry = tuple[str, tuple[int, ...], int, str]
    units: list[list[Entry]] = []
    for name in names:
        if name == BN_PAIR[1] and BN_PAIR[0] in names:
            continue  # runs beside its partner
        partners = list(BN_PAIR) if name == BN_PAIR[0] and BN_PAIR[1] in names else [name]
        unit = []
        for partner in partners:
            spec = archbench.get_spec(partner)
            unit.append((partner, tuple(spec.input_shape), spec.num_classes, spec.output))
        units.append(unit)
    if fnmatch.fnmatchcase("resnet18", options.models):
        units.append([(label, RESNET_PAIR_INPUT, 1000, "logits") for label in (RESNET_OURS, RESNET_TORCHVISION)])

    cases = []
    for unit in units:
        first, first_shape = unit[0][0], unit[0][1]
        for mode in MODES:
            for device in options.devices:
                for batch in _batches(options, first, first_shape, device):
                    for model, input_shape, num_classes, output in unit:
                        cases.append(
                            BenchCase(
                                model=model,
                                mode=mode,
                                device=device,
                                batch=batch,
                                input_shape=input_shape,
                                num_classes=num_classes,
                                output=output,
                                group=_group(model, mode),
                                dtype=options.dtype,
                                channels_last=options.channels_last,
                                compile=options.compile,
                                skip=_skip_reason(model, mode, batch),
                            )
                        )
    return cases


def _skip_reason(model: str, mode: str, batch: int) -> str | None:
    if mode == "train_step" and batch == 1 and needs_batch_of_two(model):
        return (
            f"{model} has a BatchNorm over features, which in training needs at least 2 values per channel; "
            "a training step at batch 1 is undefined"
        )
    return None
