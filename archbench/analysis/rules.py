"""The counting rules: one table of small pure functions, read by ``check_input``, ``trace_shapes`` and ``count_macs``.

Two kinds, modelled on torch's ``register_flop_formula`` and fvcore's ``jit_handles``:

* **Leaf rules** (:data:`LEAF_RULES`), for torch's own layers: ``(module, input shape) -> (output shape, MACs,
  other ops, other kind)``, per the conventions of :mod:`archbench.analysis.counts`. A shape the layer cannot
  take raises :class:`Mismatch`, which says what the layer expects, what it receives and what to do;
  :func:`archbench.check_input` puts the layer's name in front, the counter likewise.
* **Compositions** (:data:`COMPOSITIONS`): how a block's ``forward`` wires its children, named by the block's
  own ``composition`` class attribute (archbench's blocks and networks declare one beside their ``forward``).
  The rules know children's roles (``conv1``, ``downsample``), never a class.

:func:`rule_for` picks the rule of a module class. A subclass with its own ``forward`` gets none (it may pad, or
call its layers twice): it is counted by its operators on the meta device instead.

Example:
    >>> from torch import nn
    >>> kind, rule = rule_for(nn.Conv2d)
    >>> kind, rule(nn.Conv2d(3, 8, 3), (2, 3, 10, 10))
    ('leaf', ((2, 8, 8, 8), 27648, 0, ''))
    >>> rule(nn.Conv2d(3, 8, 3), (2, 4, 10, 10))
    Traceback (most recent call last):
    ...
    archbench.analysis.rules.Mismatch: expects 3 input channels but receives 4; set in_channels=4 or change the input.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Protocol

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.conv import _ConvNd
from torch.nn.modules.dropout import _DropoutNd
from torch.nn.modules.pooling import _AdaptiveAvgPoolNd, _AdaptiveMaxPoolNd, _AvgPoolNd, _MaxPoolNd

from archbench.errors import ShapeError
from archbench.sizes import conv_output_shape, pool_output_shape

Shape = tuple[int, ...]

#: A leaf rule maps (module, input shape) to (output shape, MACs, other ops, other kind).
LeafRule = Callable[[nn.Module, Shape], tuple[Shape, int, int, str]]


class Mismatch(ShapeError):
    """A layer's expectation its input does not meet: "expects ... but receives ...; what to do."

    Attributes:
        expected: what the layer expects (e.g. 400 input features).
        actual: what it receives.
        fix: what to do, without the full stop.
        phrase: "expects ... but receives ...".
    """

    def __init__(self, expected: object, actual: object, fix: str, phrase: str) -> None:
        super().__init__(f"{phrase}; {fix}.")
        self.expected, self.actual, self.fix, self.phrase = expected, actual, fix, phrase


def _fmt(shape: Sequence[int]) -> str:
    return "×".join(map(str, shape))


class Composer(Protocol):
    """What a composition needs from the counter that walks the model (:class:`archbench.analysis.counts._Tally`)."""

    def visit(self, module: nn.Module, name: str, shape: Shape) -> Shape: ...
    def chain(self, module: nn.Module, name: str, shape: Shape, children: Sequence[str]) -> Shape: ...
    def add(self, name: str, a: Shape, b: Shape) -> Shape: ...
    def concat(self, name: str, shapes: Sequence[Shape], dim: int = 1) -> Shape: ...


#: A composition: (block, its dotted name, input shape, the walking counter) -> output shape.
BlockRule = Callable[[nn.Module, str, Shape, Composer], Shape]


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _conv_rule(m: _ConvNd, shape: Shape) -> tuple[Shape, int, int, str]:
    n = len(m.kernel_size)
    if len(shape) == n + 1:  # unbatched (C, H, W), as PyTorch allows: one sample
        out, macs, _, _ = _conv_rule(m, (1, *shape))
        return out[1:], macs, 0, ""
    if len(shape) != n + 2:
        dims = f"(N, C, {', '.join('DHW'[3 - n :])})"
        raise Mismatch(n + 2, len(shape), "add the batch dimension",
                       f"expects a {n + 2}-dimensional {dims} input but receives shape {shape}")  # fmt: skip
    if shape[1] != m.in_channels:
        raise Mismatch(m.in_channels, shape[1], f"set in_channels={shape[1]} or change the input",
                       f"expects {m.in_channels} input channels but receives {shape[1]}")  # fmt: skip
    batch, spatial, kernel = shape[0], shape[2:], math.prod(m.kernel_size)
    if m.transposed:
        out = tuple(
            (s - 1) * st - 2 * p + d * (k - 1) + op + 1
            for s, st, p, d, k, op in zip(spatial, m.stride, m.padding, m.dilation, m.kernel_size, m.output_padding)
        )
        macs = batch * m.in_channels * math.prod(spatial) * (m.out_channels // m.groups) * kernel
    else:
        if m.padding == "same":
            out = spatial
        else:
            padding = (0,) * n if m.padding == "valid" else m.padding
            try:
                out = conv_output_shape(spatial, m.kernel_size, m.stride, padding, m.dilation)
            except ShapeError:
                need = tuple(d * (k - 1) + 1 - 2 * p for k, p, d in zip(m.kernel_size, padding, m.dilation))
                raise Mismatch(need, spatial, "use a larger input or a smaller kernel",
                               f"expects spatial size at least {_fmt(need)} but receives {_fmt(spatial)}") from None  # fmt: skip
        macs = batch * m.out_channels * math.prod(out) * (m.in_channels // m.groups) * kernel
    return (batch, m.out_channels, *out), macs, 0, ""


def _linear_rule(m: nn.Linear, shape: Shape) -> tuple[Shape, int, int, str]:
    if not shape or shape[-1] != m.in_features:
        got = shape[-1] if shape else shape
        raise Mismatch(m.in_features, got, f"set in_features={got} or change the input",
                       f"expects {m.in_features} input features but receives {got}")  # fmt: skip
    rows = math.prod(shape[:-1])
    return (*shape[:-1], m.out_features), rows * m.in_features * m.out_features, 0, ""


def _norm_rule(m: nn.Module, shape: Shape) -> tuple[Shape, int, int, str]:
    if len(shape) < 2 or shape[1] != m.num_features:
        got = shape[1] if len(shape) >= 2 else shape
        raise Mismatch(m.num_features, got, f"set num_features={got} or change the input",
                       f"expects {m.num_features} channels in dimension 1 but receives shape {shape}")  # fmt: skip
    return shape, 0, 2 * math.prod(shape), "batchnorm"


def _pool_dims(m: nn.Module) -> int:
    return int(type(m).__name__[-2])  # MaxPool2d -> 2, AdaptiveAvgPool3d -> 3


def _split(m: nn.Module, shape: Shape) -> tuple[Shape, Shape]:
    n = _pool_dims(m)
    if len(shape) not in (n + 1, n + 2):
        raise Mismatch(n + 2, len(shape), "pass a batched tensor",
                       f"expects a {n + 1}- or {n + 2}-dimensional input but receives shape {shape}")  # fmt: skip
    return shape[:-n], shape[-n:]


def _pool_rule(m: _MaxPoolNd | _AvgPoolNd, shape: Shape) -> tuple[Shape, int, int, str]:
    lead, spatial = _split(m, shape)
    n = len(spatial)
    kernel = m.kernel_size if isinstance(m.kernel_size, tuple) else (m.kernel_size,) * n
    stride = m.stride if m.stride not in (None, ()) else kernel
    try:
        out = pool_output_shape(spatial, kernel, stride, m.padding, getattr(m, "dilation", 1), m.ceil_mode)
    except ShapeError as err:
        detail = str(err).rstrip(".")
        raise Mismatch("a window that fits", spatial, "use a larger input",
                       f"expects a window that fits but receives spatial size {_fmt(spatial)} ({detail})") from None  # fmt: skip
    elements = math.prod(lead) * math.prod(out)
    return (*lead, *out), 0, elements * math.prod(kernel), "pooling"


def _adaptive_rule(m: _AdaptiveAvgPoolNd | _AdaptiveMaxPoolNd, shape: Shape) -> tuple[Shape, int, int, str]:
    lead, spatial = _split(m, shape)
    sizes = m.output_size if isinstance(m.output_size, tuple) else (m.output_size,) * len(spatial)
    out = tuple(s if o is None else o for s, o in zip(spatial, sizes))
    # window i spans [floor(i*In/Out), ceil((i+1)*In/Out)); the windows' lengths add up exactly per dimension
    reads = math.prod(sum(-(-(i + 1) * s // o) - i * s // o for i in range(o)) for s, o in zip(spatial, out))
    return (*lead, *out), 0, math.prod(lead) * reads, "pooling"


def _activation_rule(m: nn.Module, shape: Shape) -> tuple[Shape, int, int, str]:
    return shape, 0, math.prod(shape), "activation"


def _free_rule(m: nn.Module, shape: Shape) -> tuple[Shape, int, int, str]:
    return shape, 0, 0, ""


def _flatten_rule(m: nn.Flatten, shape: Shape) -> tuple[Shape, int, int, str]:
    dims = max(len(shape), 1)
    if not (-dims <= m.start_dim < dims and -dims <= m.end_dim < dims):
        raise Mismatch(f"dimensions {m.start_dim}…{m.end_dim}", len(shape), "add the batch dimension or change start_dim",  # noqa: E501
                       f"flattens dimensions {m.start_dim} to {m.end_dim} but receives shape {shape}")  # fmt: skip
    start, end = m.start_dim % dims, m.end_dim % dims
    if not shape:
        return (1,), 0, 0, ""
    return (*shape[:start], math.prod(shape[start : end + 1]), *shape[end + 1 :]), 0, 0, ""


_ACTIVATIONS = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish,
    nn.Sigmoid, nn.Tanh, nn.Hardtanh, nn.Hardswish, nn.Hardsigmoid, nn.Softplus, nn.Softsign,
    nn.Softmax, nn.LogSoftmax, nn.Softmin,
)  # fmt: skip

#: (module types, rule): the first match decides; subclasses of these torch layers count the same.
LEAF_RULES: list[tuple[type | tuple[type, ...], LeafRule]] = [
    (_ConvNd, _conv_rule),
    (nn.Linear, _linear_rule),
    (_BatchNorm, _norm_rule),
    ((_MaxPoolNd, _AvgPoolNd), _pool_rule),
    ((_AdaptiveAvgPoolNd, _AdaptiveMaxPoolNd), _adaptive_rule),
    (_ACTIVATIONS, _activation_rule),
    (nn.Flatten, _flatten_rule),
    ((nn.Identity, _DropoutNd), _free_rule),
]


def _attention_rule(m: nn.MultiheadAttention, args: tuple, kwargs: dict) -> int:
    """MACs of ``nn.MultiheadAttention(query, key, value, ...)``, fast path or not (the per-head split
    changes nothing: ``heads × L × S × E/heads``)::

        in-projections  N·L·E·E + N·S·kdim·E + N·S·vdim·E
        q·kᵀ and a·v    2 · N·L·S'·E      (S' = S, +1 with bias_k, +1 with add_zero_attn)
        out-projection  N·L·E·E
    """
    q = args[0] if args else kwargs["query"]
    k = args[1] if len(args) > 1 else kwargs["key"]  # the value has the key's length and vdim features
    batched = q.dim() == 3
    if batched and m.batch_first:
        n, length, source = q.shape[0], q.shape[1], k.shape[1]
    else:
        n, length, source = (q.shape[1] if batched else 1), q.shape[0], k.shape[0]
    e = m.embed_dim
    attended = source + (m.bias_k is not None) + bool(m.add_zero_attn)
    projections = n * length * e * e + n * source * m.kdim * e + n * source * m.vdim * e + n * length * e * e
    return projections + 2 * n * length * attended * e


#: Layers whose work depends on all their arguments (attention: query, key, value): ``(module, args, kwargs)
#: -> MACs``. The layer runs (on the meta device, its operators muted) so its outputs keep their structure.
CALL_RULES: list[tuple[type, Callable[[nn.Module, tuple, dict], int]]] = [
    (nn.MultiheadAttention, _attention_rule),
]


def call_rule_for(cls: type) -> Callable[[nn.Module, tuple, dict], int] | None:
    """The :data:`CALL_RULES` entry for torch's own class (a subclass with its own ``forward`` gets none)."""
    for kind, rule in CALL_RULES:
        if issubclass(cls, kind) and cls.forward is kind.forward:
            return rule
    return None


