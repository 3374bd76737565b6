"""Layer-by-layer trace of a network: every module's output shape and parameter count.

This is the seeds' ``for layer in net: X = layer(X); print(...)`` loop done properly: it descends into
nested blocks, records a module once per call, and leaves the model's state untouched.

Example:
    >>> rows = trace_shapes("lenet5", (1, 1, 28, 28))
    >>> [r.output_shape for r in rows if r.name in ("pool1", "pool2", "flatten")]
    [(1, 6, 14, 14), (1, 16, 5, 5), (1, 400)]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from archbench.analysis.trace import Recorder, model_device
from archbench.errors import ShapeError

Shape = tuple[int, ...]


@dataclass(frozen=True)
class LayerInfo:
    """One module call in a forward pass.

    Attributes:
        name: dotted path in the model (``"layer2.0.conv1"``).
        type: the module's class name.
        depth: nesting level, 1 for the model's direct children.
        input_shape: shape of the first tensor argument.
        output_shape: shape of the output (the first tensor, for modules returning several).
        params: parameters of the module including its children.
        own_params: parameters held directly by the module (these add up to the model's total).
        is_leaf: the module has no children.
    """

    name: str
    type: str
    depth: int
    input_shape: Shape
    output_shape: Shape
    params: int
    own_params: int
    is_leaf: bool


def resolve_model(model_or_name: nn.Module | str, input_shape: Sequence[int] | None) -> tuple[nn.Module, Shape]:
    """Build a network from a reference if needed and fill in a registered network's input shape (batch 1).

    ``model_or_name`` is an ``nn.Module``, a registered name, ``package.module:attr`` or ``path/file.py:attr``
    (see :mod:`archbench.refs`).

    Raises:
        ShapeError: if no input shape is given for an unregistered network, or a size is not a positive integer.
    """
    from archbench.refs import resolve_ref

    ref = resolve_ref(model_or_name)
    model = ref.module
    if input_shape is None and ref.spec is not None:
        input_shape = (1, *ref.spec.input_shape)
    if input_shape is None:
        raise ShapeError("An input shape is needed for a network that is not registered, e.g. (1, 1, 28, 28).")
    if isinstance(input_shape, (str, bytes)) or not isinstance(input_shape, Sequence):
        raise ShapeError(f"Input shape {input_shape!r} must be a sequence of positive integers, e.g. (1, 1, 28, 28).")
    shape = tuple(input_shape)
    if not shape or any(not isinstance(s, int) or isinstance(s, bool) or s < 1 for s in shape):
        raise ShapeError(f"Input shape {shape} must be positive integers, e.g. (1, 1, 28, 28).")
    return model, shape


def trace_shapes(model_or_name: nn.Module | str, input_shape: Sequence[int] | None = None) -> list[LayerInfo]:
    """Every module call of one forward pass, in call order, with shapes and parameter counts.

    Args:
        model_or_name: a module, or the name of a registered network.
        input_shape: the full input shape including the batch, e.g. ``(1, 1, 28, 28)``; defaults to the
            registered network's input with batch 1.

    Returns:
        One :class:`LayerInfo` per module call (a module called twice appears twice).

    Raises:
        ShapeError: if the input does not fit the network (the message names the first layer that fails;
            see :func:`archbench.check_input`).

    Example:
        >>> trace_shapes("resnet18", (1, 1, 224, 224))[-1].output_shape
        (1, 10)
    """
    from archbench.analysis.checks import checked_forward

    model, shape = resolve_model(model_or_name, input_shape)
    check, rows = checked_forward(model, shape, model_or_name if isinstance(model_or_name, str) else None)
    check.raise_for_error()
    return [
        LayerInfo(
            name=row["name"],
            type=type(row["module"]).__name__,
            depth=row["name"].count(".") + 1,
            input_shape=row["input_shape"],
            output_shape=row["output_shape"],
            params=sum(p.numel() for p in row["module"].parameters()),
            own_params=sum(p.numel() for p in row["module"].parameters(recurse=False)),
            is_leaf=next(row["module"].children(), None) is None,
        )
        for row in rows
    ]
