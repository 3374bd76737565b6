"""What gets benchmarked: the session's options (defined once, as :class:`SuiteOptions`) and the cases they select.

The ``--archbench-*`` pytest options and the arguments ``archbench bench`` hands to ``pytest.main`` come from
:class:`SuiteOptions`' fields; rounds, time and warm-up are pytest-benchmark's own ``--benchmark-*`` options. Two
pairs run side by side in one group: ``lenet5_bn`` vs ``lenet5_bn_torch`` (hand-written vs native BatchNorm) and
our ``resnet18(variant="torchvision")`` vs ``torchvision.models.resnet18`` (3×224×224, 1000 classes).

Example:
    >>> [c.id for c in enumerate_cases(SuiteOptions(models=("lenet5",), device="cpu"))][:2]
    ['lenet5-forward-cpu-b1', 'lenet5-forward-cpu-b64']
    >>> SuiteOptions(models=("lenet*",), batches=(8,), threads=2).pytest_args()
    ['--archbench-models=lenet*', '--archbench-batches=8', '--archbench-threads=2']
"""

from __future__ import annotations

import fnmatch
import functools
import math
from dataclasses import MISSING, dataclass, field, fields
from typing import Any

import torch
from torch import nn

from archbench.bench.machine import DTYPES, usable_cores
from archbench.errors import ArchbenchError

MODES = ("forward", "train_step")
BN_PAIR = ("lenet5_bn", "lenet5_bn_torch")
RESNET_OURS, RESNET_TORCHVISION = "resnet18(variant=torchvision)", "torchvision.models.resnet18"
RESNET_PAIR_INPUT = (3, 224, 224)
#: The quick CPU batch keeps one call near this many MACs (between 2 and 64 images).
QUICK_CALL_MACS = 8e9


def _ints(text: str) -> tuple[int, ...]:
    values = tuple(int(p) for p in text.replace("x", ",").replace(" ", ",").split(",") if p)  # ValueError: caller
    if not values or min(values) < 1:
        raise ValueError(text)
    return values


def _opt(help: str, parse: Any = None, **kw: Any) -> Any:
    return field(metadata={"help": help, "parse": parse}, **kw)


@dataclass(frozen=True)
class SuiteOptions:
    """The options of one benchmark session (``--archbench-<field>`` in pytest, keywords in ``archbench bench``)."""

    models: tuple[str, ...] = _opt("model references or wildcards over registered names, comma-separated",
                                   lambda t: tuple(p for p in t.split(",") if p), default=("*",))  # fmt: skip
    input_size: tuple[int, ...] | None = _opt("per-sample input shape for unregistered models, e.g. 3,32,32", _ints,
                                              default=None)  # fmt: skip
    device: str = _opt("all (cpu, and cuda when present), auto, cpu or cuda", str, default="all")
    batches: tuple[int, ...] | None = _opt("batch sizes, positive whole numbers (default: 1 and one by MACs per image)",
                                           _ints, default=None)  # fmt: skip
    sweep: bool = _opt("the wider batch-size sweep", default=False)
    dtype: str = _opt("autocast dtype: float32 (none), bfloat16 or float16", str, default="float32")
    channels_last: bool = _opt("channels-last models and inputs", default=False)
    compile: bool = _opt("torch.compile the networks", default=False)
    threads: int = _opt("torch intra-op threads (default: every usable core)", int, default_factory=usable_cores)

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise ArchbenchError(f"Unknown dtype {self.dtype!r}; use one of {', '.join(DTYPES)}.")
        if self.device not in ("all", "auto", "cpu", "cuda"):
            raise ArchbenchError(f"Unknown device {self.device!r}; use one of all, auto, cpu, cuda.")
        if not isinstance(self.threads, int) or isinstance(self.threads, bool) or self.threads < 1:
            raise ArchbenchError(f"The thread count must be a whole number of at least 1, got {self.threads!r}.")
        if not self.models:
            raise ArchbenchError("No model was named; pass a registered name, a wildcard or a reference.")

    @property
    def devices(self) -> tuple[str, ...]:
        """``all`` = cpu and cuda (skipped when absent); ``auto`` = cuda if present, else cpu."""
        if self.device == "auto":
            return ("cuda",) if torch.cuda.is_available() else ("cpu",)
        return ("cpu", "cuda") if self.device == "all" else (self.device,)

    def pytest_args(self) -> list[str]:
        """The ``--archbench-*`` arguments that rebuild these options in a pytest session."""
        args = []
        for f in fields(self):
            value, flag = getattr(self, f.name), "--archbench-" + f.name.replace("_", "-")
            if f.default is MISSING or value != f.default:
                text = ",".join(map(str, value)) if isinstance(value, tuple) else value
                args.append(flag if isinstance(value, bool) else f"{flag}={text}")
        return args

    @classmethod
    def add_pytest_options(cls, parser: Any) -> None:
        """Register one ``--archbench-<field>`` option per field."""
        group = parser.getgroup("archbench", "archbench network benchmarks")
        for f in fields(cls):
            flag_only = f.metadata["parse"] is None
            group.addoption("--archbench-" + f.name.replace("_", "-"), action="store_true" if flag_only else "store",
                            default=False if flag_only else None, help=f.metadata["help"])  # fmt: skip

    @classmethod
    def from_pytest(cls, config: Any) -> SuiteOptions:
        """The options of a pytest session (raises ArchbenchError for bad values)."""
        kw = {}
        for f in fields(cls):
            value, parse = config.getoption("archbench_" + f.name), f.metadata["parse"]
            if value in (None, False):
                continue
            try:
                kw[f.name] = value if parse is None else parse(value)
            except ValueError:
                raise ArchbenchError(f"--archbench-{f.name.replace('_', '-')} got {value!r}: {f.metadata['help']}.") from None
        return cls(**kw)


