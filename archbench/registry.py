"""The model registry: every network is a named builder plus the facts it claims.

Example:
    >>> import archbench, torch
    >>> archbench.list_models("lenet5*")
    ['lenet5', 'lenet5_bn', 'lenet5_bn_torch', 'lenet5_classic', 'lenet5_relu']
    >>> archbench.get_spec("lenet5").flat_features
    400
    >>> archbench.get_model("lenet5")(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])
"""

from __future__ import annotations

import difflib
import fnmatch
import inspect
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import torch  # noqa: F401  (doctest namespace)
from torch import nn

from archbench.errors import ArchbenchError, OptionTypeError, UnknownModelError

Shape = tuple[int, ...]

#: The builder options of a network's torchvision-compatible form (ImageNet: RGB input, 1000 classes).
TORCHVISION_FORM: Mapping[str, object] = MappingProxyType({"in_channels": 3, "num_classes": 1000, "variant": "torchvision"})
#: The input torchvision's published ``_ops`` refer to.
IMAGENET_INPUT: Shape = (3, 224, 224)


@dataclass(frozen=True)
class Figure:
    """A number a network must reproduce, and where the number comes from.

    Attributes:
        quantity: ``"params"`` (parameters) or ``"macs"`` (conv + linear multiply-accumulates, one image).
        value: the expected number.
        source: where it comes from (``"closed form per layer"``, a paper, ...).
        options: builder options of the form it refers to (e.g. :data:`TORCHVISION_FORM`); none: the default.
        input_shape: per-sample input for ``"macs"``; ``None``: the spec's ``input_shape`` (or
            :data:`IMAGENET_INPUT` when ``options`` is the torchvision form).
        rel_tol: allowed relative difference; 0 means exact.

    Example:
        >>> Figure("macs", 15.5e9, "VGG paper", TORCHVISION_FORM, rel_tol=0.01).matches(15_470_264_320)
        True
    """

    quantity: str
    value: float
    source: str
    options: Mapping[str, object] = field(default_factory=dict)
    input_shape: Shape | None = None
    rel_tol: float = 0.0

    def __post_init__(self) -> None:
        if self.quantity not in ("params", "macs"):
            raise ArchbenchError(f"Figure.quantity must be 'params' or 'macs', got {self.quantity!r}.")
        object.__setattr__(self, "options", MappingProxyType(dict(self.options)))

    def matches(self, measured: int) -> bool:
        """Whether ``measured`` equals the figure (within ``rel_tol``)."""
        if self.rel_tol == 0:
            return measured == self.value
        return abs(measured - self.value) <= self.rel_tol * abs(self.value)


@dataclass(frozen=True)
class ModelSpec:
    """What a registered network is and what it claims about itself.

    Attributes:
        name: registry name.
        input_shape: one sample's shape, (C, H, W).
        num_classes: width of the output.
        source: the seed document the network comes from (e.g. ``"seed 000: d2l LeNet"``).
        description: one line for `archbench list`.
        flat_features: features entering the first fully connected layer (the seeds' 400/256/...).
        output: ``"logits"`` (train with CrossEntropyLoss) or ``"log_probs"`` (train with NLLLoss).
        layer_shapes: claimed (C, H, W) output of named modules at ``facts_input_shape``.
        facts_input_shape: the input the ``layer_shapes`` refer to; defaults to ``input_shape``.
        other_input_shapes: further (C, H, W) inputs the network is claimed to build and run at.
        bench_input_shape: a smaller per-sample shape for the quick CPU benchmark (``None``: ``input_shape``).
        figures: numbers the network must reproduce (parameters, MACs), each with its independent source;
            the verification report and the tests check every one (:mod:`archbench.verify`).
        torchvision: the ``torchvision.models`` builder whose ``state_dict`` the form built with
            :data:`TORCHVISION_FORM` loads unchanged; its weights' published ``num_params`` and ``_ops`` are
            checked too.
    """

    name: str
    input_shape: Shape
    num_classes: int
    source: str
    description: str
    flat_features: int
    output: str = "logits"
    layer_shapes: Mapping[str, Shape] = field(default_factory=dict)
    facts_input_shape: Shape | None = None
    other_input_shapes: tuple[Shape, ...] = ()
    bench_input_shape: Shape | None = None
    figures: tuple[Figure, ...] = ()
    torchvision: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise OptionTypeError(f"ModelSpec.name must be a non-empty string, got {self.name!r}.")
        if self.output not in ("logits", "log_probs"):
            raise ArchbenchError(f"ModelSpec.output must be 'logits' or 'log_probs', got {self.output!r}.")
        _check_count(f"ModelSpec {self.name!r} num_classes", self.num_classes, minimum=1)
        _check_count(f"ModelSpec {self.name!r} flat_features", self.flat_features, minimum=0)
        shapes = {"input_shape": self.input_shape, "facts_input_shape": self.facts_input_shape,
                  "bench_input_shape": self.bench_input_shape}  # fmt: skip
        shapes.update({f"other_input_shapes[{i}]": s for i, s in enumerate(self.other_input_shapes)})
        for key, value in shapes.items():
            if value is None:
                continue
            if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__") or not tuple(value):
                raise OptionTypeError(f"ModelSpec {self.name!r} {key} must be a tuple of sizes such as (1, 28, 28), got {value!r}.")
            for size in value:
                _check_count(f"ModelSpec {self.name!r} {key} sizes", size, minimum=1)
            if key == "input_shape":
                object.__setattr__(self, key, tuple(value))
        object.__setattr__(self, "layer_shapes", MappingProxyType(dict(self.layer_shapes)))
        object.__setattr__(self, "figures", tuple(self.figures))

    def figure_input(self, figure: Figure) -> Shape:
        """The per-sample input a ``"macs"`` figure refers to."""
        if figure.input_shape is not None:
            return figure.input_shape
        return IMAGENET_INPUT if figure.options.get("variant") == "torchvision" else self.input_shape


