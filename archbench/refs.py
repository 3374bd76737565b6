"""Model references: a registered name, ``package.module:attr`` or ``path/to/file.py:attr``.

Every command and function that takes a network takes one of these (or an ``nn.Module``). ``attr`` names a
function that returns an ``nn.Module`` or an ``nn.Module`` subclass; options are passed to it as keywords.

Example:
    >>> ref = resolve_ref("torchvision.models:resnet18", num_classes=10)
    >>> ref.label, ref.spec is None, type(ref.module).__name__
    ('torchvision.models:resnet18', True, 'ResNet')
    >>> resolve_ref("lenet5").spec.input_shape
    (1, 28, 28)
    >>> parse_model_args(["num_classes=10", "variant='torchvision'", "name=tiny"])
    {'num_classes': 10, 'variant': 'torchvision', 'name': 'tiny'}
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import importlib.util
import inspect
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

from archbench.errors import ArchbenchError, UnknownModelError
from archbench.registry import ModelSpec, get_model, get_spec

Shape = tuple[int, ...]


class ModelRefError(ArchbenchError):
    """A model reference that cannot be turned into a network (missing module, attribute, wrong type...)."""


@dataclass(frozen=True)
class ResolvedModel:
    """A network built from a reference.

    Attributes:
        label: how to name it in tables (the reference as typed, or the module's class name).
        module: the built ``nn.Module``.
        spec: the registry's :class:`ModelSpec` for a registered name, else ``None``.
        options: the keyword options it was built with.
    """

    label: str
    module: nn.Module
    spec: ModelSpec | None = None
    options: Mapping[str, object] = field(default_factory=dict)

    def input_shape(self, per_sample: Sequence[int] | None = None, batch: int = 1) -> Shape:
        """The shape handed to ``forward``: ``(batch, *per_sample)``; ``per_sample`` defaults to the spec's.

        Raises:
            ModelRefError: if the network is not registered and no per-sample shape is given.
        """
        if per_sample is None:
            if self.spec is None:
                raise missing_input_size(self.label)
            per_sample = self.spec.input_shape
        return (batch, *per_sample)


def missing_input_size(label: str) -> ModelRefError:
    """The error for an unregistered network named without ``--input-size`` (its input is unknown)."""
    return ModelRefError(
        f"{label!r} is not a registered network, so its input size is unknown; "
        "give one sample's shape with --input-size, e.g. --input-size 3 224 224."
    )


def is_reference(text: str) -> bool:
    """Whether ``text`` is a ``module:attr`` or ``file.py:attr`` reference rather than a registered name."""
    return ":" in text


def resolve_ref(ref: str | nn.Module, **options: object) -> ResolvedModel:
    """Build the network a reference names.

    Args:
        ref: a registered name, ``package.module:attr``, ``path/file.py:attr``, or an ``nn.Module`` (returned as
            it is; options are then refused).
        **options: keyword options for the builder (``num_classes=10``...).

    Raises:
        UnknownModelError: an unknown registered name (the message lists the closest ones).
        ModelRefError: a module or file not found, an attribute missing, something that is not a module,
            or a builder that raised.
    """
    if isinstance(ref, nn.Module):
        if options:
            raise ModelRefError("Options are for references that build a network; this one is already built.")
        return ResolvedModel(type(ref).__name__, ref)
    if not isinstance(ref, str) or not ref.strip():
        raise ModelRefError(
            f"A model reference must be a registered name, 'package.module:attr' or 'path/file.py:attr', "
            f"got {ref!r}."
        )
    if not is_reference(ref):
        return ResolvedModel(ref, get_model(ref, **options), get_spec(ref), dict(options))
    target, _, attr = ref.rpartition(":")
    if not target or not attr.isidentifier():
        raise ModelRefError(f"Model reference {ref!r} must look like 'package.module:attr' or 'path/file.py:attr'.")
    owner = _load_file(target) if _is_path(target) else _import(target)
    if not hasattr(owner, attr):
        names = sorted(n for n, v in vars(owner).items() if _builds_module(v) and not n.startswith("_"))
        hint = f"; it has {', '.join(names[:8])}" if names else ""
        raise ModelRefError(f"{target!r} has no attribute {attr!r}{hint}.")
    return ResolvedModel(ref, _build(ref, getattr(owner, attr), options), None, dict(options))


def parse_model_args(items: Sequence[str] | None) -> dict[str, object]:
    """``KEY=VALUE`` strings to keyword options; values are Python literals, else plain strings.

    Raises:
        ModelRefError: an item without ``=``, an invalid key, or a key given twice.
    """
    options: dict[str, object] = {}
    for item in items or ():
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise ModelRefError(f"--model-arg {item!r} must be KEY=VALUE with KEY a Python name, e.g. num_classes=10.")
        if key in options:
            raise ModelRefError(f"--model-arg {key!r} is given twice; give each option once.")
        try:
            options[key] = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            options[key] = text.strip()  # a bare word: a string option such as variant=torchvision
    return options


def _is_path(target: str) -> bool:
    return target.endswith(".py") or "/" in target or "\\" in target


def _import(name: str) -> object:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as err:
        if err.name and (name == err.name or name.startswith(err.name + ".")):
            raise ModelRefError(
                f"No module named {name!r}; check the spelling, or install it / run from its folder."
            ) from None
        raise ModelRefError(f"Importing {name!r} failed: it needs module {err.name!r}, which is not installed.") from None
    except Exception as err:  # noqa: BLE001 - the user's module raised while importing
        raise ModelRefError(f"Importing {name!r} raised {type(err).__name__}: {_one_line(err)}.") from None


def _load_file(target: str) -> object:
    path = Path(target).expanduser()
    if not path.is_file():
        raise ModelRefError(f"No Python file {target!r}; give an existing path/file.py before the ':'.")
    resolved = path.resolve()
    # A stable, unique module name per file, so re-resolving the same file (e.g. in DDP workers) reuses it.
    name = f"archbench_user_{resolved.stem}_{hashlib.sha1(str(resolved).encode()).hexdigest()[:8]}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, resolved)
    if spec is None or spec.loader is None:
        raise ModelRefError(f"{target!r} cannot be loaded as a Python module; give a .py file.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as err:  # noqa: BLE001 - the user's file raised while loading
        del sys.modules[name]
        raise ModelRefError(f"Loading {target!r} raised {type(err).__name__}: {_one_line(err)}.") from None
    return module


def _builds_module(value: object) -> bool:
    return (inspect.isclass(value) and issubclass(value, nn.Module)) or inspect.isfunction(value)


def _build(ref: str, value: object, options: Mapping[str, object]) -> nn.Module:
    if isinstance(value, nn.Module):
        if options:
            raise ModelRefError(f"{ref!r} is a module instance, which takes no --model-arg options.")
        return value
    if not callable(value):
        raise ModelRefError(
            f"{ref!r} is a {type(value).__name__}, not an nn.Module class or a function that returns one."
        )
    try:
        inspect.signature(value).bind(**options)
    except TypeError as err:
        raise ModelRefError(f"{ref!r} does not take these options ({_one_line(err)}).") from None
    except ValueError:
        pass  # no signature to check (a builtin); let the call decide
    try:
        built = value(**options)
    except (ArchbenchError, UnknownModelError):
        raise
    except Exception as err:  # noqa: BLE001 - the user's builder raised
        raise ModelRefError(f"Building {ref!r} raised {type(err).__name__}: {_one_line(err)}.") from None
    if not isinstance(built, nn.Module):
        raise ModelRefError(f"{ref!r} returned a {type(built).__name__}, not an nn.Module.")
    return built


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return (text[:200] + "…") if len(text) > 200 else (text or "no message")