@dataclass(frozen=True)
class BenchCase:
    """One benchmark: network (a reference or a pair label), mode, device, batch and one sample's shape."""

    model: str
    mode: str
    device: str
    batch: int
    input_shape: tuple[int, ...]
    output: str
    dtype: str = "float32"
    channels_last: bool = False
    compile: bool = False
    skip: str | None = None

    @property
    def id(self) -> str:
        """The pytest id, e.g. ``lenet5-train_step-cpu-b64`` (with ``-bfloat16``, ``-cl``, ``-compiled``)."""
        name = {RESNET_OURS: "resnet18_ours", RESNET_TORCHVISION: "resnet18_torchvision"}.get(self.model, self.model)
        parts = [name, self.mode, self.device, f"b{self.batch}", *([self.dtype] if self.dtype != "float32" else [])]
        return "-".join(parts + ["cl"] * self.channels_last + ["compiled"] * self.compile)

    @property
    def group(self) -> str:
        """pytest-benchmark's group: the network and mode, or the pair and mode (its members side by side)."""
        if self.model in BN_PAIR:
            return f"{BN_PAIR[0]} vs {BN_PAIR[1]} (BatchNorm: ours vs torch) {self.mode}"
        if self.model in (RESNET_OURS, RESNET_TORCHVISION):
            return f"resnet18 ours vs torchvision ({'x'.join(map(str, RESNET_PAIR_INPUT))}) {self.mode}"
        return f"{self.model} {self.mode}"


def build_model(model: str) -> nn.Module:
    """A fresh float32 instance of a case's network (reference or pair label) on the current default device."""
    import archbench
    from archbench.refs import resolve_ref

    if model == RESNET_OURS:
        return archbench.get_model("resnet18", in_channels=3, num_classes=1000, variant="torchvision")
    if model == RESNET_TORCHVISION:
        import torchvision

        return torchvision.models.resnet18(num_classes=1000)
    return resolve_ref(model).module


@functools.lru_cache(maxsize=None)
def _meta_model(model: str) -> nn.Module:
    """The network on the meta device: shapes and counts only, no weights allocated (cached)."""
    with torch.device("meta"):
        return build_model(model)


@functools.lru_cache(maxsize=None)
def _count(model: str, input_shape: tuple[int, ...], backward: bool) -> Any:
    from archbench.analysis.counts import count_macs

    return count_macs(_meta_model(model), (1, *input_shape), method="analytic", backward=backward)


