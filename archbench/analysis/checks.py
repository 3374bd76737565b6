"""Checks that catch the seeds' bugs: inputs that do not fit, and outputs that do not suit the loss.

* :func:`check_input` runs one forward pass and names the first layer whose expected size differs from what
  it receives (seed 000 wrote ``nn.Linear(1655, 120)`` where 16×5×5 = 400 features arrive).
* :func:`check_outputs` tells logits, probabilities and log-probabilities apart and flags a pairing with the
  wrong loss (seed 003 ends its LeNet in softmax and then trains it with ``CrossEntropyLoss``, which applies
  log-softmax again).

Example:
    >>> check_input("lenet5", (1, 1, 28, 28)).ok
    True
    >>> check_outputs("lenet5", "cross_entropy").ok
    True
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.modules.conv import _ConvNd

from archbench.analysis.rules import Mismatch, hand_written_norm_rule, rule_for
from archbench.analysis.summary import Shape, resolve_model
from archbench.analysis.trace import Recorder, model_device, model_dtype
from archbench.errors import ShapeError


def _validate(module: nn.Module, x: torch.Tensor) -> None:
    """Hold a layer's input to its rule in :mod:`archbench.analysis.rules`; raises :class:`Mismatch`."""
    kind, rule = rule_for(type(module))
    rule = rule if kind == "leaf" else hand_written_norm_rule(module)
    if rule is not None:
        rule(module, tuple(x.shape))


@dataclass(frozen=True)
class InputCheck:
    """The verdict of :func:`check_input`.

    Attributes:
        ok: the whole forward pass fits.
        message: one sentence; empty when ``ok``.
        layer: dotted name of the first layer that does not fit (``None`` when ``ok``).
        layer_type: its class name.
        expected: what that layer expects (e.g. 400 input features).
        actual: what it receives.
        output_shape: the network's output shape when ``ok``.
    """

    ok: bool
    message: str = ""
    layer: str | None = None
    layer_type: str | None = None
    expected: object = None
    actual: object = None
    output_shape: Shape | None = None

    def raise_for_error(self) -> None:
        """Raise :class:`ShapeError` with :attr:`message` unless the check passed."""
        if not self.ok:
            raise ShapeError(self.message)


def check_input(model_or_name: nn.Module | str, input_shape: Sequence[int] | None = None) -> InputCheck:
    """Find the first layer whose expected input size differs from what it receives.

    Args:
        model_or_name: a module, or the name of a registered network.
        input_shape: full input shape including the batch; defaults to the registered network's input.

    Returns:
        An :class:`InputCheck`; ``ok`` is False with a one-sentence ``message`` when a layer does not fit.

    Example:
        >>> bad = nn.Sequential(nn.Conv2d(1, 16, 5), nn.Flatten(), nn.Linear(1655, 10))
        >>> check_input(bad, (1, 1, 9, 9)).message
        "Layer '2' (Linear) expects 1655 input features but receives 400 (input shape (1, 400)); set in_features=400 or change the input."
    """
    model, shape = resolve_model(model_or_name, input_shape)
    return check_resolved(model, shape, model_or_name if isinstance(model_or_name, str) else None)


def check_resolved(model: nn.Module, shape: Shape, name: str | None = None) -> InputCheck:
    """:func:`check_input` for a built model and a full shape; ``name`` adds the registered input as a hint.

    When the shape does not fit but the same shape with a leading batch of 1 does, the message says so.

    Example:
        >>> net = nn.Sequential(nn.Flatten(), nn.Linear(12, 2))
        >>> check_resolved(net, (3, 4)).message.endswith("a leading batch of 1 fits: (1, 3, 4).")
        True
    """
    result = checked_forward(model, shape, name)[0]
    if result.ok or name is not None:  # a registered network's message already names its input
        return result
    batched = (1, *shape)
    if checked_forward(model, batched)[0].ok:
        message = f"{result.message.rstrip('.')}; a leading batch of 1 fits: {batched}."
        return dataclasses.replace(result, message=message)
    return result


def checked_forward(model: nn.Module, shape: Shape, name: str | None = None) -> tuple[InputCheck, list[dict]]:
    """One recorded forward pass (eval mode, zeros, no state change) that validates each layer's input.

    Returns:
        The :class:`InputCheck` and the recorded module calls (complete only when the check passed).
    """
    hint = ""
    if name is not None:
        from archbench.registry import get_spec

        spec = get_spec(name)
        hint = f" ({name} takes N×{'×'.join(map(str, spec.input_shape))})"
        if len(shape) != len(spec.input_shape) + 1:
            return InputCheck(
                ok=False,
                message=f"Input shape {shape} has {len(shape)} dimensions but {name} takes "
                f"{len(spec.input_shape) + 1}: (N, {', '.join(map(str, spec.input_shape))}); add the batch dimension.",
                expected=len(spec.input_shape) + 1,
                actual=len(shape),
            ), []
    was_training = model.training
    model.eval()
    recorder = Recorder(model, validate=_validate)
    try:
        with recorder, torch.no_grad():
            output = model(torch.zeros(shape, device=model_device(model), dtype=model_dtype(model)))
    except Mismatch as err:
        row = recorder.rows[recorder.open_calls[-1]]
        return InputCheck(
            ok=False,
            message=f"Layer {row['name']!r} ({type(row['module']).__name__}) {err.phrase} "
            f"(input shape {row['input_shape']}){hint}; {err.fix}.",
            layer=row["name"],
            layer_type=type(row["module"]).__name__,
            expected=err.expected,
            actual=err.actual,
        ), recorder.rows
    except (RuntimeError, ValueError) as err:
        where = recorder.rows[recorder.open_calls[-1]] if recorder.open_calls else None
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        name = where["name"] if where else "(model)"
        kind = type(where["module"]).__name__ if where else type(model).__name__
        return InputCheck(
            ok=False,
            message=f"Layer {name!r} ({kind}) fails on input shape "
            f"{where['input_shape'] if where else shape}{hint}: {first_line}.",
            layer=None if where is None else name,
            layer_type=kind,
        ), recorder.rows
    finally:
        model.train(was_training)
    out = output if isinstance(output, torch.Tensor) else None
    if out is not None and out.dim() >= 1 and out.shape[0] != shape[0] and not _unbatched(model, recorder.rows, shape):
        return InputCheck(
            ok=False,
            message=f"The network returns a batch of {out.shape[0]} for an input batch of {shape[0]}: a reshape "
            "such as view(-1, features) mixes samples; flatten with x.flatten(1) or nn.Flatten() instead.",
            expected=shape[0],
            actual=out.shape[0],
        ), recorder.rows
    return InputCheck(ok=True, output_shape=tuple(out.shape) if out is not None else None), recorder.rows