def looks_like_norm(module: nn.Module) -> bool:
    """A hand-written BatchNorm (archbench's or a user's): running statistics and no children."""
    return (
        hasattr(module, "num_features")
        and hasattr(module, "running_mean")
        and next(module.children(), None) is None
    )


def hand_written_norm_rule(module: nn.Module) -> LeafRule | None:
    """The BatchNorm rule for a module with no rule of its own that :func:`looks_like_norm`, else None.

    Such a module runs its own ``forward`` (a reduction, a ``bmm``), but its work is normalisation, not MACs.
    """
    return _norm_rule if rule_for(type(module))[0] is None and looks_like_norm(module) else None


def is_norm(module: nn.Module) -> bool:
    """A BatchNorm, torch's or hand-written."""
    return rule_for(type(module))[1] is _norm_rule or hand_written_norm_rule(module) is not None


def _in_order(m: nn.Module, name: str, shape: Shape, t: Composer) -> Shape:
    """``"in_order"``: a forward that calls each child once, in registration order (as ``Sequential`` does)."""
    return t.chain(m, name, shape, [child for child, _ in m.named_children()])


def _simple_residual(m: nn.Module, name: str, shape: Shape, t: Composer) -> Shape:
    """``"simple_residual"``: ``relu(x + conv2(relu(conv1(x))))``."""
    y = t.chain(m, name, shape, ("conv1", "relu", "conv2"))
    return t.visit(m.relu, _join(name, "relu"), t.add(name, y, shape))


