"""Parameters and multiply-accumulates (MACs) per layer, from three independent counters.

Conventions (DESIGN.md):

* **MACs** are the multiply-accumulates of convolutions (any stride, padding, dilation, groups; transposed
  too) and linear layers (matmul, ``addmm``, ``bmm``)::

      conv:   N × C_out × prod(out spatial) × (C_in / groups) × prod(kernel)
      conv^T: N × C_in × prod(in spatial) × (C_out / groups) × prod(kernel)
      linear: (rows = prod(input shape[:-1])) × in_features × out_features

  Bias additions are not MACs. ``FLOPs = 2 × MACs``, and the names are never mixed: fvcore counts one MAC
  as one "flop", ``torch.utils.flop_counter`` counts two, and both are converted to MACs here.
* **Other ops** are tallied apart from :attr:`MacCount.total`, labelled by kind, one operation per element:
  ``batchnorm`` 2 per element (inference form: one multiply, one add), ``activation`` 1 per element
  (ReLU, sigmoid, softmax alike), ``pooling`` one per element of each window (max or average, adaptive
  windows summed exactly), ``add`` 1 per output element (residual shortcuts), ``concat`` 1 copy per
  output element. Flatten, dropout (in eval mode) and identity cost nothing.

Methods:

* ``"analytic"``: closed forms where they exist; shapes are propagated by arithmetic (the rules of
  :mod:`archbench.sizes`), by the one rule table of :mod:`archbench.analysis.rules`: standard torch layers
  (not subclasses with their own ``forward``) have leaf rules, ``nn.MultiheadAttention`` a call rule;
  ``Sequential`` and the blocks and networks that declare a ``composition`` (archbench's own do) compose their
  children's rules. A module with no rule is run once on the ``meta`` device (no memory, no arithmetic) under
  :class:`archbench.analysis.ops.OpCounter`: ruled children are counted by their rules without running,
  repeated identical blocks run once and are replayed (:mod:`archbench.analysis.replay`), everything else is
  counted by torch's per-operator formulas (functional convs and matmuls, LSTM/GRU);
  :attr:`MacCount.meta_fallback` names those modules, and any operator with no formula is listed in
  :attr:`MacCount.uncounted` (then :attr:`MacCount.complete` is False).
* ``"fvcore"``: ``fvcore.nn.FlopCountAnalysis`` (a JIT trace), restricted to its conv/linear/matmul ops;
  its own conv formula is registered for ``aten::_convolution_mode`` (``padding="same"``), which it skips.
  Its unsupported operators that may do MACs (``aten::scaled_dot_product_attention``) go to ``uncounted``.
* ``"torch"``: ``torch.utils.flop_counter.FlopCounterMode`` over one forward pass (grad enabled, so fused
  no-grad fast paths are not taken), divided by 2; CPU fused attention counted with torch's SDPA formula; a
  hand-written BatchNorm's internal ``bmm`` is not counted; operators with no formula go to ``uncounted``.

Example:
    >>> count_macs("lenet5").total
    416520
    >>> count_macs("lenet5", method="fvcore").total == count_macs("lenet5", method="torch").total
    True
    >>> count_params("lenet5")
    61706
"""

from __future__ import annotations

import dataclasses
import functools
import math
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import chain

import torch
from torch import nn

from archbench.analysis.rules import LeafRule, call_rule_for, hand_written_norm_rule, is_norm, rule_for
from archbench.analysis.summary import Shape, resolve_model
from archbench.analysis.trace import eval_mode, first_tensor, model_device, model_dtype
from archbench.errors import ArchbenchError, ShapeError

METHODS = ("analytic", "fvcore", "torch")

#: fvcore operator names that are multiply-accumulates (its other names, e.g. batch_norm, are not).
FVCORE_MAC_OPS = frozenset({"conv", "linear", "addmm", "matmul", "mm", "bmm", "einsum"})


