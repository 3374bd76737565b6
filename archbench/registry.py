"""The model registry: every network is a named builder plus the facts it claims.

Example:
    >>> import archbench
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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from torch import nn

from archbench.errors import ArchbenchError, UnknownModelError

Shape = tuple[int, ...]


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

    def __post_init__(self) -> None:
        if self.output not in ("logits", "log_probs"):
            raise ArchbenchError(f"ModelSpec.output must be 'logits' or 'log_probs', got {self.output!r}.")
        object.__setattr__(self, "layer_shapes", MappingProxyType(dict(self.layer_shapes)))


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
        ['residual_net', 'resnet18']
    """
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
    return builder(**config)


def _entry(name: str) -> _Entry:
    _load_builtin_models()
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=3, cutoff=0.4)
        hint = f"did you mean {', '.join(close)}?" if close else f"known models: {', '.join(sorted(_REGISTRY))}."
        raise UnknownModelError(f"Unknown model {name!r}; {hint} (see `archbench list`)") from None


def _load_builtin_models() -> None:
    import archbench.models  # noqa: F401  (registers the built-in networks on import)