def work_of(model: str, input_shape: tuple[int, ...], mode: str) -> dict[str, Any]:
    """One image's ``params``, forward ``macs_per_image`` and ``flops_per_image`` in ``mode`` (FLOPs = 2 × MACs;
    a training step adds the backward pass's MACs from ``FlopCounterMode``), and ``uncounted``: the operators
    with no formula (``{}`` when the count is complete, else a lower bound)."""
    counted = _count(model, input_shape, True)
    flops = 2 * counted.total if mode == "forward" else 2 * (counted.total + (counted.backward or 0))
    return {"params": counted.params, "macs_per_image": counted.total, "flops_per_image": flops,
            "uncounted": dict(counted.uncounted)}  # fmt: skip


def _needs_batch_of_two(model: str) -> bool:
    """A training step of a network with a BatchNorm over features is undefined at batch 1."""
    return any(isinstance(m, nn.BatchNorm1d) or getattr(m, "num_dims", None) == 2 for m in _meta_model(model).modules())


def _batches(options: SuiteOptions, macs: int, device: str) -> tuple[int, ...]:
    if options.batches is not None:
        return options.batches
    if device == "cuda":
        return (1, 16, 64, 256, 1024) if options.sweep else (1, 64)
    big = int(min(64, max(2, 2 ** math.floor(math.log2(QUICK_CALL_MACS / max(macs, 1))))))
    return tuple(sorted({1, max(1, big // 16), max(1, big // 4), big, 4 * big})) if options.sweep else (1, big)


def _units(options: SuiteOptions) -> list[list[tuple[str, tuple[int, ...], str]]]:
    """Networks to run, as units (a comparison pair is one unit): (label, sample shape, output kind)."""
    from archbench.refs import is_reference, missing_input_size, resolve_ref
    from archbench.registry import get_spec, list_models

    names: list[str] = []
    for ref in options.models:
        matched = list_models(ref) if any(ch in ref for ch in "*?[") else [ref]
        if not matched:
            raise ArchbenchError(f"No model matches {ref!r}; run `archbench list` to see all names.")
        names += [n for n in matched if n not in names]
    units = []
    for name in names:
        if is_reference(name):
            if options.input_size is None:
                raise missing_input_size(name)
            resolve_ref(name)  # a bad reference fails here, at collection, before anything is timed
            units.append([(name, options.input_size, "logits")])
        elif name != BN_PAIR[1] or BN_PAIR[0] not in names:  # the native BatchNorm runs beside its partner
            unit = BN_PAIR if name == BN_PAIR[0] and BN_PAIR[1] in names else (name,)
            specs = [get_spec(n) for n in unit]  # the facts only: nothing is built
            units.append([(n, tuple(s.bench_input_shape or s.input_shape), s.output) for n, s in zip(unit, specs)])
    if any(fnmatch.fnmatchcase("resnet18", ref) for ref in options.models if any(ch in ref for ch in "*?[")):
        units.append([(label, RESNET_PAIR_INPUT, "logits") for label in (RESNET_OURS, RESNET_TORCHVISION)])
    return units


def enumerate_cases(options: SuiteOptions) -> list[BenchCase]:
    """Every case of a session in a stable order; a pair's members alternate (ours, theirs, ours...).

    Raises:
        ArchbenchError: for a wildcard that matches nothing or an unregistered model without ``input_size``.
    """
    cases = []
    for unit in _units(options):
        macs = 0 if options.batches else _count(*unit[0][:2], False).total
        for mode in MODES:
            for device in options.devices:
                for batch in _batches(options, macs, device):
                    for model, shape, output in unit:
                        skip = None
                        if device == "cuda" and not torch.cuda.is_available():
                            skip = "CUDA is not available on this machine"
                        elif mode == "train_step" and batch == 1 and _needs_batch_of_two(model):
                            skip = f"{model} has a BatchNorm over features: a training step needs a batch of at least 2"
                        cases.append(BenchCase(model, mode, device, batch, shape, output, options.dtype,
                                               options.channels_last, options.compile, skip))  # fmt: skip
    return cases