@dataclass(frozen=True)
class LayerCount:
    """One layer call (or one functional op of a block) and what it costs.

    Attributes:
        name: dotted module path; a block's own add or concat carries the block's name.
        type: the module's class name, or ``"add"`` / ``"concat"`` for a block's functional op.
        output_shape: shape of the output, batch included.
        params: parameters held by this module itself (0 for functional ops).
        macs: conv/linear multiply-accumulates.
        other_ops: work outside :attr:`MacCount.total`, per the module docstring's per-element convention
            (analytic), or the counter's own figure for its non-MAC ops (fvcore).
        other_kind: label of ``other_ops`` (``"batchnorm"``, ``"activation"``, ``"pooling"``, ``"add"``,
            ``"concat"``, or an fvcore operator name); ``""`` when there is none.
        counted_by: ``"rule"`` (closed form), ``"meta"`` (closed form at a shape learnt from a meta-device
            forward), ``"ops"`` (operator formulas on that forward), or the counter (``"fvcore"``, ``"torch"``).
    """

    name: str
    type: str
    output_shape: Shape
    params: int
    macs: int
    other_ops: int = 0
    other_kind: str = ""
    counted_by: str = "rule"


@dataclass(frozen=True)
class MacCount:
    """The result of :func:`count_macs`.

    Attributes:
        method: ``"analytic"``, ``"fvcore"`` or ``"torch"``.
        input_shape: the input, batch included.
        output_shape: the network's output shape.
        total: conv + linear MACs of one forward pass.
        layers: one row per leaf-module call and per block-level add/concat, in call order.
        params: parameters of the whole model.
        other_ops: ``{kind: ops}`` tallied apart from ``total`` (see the module docstring).
        meta_fallback: modules that had no rule and were run on the meta device under the operator-level
            counter (analytic only).
        backward: conv + linear MACs of the backward pass measured by ``FlopCounterMode``
            (only with ``backward=True``; the input needs no gradient, so the first layer's input
            gradient is skipped, as in training).
        complete: True when every operator or module seen was counted or is known to do no MACs.
        uncounted: ``{operator or module: times seen}`` for what had no formula; empty when complete.
    """

    method: str
    input_shape: Shape
    output_shape: Shape
    total: int
    layers: tuple[LayerCount, ...]
    params: int
    other_ops: dict[str, int] = field(default_factory=dict)
    meta_fallback: tuple[str, ...] = ()
    backward: int | None = None
    complete: bool = True
    uncounted: dict[str, int] = field(default_factory=dict)

    @property
    def flops(self) -> int:
        """Forward FLOPs, 2 × :attr:`total` (one multiply and one add per MAC)."""
        return 2 * self.total

    @property
    def backward_convention(self) -> int:
        """The rule of thumb for the backward pass: 2 × forward MACs (input gradient + weight gradient)."""
        return 2 * self.total


def count_params(model_or_name: nn.Module | str) -> int:
    """Number of parameters (shared parameters once; buffers such as running statistics excluded).

    Args:
        model_or_name: a module, or the name of a registered network.

    Raises:
        ArchbenchError: if the model still has uninitialised lazy parameters.

    Example:
        >>> count_params(nn.Linear(400, 120))
        48120
    """
    if isinstance(model_or_name, str):
        from archbench.registry import get_model

        model_or_name = get_model(model_or_name)
    if not isinstance(model_or_name, nn.Module):
        raise ArchbenchError(
            f"count_params takes an nn.Module or a registered name, not {type(model_or_name).__name__}; pass the model."
        )
    params = list(model_or_name.parameters())
    if any(isinstance(p, nn.parameter.UninitializedParameter) for p in params):
        raise ArchbenchError("The model has uninitialised lazy parameters; run one forward pass before counting.")
    return sum(p.numel() for p in params)