def _residual(m: nn.Module, name: str, shape: Shape, t: Composer) -> Shape:
    """``"residual"``: ``relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut)``, shortcut ``downsample`` or ``x``."""
    y = t.chain(m, name, shape, ("conv1", "bn1", "relu", "conv2", "bn2"))
    shortcut = shape if m.downsample is None else t.visit(m.downsample, _join(name, "downsample"), shape)
    return t.visit(m.relu, _join(name, "relu"), t.add(name, y, shortcut))


def _bottleneck(m: nn.Module, name: str, shape: Shape, t: Composer) -> Shape:
    """``"bottleneck"``: 1×1, 3×3, 1×1 convs with BN (``relu`` after the first two) + shortcut, then ``relu``."""
    y = t.chain(m, name, shape, ("conv1", "bn1", "relu", "conv2", "bn2", "relu", "conv3", "bn3"))
    shortcut = shape if m.downsample is None else t.visit(m.downsample, _join(name, "downsample"), shape)
    return t.visit(m.relu, _join(name, "relu"), t.add(name, y, shortcut))


def _concat_branches(m: nn.Module, name: str, shape: Shape, t: Composer) -> Shape:
    """``"concat_branches"``: every child on the same input, concatenated on channels in registration order."""
    return t.concat(name, [t.visit(branch, _join(name, b), shape) for b, branch in m.named_children()])