def _check_count(what: str, value: object, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise OptionTypeError(f"{what} must be a whole number, got {value!r}.")
    if value < minimum:
        raise ArchbenchError(f"{what} must be at least {minimum}, got {value}.")


def loss_for(output: str) -> nn.Module:
    """The training loss of an output kind: NLLLoss for ``"log_probs"``, CrossEntropyLoss for ``"logits"``."""
    return nn.NLLLoss() if output == "log_probs" else nn.CrossEntropyLoss()


@dataclass(frozen=True)
class _Entry:
    builder: Callable[..., nn.Module]
    spec: ModelSpec


_REGISTRY: dict[str, _Entry] = {}


def register_model(spec: ModelSpec) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator that registers a builder under ``spec.name``.

    Args:
        spec: the network's claimed facts.

    Returns:
        The decorator; it returns the builder unchanged.

    Raises:
        ArchbenchError: if the name is already registered.

    Example:
        >>> @register_model(ModelSpec("tiny", (1, 4, 4), 10, "test", "a tiny net", 16))
        ... def tiny() -> nn.Module:
        ...     return nn.Sequential(nn.Flatten(), nn.Linear(16, 10))
        >>> get_model("tiny")[1].out_features
        10
        >>> unregister_model("tiny")
    """

    def decorate(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if spec.name in _REGISTRY:
            raise ArchbenchError(
                f"A model named {spec.name!r} is already registered; pick another name or unregister it first."
            )
        _REGISTRY[spec.name] = _Entry(builder, spec)
        return builder

    return decorate


def unregister_model(name: str) -> None:
    """Remove ``name`` from the registry (for tests and plug-ins)."""
    _entry(name)
    del _REGISTRY[name]


def list_models(pattern: str = "*") -> list[str]:
    """Sorted names of the registered networks that match a shell-style wildcard.

    Example:
        >>> list_models("*res*")
        ['residual_net', 'resnet18', 'resnet34', 'resnet50']
    """
    if not isinstance(pattern, str):
        raise OptionTypeError(f"A model pattern must be a string such as 'lenet*', got {pattern!r}.")
    _load_builtin_models()
    return sorted(n for n in _REGISTRY if fnmatch.fnmatchcase(n, pattern))


def get_spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` of a registered network.

    Raises:
        UnknownModelError: for an unknown name; the message lists the closest names.
    """
    return _entry(name).spec


def get_model(name: str, **config: object) -> nn.Module:
    """Build a registered network by name.

    Args:
        name: a name from :func:`list_models`.
        **config: keyword options of that network's builder (e.g. ``num_classes=1000``).

    Raises:
        UnknownModelError: for an unknown name.
        ArchbenchError: for an option the builder does not take.

    Example:
        >>> get_model("resnet18", in_channels=3, num_classes=1000, variant="torchvision").fc.out_features
        1000
    """
    builder = _entry(name).builder
    params = inspect.signature(builder).parameters
    unknown = sorted(set(config) - set(params))
    if unknown:
        options = ", ".join(p for p in params) or "none"
        raise ArchbenchError(f"Model {name!r} takes no option {unknown[0]!r}; its options are: {options}.")
    for key, value in config.items():
        _check_option(name, key, value, params[key].default)
    if not config:
        return builder()
    try:
        return builder(**config)
    except (ValueError, TypeError, RuntimeError) as err:  # torch's own refusals of an option's value
        if isinstance(err, ArchbenchError):
            raise
        options = ", ".join(f"{k}={v!r}" for k, v in config.items())
        raise ArchbenchError(f"Model {name!r} cannot be built with {options}: {str(err).rstrip('.')}.") from None


def _check_option(name: str, key: str, value: object, default: object) -> None:
    """Refuse an option whose type differs from its default's, and a count (an int default > 0) below 1.

    Example:
        >>> get_model("lenet5", num_classes=0)
        Traceback (most recent call last):
        ...
        archbench.errors.ArchbenchError: Model 'lenet5' option num_classes must be a whole number of at least 1 (default 10), got 0.
    """
    where = f"Model {name!r} option {key}"
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise OptionTypeError(f"{where} must be True or False (default {default}), got {value!r}.")
    elif isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise OptionTypeError(f"{where} must be a whole number (default {default}), got {value!r}.")
        if default > 0 and value < 1:
            raise ArchbenchError(f"{where} must be a whole number of at least 1 (default {default}), got {value}.")
    elif isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise OptionTypeError(f"{where} must be a finite number (default {default}), got {value!r}.")
    elif isinstance(default, str) and not isinstance(value, str):
        raise OptionTypeError(f"{where} must be a string (default {default!r}), got {value!r}.")


def _entry(name: str) -> _Entry:
    if not isinstance(name, str):
        raise OptionTypeError(
            f"A model name must be a string such as 'lenet5', got {name!r} of type {type(name).__name__}."
        )
    _load_builtin_models()
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=3, cutoff=0.4)
        hint = f"did you mean {', '.join(close)}?" if close else f"known models: {', '.join(sorted(_REGISTRY))}."
        raise UnknownModelError(f"Unknown model {name!r}; {hint} (see `archbench list`)") from None


def _load_builtin_models() -> None:
    import archbench.models  # noqa: F401  (registers the built-in networks on import)