def count_macs(
    model_or_name: nn.Module | str,
    input_shape: Sequence[int] | None = None,
    method: str = "analytic",
    *,
    backward: bool = False,
) -> MacCount:
    """Conv + linear multiply-accumulates per layer and in total.

    Args:
        model_or_name: a module, or the name of a registered network.
        input_shape: the full input shape including the batch; defaults to the registered input, batch 1.
        method: ``"analytic"`` (closed forms, nothing runs), ``"fvcore"`` or ``"torch"`` (see the module
            docstring).
        backward: also measure the backward pass's MACs with ``FlopCounterMode`` (runs forward and
            backward once; the model's gradients and statistics are left untouched).

    Returns:
        A :class:`MacCount`; ``.total`` in MACs, ``.flops`` = 2 × MACs.

    Raises:
        ArchbenchError: for an unknown method.
        ShapeError: if the input does not fit the network (the message names the layer).

    Example:
        >>> result = count_macs(nn.Conv2d(192, 32, 5, padding=2), (1, 192, 28, 28))
        >>> result.total, result.flops
        (120422400, 240844800)
    """
    if method not in METHODS:
        raise ArchbenchError(f"Unknown counting method {method!r}; use one of {', '.join(METHODS)}.")
    if not isinstance(model_or_name, (nn.Module, str)):
        raise ArchbenchError(
            f"count_macs takes an nn.Module or a model reference, not {type(model_or_name).__name__}; pass the model."
        )
    model, shape = resolve_model(model_or_name, input_shape)
    name = model_or_name if isinstance(model_or_name, str) else None
    if method == "analytic":
        result = _hinted(lambda: _count_analytic(model, shape), name)
    elif method == "fvcore":
        result = _guarded(lambda: _count_fvcore(model, shape), model, shape, name)
    else:  # one FlopCounterMode pass gives the forward and, if asked, the backward count
        return _guarded(lambda: _count_torch(model, shape, backward=backward), model, shape, name)
    if backward:
        measured = _guarded(lambda: _count_torch(model, shape, backward=True), model, shape, name)
        result = dataclasses.replace(result, backward=measured.backward)
    return result


# ----------------------------------------------------------------------------------------------------------
# analytic: the closed-form rules of archbench.analysis.rules, walked through the model
# ----------------------------------------------------------------------------------------------------------