def _dense(m: nn.Module, name: str, shape: Shape, t: Composer) -> Shape:
    """``"dense"``: each child's output is concatenated to its input on channels."""
    for child, layer in m.named_children():
        shape = t.concat(_join(name, child), [shape, t.visit(layer, _join(name, child), shape)])
    return shape


#: How a block's ``forward`` composes its children, by the name a class declares in its ``composition``
#: attribute (archbench's blocks and networks do, beside their ``forward``). The rules know children's roles
#: (``conv1``, ``downsample``) but no class; anything without a declaration runs on the meta device instead.
#: The cross-check tests hold each declaring class to fvcore and torch.
COMPOSITIONS: dict[str, BlockRule] = {
    "in_order": _in_order,
    "simple_residual": _simple_residual,
    "residual": _residual,
    "bottleneck": _bottleneck,
    "concat_branches": _concat_branches,
    "dense": _dense,
}


@functools.cache
def rule_for(cls: type) -> tuple[str | None, Callable | None]:
    """``("block", rule)``, ``("leaf", rule)`` or ``(None, None)`` for a module class."""
    declaring = next((c for c in cls.__mro__ if "composition" in vars(c)), None)
    if declaring is not None and cls.forward is declaring.forward:  # a subclass with its own forward: no rule
        return "block", COMPOSITIONS[declaring.composition]
    if cls.forward is nn.Sequential.forward:  # Sequential, or a subclass that keeps its forward
        return "block", _in_order
    for kinds, rule in LEAF_RULES:
        if issubclass(cls, kinds):
            # a subclass with its own forward (padding inside, say) is counted by its operators instead
            return ("leaf", rule) if cls.forward.__module__.startswith("torch.nn.") else (None, None)
    return None, None