_LOSSES = {"cross_entropy": "logits", "nll": "log_probs"}


def output_kind(outputs: torch.Tensor, atol: float = 1e-4) -> str:
    """Classify a batch of class scores (N, K).

    Returns:
        ``"probabilities"`` (non-negative rows summing to 1: a softmax ends the network),
        ``"log_probs"`` (rows whose exponentials sum to 1: log-softmax) or ``"logits"`` (anything else).

    Example:
        >>> output_kind(torch.softmax(torch.randn(4, 10), dim=1))
        'probabilities'
    """
    outputs = outputs.detach().double()
    ones = torch.ones(outputs.shape[0], dtype=outputs.dtype, device=outputs.device)
    if bool((outputs >= 0).all()) and torch.allclose(outputs.sum(dim=1), ones, atol=atol):
        return "probabilities"
    if bool((outputs <= 0).all()) and torch.allclose(outputs.exp().sum(dim=1), ones, atol=atol):
        return "log_probs"
    return "logits"


@dataclass(frozen=True)
class OutputCheck:
    """The verdict of :func:`check_outputs`: ``kind`` is what the network emits, ``message`` why it is wrong."""

    ok: bool
    kind: str
    loss: str
    message: str = ""


def check_outputs(
    model_or_name: nn.Module | str,
    loss: str | nn.Module = "cross_entropy",
    input_shape: Sequence[int] | None = None,
    *,
    seed: int = 0,
) -> OutputCheck:
    """Check that a network's outputs are what its loss function expects.

    ``CrossEntropyLoss`` wants logits (it applies log-softmax itself); ``NLLLoss`` wants log-probabilities.
    Probabilities suit neither: a network ending in softmax and trained with ``CrossEntropyLoss`` squashes its
    gradients (seed 003's bug).

    Args:
        model_or_name: a module or a registered name.
        loss: ``"cross_entropy"``, ``"nll"``, or an ``nn.CrossEntropyLoss`` / ``nn.NLLLoss`` instance.
        input_shape: full input shape; defaults to the registered input with batch 4.
        seed: seed of the random input.

    Example:
        >>> net = nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.Softmax(dim=1))
        >>> check_outputs(net, "cross_entropy", (2, 4)).kind
        'probabilities'
    """
    if isinstance(loss, nn.CrossEntropyLoss):
        loss = "cross_entropy"
    elif isinstance(loss, nn.NLLLoss):
        loss = "nll"
    if loss not in _LOSSES:
        raise ValueError(f"loss must be 'cross_entropy', 'nll' or one of those loss modules, got {loss!r}.")
    if isinstance(model_or_name, str) and input_shape is None:
        from archbench.registry import get_spec

        input_shape = (4, *get_spec(model_or_name).input_shape)
    model, shape = resolve_model(model_or_name, input_shape)
    generator = torch.Generator().manual_seed(seed)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            outputs = model(torch.randn(shape, generator=generator).to(model_device(model), model_dtype(model)))
    finally:
        model.train(was_training)
    kind = output_kind(outputs)
    if kind == _LOSSES[loss]:
        return OutputCheck(ok=True, kind=kind, loss=loss)
    if kind == "probabilities":
        fix = "remove the final softmax and return logits for CrossEntropyLoss (or end in log_softmax for NLLLoss)"
        message = f"The network outputs probabilities (rows sum to 1), which {loss} does not expect; {fix}."
    elif loss == "nll":
        message = "The network outputs logits but NLLLoss expects log-probabilities; use CrossEntropyLoss or end in log_softmax."
    else:
        return OutputCheck(ok=True, kind=kind, loss=loss)  # log-softmax then cross-entropy: idempotent, harmless
    return OutputCheck(ok=False, kind=kind, loss=loss, message=message)


def _unbatched(model: nn.Module, rows: list[dict], shape: tuple[int, ...]) -> bool:
    """True when the first layer is a convolution handed an unbatched ``(C, *spatial)`` input, as torch allows."""
    first, first_shape = (rows[0]["module"], rows[0]["input_shape"]) if rows else (model, shape)
    return isinstance(first, _ConvNd) and len(first_shape) == len(first.kernel_size) + 1