class _Tally:
    """Propagates shapes through a model by its rules and collects one :class:`LayerCount` per call."""

    def __init__(self) -> None:
        self.rows: list[LayerCount] = []
        self.fallback: list[str] = []
        self.uncounted: Counter[str] = Counter()

    def visit(self, module: nn.Module, name: str, shape: Shape) -> Shape:
        """Output shape of ``module`` on ``shape``; records its rows."""
        kind, rule = rule_for(type(module))
        norm = hand_written_norm_rule(module)
        if kind == "leaf" or norm is not None:
            return self.leaf(module, name, shape, rule or norm, "rule")
        if kind == "block":
            return rule(module, name, shape, self)
        return self.meta_forward(module, name, shape)

    def chain(self, module: nn.Module, name: str, shape: Shape, children: Sequence[str]) -> Shape:
        """Apply the named children one after another."""
        for child in children:
            shape = self.visit(getattr(module, child), _join(name, child), shape)
        return shape

    def leaf(self, module: nn.Module, name: str, shape: Shape, rule: LeafRule, how: str) -> Shape:
        try:
            out, macs, other, kind = rule(module, shape)
        except ShapeError as err:
            raise ShapeError(f"Layer {name or '(model)'!r} ({type(module).__name__}) {err}") from None
        params = sum(p.numel() for p in module.parameters(recurse=False))
        self.rows.append(LayerCount(name, type(module).__name__, tuple(out), params, macs, other, kind, how))
        return tuple(out)

    def add(self, name: str, a: Shape, b: Shape) -> Shape:
        """A block's elementwise sum (residual shortcut)."""
        if a != b:
            raise ShapeError(f"Block {name!r} adds a main path of shape {a} to a shortcut of shape {b}; match them.")
        self.rows.append(LayerCount(name, "add", a, 0, 0, math.prod(a), "add"))
        return a

    def concat(self, name: str, shapes: Sequence[Shape], dim: int = 1) -> Shape:
        """A block's concatenation along ``dim``."""
        rest = {s[:dim] + s[dim + 1 :] for s in shapes}
        if len(rest) != 1:
            raise ShapeError(
                f"Block {name!r} concatenates branches of shapes {list(shapes)}; all but dimension {dim} must match."
            )
        first = shapes[0]
        out = (*first[:dim], sum(s[dim] for s in shapes), *first[dim + 1 :])
        self.rows.append(LayerCount(name, "concat", out, 0, 0, math.prod(out), "concat"))
        return out

    def meta_forward(self, module: nn.Module, name: str, shape: Shape) -> Shape:
        """No rule: run ``module`` on the meta device under an :class:`~archbench.analysis.ops.OpCounter`.

        Sub-modules with a rule are counted by their rule at the shapes they saw: torch's own layers are not
        run at all (a stub returns an empty tensor of the rule's output shape), a hand-written norm runs with
        its operators muted. Every other operator is counted by its formula and booked to the innermost module
        running it; operators with no formula land in :attr:`uncounted`. A call that must do the same work as
        an earlier one (:func:`archbench.analysis.replay.call_key`: a transformer's repeated blocks) is not run
        again: the earlier call's rows are replayed under the new name. Each row carries the real output shape.
        """
        from torch.func import functional_call

        from archbench.analysis.ops import OpCounter
        from archbench.analysis.replay import call_key, skeleton

        self.fallback.append(name or type(module).__name__)
        counter = OpCounter()
        stack: list[tuple[str, str, int, Shape]] = []  # (owner before, how, macs before, input shape)
        done: dict[object, tuple[str, list[LayerCount], Counter[str], Counter[str], object]] = {}
        fingerprints: dict = {}  # replay.fingerprint's memo for this pass

        def stub(sub_name: str, sub: nn.Module, rule: LeafRule) -> Callable:
            def forward(*args: object, **kwargs: object) -> torch.Tensor:
                x = first_tensor(args) if first_tensor(args) is not None else first_tensor(kwargs)
                out = self.leaf(sub, sub_name, tuple(x.shape), rule, "meta")
                return torch.empty(out, dtype=x.dtype, device="meta")

            return forward

        def replaying(sub_name: str, sub: nn.Module) -> Callable:
            run = sub.forward

            def forward(*args: object, **kwargs: object) -> object:
                key = call_key(sub, args, kwargs, fingerprints)
                if key in done:
                    first, rows, macs, uncounted, output = done[key]
                    renamed = {sub_name + k[len(first):]: v for k, v in macs.items()}
                    self.rows.extend(dataclasses.replace(r, name=sub_name + r.name[len(first):]) for r in rows)
                    counter.macs.update(renamed)
                    counter.uncounted.update(uncounted)
                    return skeleton(output)
                start, macs_before, uncounted_before = len(self.rows), Counter(counter.macs), Counter(counter.uncounted)
                output = run(*args, **kwargs)
                if key is not None:
                    done[key] = (sub_name, self.rows[start:], counter.macs - macs_before,
                                 counter.uncounted - uncounted_before, output)  # fmt: skip
                return output

            return forward

        def pre(sub_name: str, sub: nn.Module, args: tuple, kwargs: dict) -> None:
            tensor = first_tensor(args) if first_tensor(args) is not None else first_tensor(kwargs)
            how, macs = "ops", 0
            if tensor is not None and hand_written_norm_rule(sub) is not None:
                how = "rule"
            elif tensor is not None and call_rule_for(type(sub)) is not None:
                how, macs = "call", call_rule_for(type(sub))(sub, args, kwargs)
            if how != "ops":
                counter.muted += 1
            sub_shape = tuple(tensor.shape) if tensor is not None else ()
            stack.append((counter.owner, how, counter.macs[sub_name], sub_shape, macs))
            counter.owner = sub_name

        def post(sub_name: str, sub: nn.Module, _args: tuple, _kwargs: dict, output: object) -> None:
            owner, how, before, sub_shape, macs = stack.pop()
            counter.owner = owner
            if how == "rule":
                counter.muted -= 1
                self.leaf(sub, sub_name, sub_shape, hand_written_norm_rule(sub), "meta")
                return
            if how == "call":
                counter.muted -= 1
                counter.macs[sub_name] += macs  # a parent's own work is what is left beyond its children's
            own = counter.macs[sub_name] - before
            if own or next(sub.children(), None) is None:
                out = first_tensor(output)
                params = sum(p.numel() for p in sub.parameters(recurse=False))
                out_shape = tuple(out.shape) if out is not None else ()
                how = "meta" if how == "call" else "ops"
                self.rows.append(LayerCount(sub_name, type(sub).__name__, out_shape, params, own, 0, "", how))

        handles, patched = [], []
        for sub_name, sub in module.named_modules():
            if not sub_name:
                continue
            full = _join(name, sub_name)
            kind, rule = rule_for(type(sub))
            if kind == "leaf":  # torch's own layer (its forward returns one tensor): not run, counted by rule
                sub.forward = stub(full, sub, rule)
            else:
                sub.forward = replaying(full, sub)
                handles.append(sub.register_forward_pre_hook(functools.partial(pre, full), with_kwargs=True))
                handles.append(sub.register_forward_hook(functools.partial(post, full), with_kwargs=True))
            patched.append(sub)
        tensors = chain(module.named_parameters(), module.named_buffers())
        state = {k: torch.empty_like(v, device="meta") for k, v in tensors}  # shapes only, nothing copied
        dtype = next((v.dtype for v in state.values() if v.is_floating_point()), torch.get_default_dtype())
        counter.owner = name
        try:
            with eval_mode(module), torch.no_grad(), counter:
                output = functional_call(module, state, (torch.empty(shape, device="meta", dtype=dtype),))
        except ArchbenchError:
            raise
        except (RuntimeError, ValueError, TypeError, IndexError, AssertionError) as err:
            first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ShapeError(
                f"Module {name or '(model)'!r} ({type(module).__name__}) has no counting rule and fails on a "
                f"meta-device input of shape {shape}: {first_line}."
            ) from None
        finally:
            for handle in handles:
                handle.remove()
            for sub in patched:
                del sub.forward
        out = first_tensor(output)
        out_shape = tuple(out.shape) if out is not None else ()
        if counter.macs[name]:  # work the module does itself, in functional calls
            params = sum(p.numel() for p in module.parameters(recurse=False))
            self.rows.append(
                LayerCount(name, type(module).__name__, out_shape, params, counter.macs[name], 0, "", "ops")
            )
        self.uncounted.update(counter.uncounted)
        return out_shape


def _record_call(calls: list, name: str, module: nn.Module, args: tuple) -> None:
    tensor = first_tensor(args)
    calls.append((name, module, tuple(tensor.shape) if tensor is not None else ()))


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _count_analytic(model: nn.Module, shape: Shape) -> MacCount:
    tally = _Tally()
    out = tally.visit(model, "", shape)
    rows = tuple(tally.rows)
    other: Counter[str] = Counter()
    for row in rows:
        if row.other_kind:
            other[row.other_kind] += row.other_ops
    return MacCount(
        method="analytic",
        input_shape=shape,
        output_shape=out,
        total=sum(r.macs for r in rows),
        layers=rows,
        params=count_params(model),
        other_ops=dict(sorted(other.items())),
        meta_fallback=tuple(tally.fallback),
        complete=not tally.uncounted,
        uncounted=dict(tally.uncounted),
    )


# ----------------------------------------------------------------------------------------------------------
# fvcore and torch.utils.flop_counter: run the model once, convert to MACs
# ----------------------------------------------------------------------------------------------------------


def _example_input(model: nn.Module, shape: Shape) -> torch.Tensor:
    return torch.zeros(shape, device=model_device(model), dtype=model_dtype(model))


@dataclass(frozen=True)
class _Call:
    name: str
    module: nn.Module
    output: torch.Tensor | None
    first: bool  # the module's first call carries its counts (a counter totals a module over its calls)


class _Watch:
    """Forward hooks on the leaf modules and the model that keep each output tensor; a context manager.

    Shapes are read after the run: reading ``tensor.shape`` inside a hook while fvcore's JIT tracer runs
    would add size nodes to the traced graph (and double fvcore's time).
    """

    def __init__(self, model: nn.Module) -> None:
        self.calls: list[_Call] = []
        self.output: torch.Tensor | None = None
        self.block_outputs: dict[str, torch.Tensor | None] = {}  # a block's first output (for its own row)
        self._seen: set[str] = set()
        self._handles = [
            module.register_forward_hook(functools.partial(self._record if leaf else self._block, name))
            for name, module in model.named_modules()
            if name
            for leaf in [next(module.children(), None) is None]
        ]
        self._handles.append(model.register_forward_hook(self._root))

    def _record(self, name: str, module: nn.Module, _args: tuple, output: object) -> None:
        self.calls.append(_Call(name, module, first_tensor(output), name not in self._seen))
        self._seen.add(name)

    def _block(self, name: str, _module: nn.Module, _args: tuple, output: object) -> None:
        self.block_outputs.setdefault(name, first_tensor(output))

    def _root(self, _module: nn.Module, _args: tuple, output: object) -> None:
        self.output = first_tensor(output)
        self.block_outputs.setdefault("", self.output)

    def shape_of(self, name: str) -> Shape:
        """The output shape of a block's (or the model's, ``""``) first call; ``()`` if it returned no tensor."""
        out = self.block_outputs.get(name)
        return tuple(out.shape) if out is not None else ()

    @property
    def output_shape(self) -> Shape:
        return tuple(self.output.shape) if self.output is not None else ()

    def __enter__(self) -> _Watch:
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()


def _layer(call: _Call, macs: int, counted_by: str, other_ops: int = 0, other_kind: str = "") -> LayerCount:
    return LayerCount(
        name=call.name,
        type=type(call.module).__name__,
        output_shape=tuple(call.output.shape) if call.output is not None else (),
        params=sum(p.numel() for p in call.module.parameters(recurse=False)),
        macs=macs,
        other_ops=other_ops,
        other_kind=other_kind,
        counted_by=counted_by,
    )


def _fvcore_conv_mode(inputs: list, outputs: list) -> Counter[str]:
    """fvcore's own conv formula for ``aten::_convolution_mode`` (string padding), an op it does not know."""
    from fvcore.nn.jit_handles import conv_flop_count, get_shape

    return Counter({"conv": conv_flop_count(get_shape(inputs[0]), get_shape(inputs[1]), get_shape(outputs[0]))})


def _count_fvcore(model: nn.Module, shape: Shape) -> MacCount:
    """fvcore's FlopCountAnalysis: one JIT trace; its "flops" are MACs for conv and linear."""
    was_training = model.training
    model.eval()
    try:
        with _Watch(model) as watch, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TracerWarning and torch.jit deprecation notices
            from fvcore.nn import FlopCountAnalysis

            analysis = (
                FlopCountAnalysis(model, _example_input(model, shape))
                .set_op_handle("aten::_convolution_mode", _fvcore_conv_mode)
                .unsupported_ops_warnings(False)
                .uncalled_modules_warnings(False)
                .tracer_warnings("none")
            )
            by_module = analysis.by_module_and_operator()  # runs the trace
    finally:
        model.train(was_training)
    layers = []
    for call in watch.calls:
        ops = by_module.get(call.name, Counter()) if call.first else Counter()
        others = {op: int(n) for op, n in ops.items() if op not in FVCORE_MAC_OPS and n}
        macs = sum(int(n) for op, n in ops.items() if op in FVCORE_MAC_OPS)
        layers.append(_layer(call, macs, "fvcore", sum(others.values()), ", ".join(sorted(others))))
    totals = by_module.get("", Counter())

    def macs_of(module_name: str) -> int:
        return sum(int(n) for op, n in by_module.get(module_name, Counter()).items() if op in FVCORE_MAC_OPS)

    layers += _block_rows(model, macs_of, "fvcore", watch)
    uncounted = {op: n for op, n in sorted(analysis.unsupported_ops().items()) if not _fvcore_op_is_free(op)}
    return MacCount(
        method="fvcore",
        input_shape=shape,
        output_shape=watch.output_shape,
        total=macs_of(""),
        layers=tuple(layers),
        params=count_params(model),
        other_ops={op: int(n) for op, n in sorted(totals.items()) if op not in FVCORE_MAC_OPS},
        complete=not uncounted,
        uncounted=uncounted,
    )


def _block_rows(model: nn.Module, macs_of: Callable[[str], int], counted_by: str, watch: _Watch) -> list[LayerCount]:
    """Rows for the work a block does itself in functional calls (its MACs beyond its children's)."""
    rows = []
    for module_name, module in model.named_modules():
        children = [_join(module_name, child) for child, _ in module.named_children()]
        # a childless model is no leaf row of its own (rows are its sub-modules' calls): all its work is its own
        own = macs_of(module_name) - sum(macs_of(child) for child in children) if children or not module_name else 0
        if own:
            params = sum(p.numel() for p in module.parameters(recurse=False))
            rows.append(LayerCount(module_name, type(module).__name__, watch.shape_of(module_name), params, own, 0, "",
                                   counted_by))  # fmt: skip
    return rows


def _fvcore_op_is_free(op: str) -> bool:
    """An fvcore "unsupported" operator (``aten::softmax``) that does no multiply-accumulates."""
    from archbench.analysis.ops import is_free

    namespace, _, name = op.partition("::")
    packet = getattr(getattr(torch.ops, namespace, None), name, None) if name else None
    if packet is None:
        return False
    return any(is_free(getattr(packet, overload)) for overload in packet.overloads())


def _count_torch(model: nn.Module, shape: Shape, *, backward: bool = False) -> MacCount:
    """torch.utils.flop_counter.FlopCounterMode: one forward (and backward) pass; 2 FLOPs per MAC."""
    from torch.utils.flop_counter import FlopCounterMode

    from archbench.analysis.ops import EXTRA_FORMULAS, OpCounter

    x = _example_input(model, shape)
    params = [p for p in model.parameters() if p.requires_grad]
    root = type(model).__name__
    norms = {_join(root, n) for n, m in model.named_modules() if n and is_norm(m)}

    def norm_flops(counter: FlopCounterMode) -> int:
        """A hand-written BatchNorm's reductions (``bmm`` inside) are normalisation work, not MACs."""
        return sum(sum(v.values()) for k, v in counter.get_flop_counts().items() if k in norms)

    was_training = model.training
    model.eval()
    try:
        # grad is on in both cases, so the forward takes the same (non-fused) path with and without backward
        # the OpCounter outside sees what FlopCounterMode passes down, and names any operator with no formula
        with _Watch(model) as watch, OpCounter() as ops, FlopCounterMode(
            display=False, custom_mapping=EXTRA_FORMULAS
        ) as counter, torch.enable_grad():
            output = model(x)
            forward_flops = counter.get_total_flops() - norm_flops(counter)
            by_module = {k: sum(v.values()) for k, v in counter.get_flop_counts().items()}
            out = first_tensor(output)
            if backward and params and out is not None and out.requires_grad:
                # autograd.grad, not .backward(): the model's .grad fields stay as they were
                torch.autograd.grad(out.float().sum(), params, allow_unused=True)
            backward_flops = counter.get_total_flops() - norm_flops(counter) - forward_flops
    finally:
        model.train(was_training)

    def macs_of(module_name: str) -> int:
        return by_module.get(_join(root, module_name) if module_name else root, 0) // 2

    layers = [_layer(call, macs_of(call.name) if call.first else 0, "torch") for call in watch.calls]
    layers = tuple(layers + _block_rows(model, macs_of, "torch", watch))
    return MacCount(
        method="torch",
        input_shape=shape,
        output_shape=watch.output_shape,
        total=forward_flops // 2,
        layers=layers,
        params=count_params(model),
        backward=backward_flops // 2 if backward else None,
        complete=not ops.uncounted,
        uncounted=dict(ops.uncounted),
    )


def _hinted(count: Callable[[], MacCount], name: str | None) -> MacCount:
    """Add a registered network's input to a shape error, before its fix: "... (lenet5 takes N×1×28×28); ..."."""
    try:
        return count()
    except ShapeError as err:
        if name is None:
            raise
        from archbench.registry import get_spec

        hint = f" ({name} takes N×{'×'.join(map(str, get_spec(name).input_shape))})"
        head, sep, fix = str(err).partition("; ")
        raise ShapeError(f"{head}{hint}{sep}{fix}" if sep else f"{head.rstrip('.')}{hint}.") from None


def _guarded(count: Callable[[], MacCount], model: nn.Module, shape: Shape, name: str | None) -> MacCount:
    """Run a counter that executes the model; turn a failure deep inside torch into one clear sentence."""
    try:
        return count()
    except ArchbenchError:
        raise
    except (RuntimeError, ValueError, AssertionError, IndexError, TypeError) as err:
        from archbench.analysis.checks import check_resolved

        check_resolved(model, shape, name).raise_for_error()  # a layer that does not fit, named
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ArchbenchError(
            f"The counter failed on input shape {shape} ({first_line}); try method='analytic'."
        ) from err
