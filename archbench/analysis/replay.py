"""Keys that say when two module calls must do the same work, so a meta-device pass runs each kind once.

A transformer repeats one block a dozen times; a ResNet stage repeats its second block. Their calls differ only
in names, so :meth:`archbench.analysis.counts._Tally.meta_forward` runs the first call of each kind and replays
its rows for the others. Two calls are the same kind when :func:`call_key` is equal: the same module
:func:`fingerprint` (class, train/eval, parameter and buffer shapes, and every plain attribute, of the module and
of each sub-module) and the same arguments (tensor shapes and dtypes, other values equal). Anything that cannot
be compared exactly (a tensor kept as a plain attribute, an arbitrary object) gives ``None``: no key, so the
call runs. A miss costs time, never a wrong count.

Example:
    >>> from torch import nn
    >>> a, b = nn.Sequential(nn.Linear(4, 4), nn.ReLU()), nn.Sequential(nn.Linear(4, 4), nn.ReLU())
    >>> x = torch.empty(2, 4, device="meta")
    >>> call_key(a, (x,), {}) == call_key(b, (x,), {}) != call_key(nn.Sequential(nn.Linear(4, 5)), (x,), {})
    True
    >>> call_key(a, (x,), {}) == call_key(a, (torch.empty(3, 4, device="meta"),), {})
    False
"""

from __future__ import annotations

import enum
import functools
import types
from collections.abc import Hashable
from typing import Any

import torch
from torch import nn

#: ``nn.Module`` bookkeeping in every instance's ``__dict__`` (hooks, the containers, an instance ``forward``).
_INTERNALS = frozenset(
    """
    _parameters _buffers _modules _non_persistent_buffers_set _backward_pre_hooks _backward_hooks
    _is_full_backward_hook _forward_hooks _forward_hooks_with_kwargs _forward_hooks_always_called
    _forward_pre_hooks _forward_pre_hooks_with_kwargs _state_dict_hooks _state_dict_pre_hooks
    _load_state_dict_pre_hooks _load_state_dict_post_hooks forward training
    """.split()
)
_PLAIN = (type(None), bool, int, float, complex, str, bytes, torch.dtype, torch.device, torch.layout,
          torch.memory_format, enum.Enum)  # fmt: skip
_CODE = (types.FunctionType, types.BuiltinFunctionType, types.MethodType, type)


class _NoKey(Exception):
    """A value that cannot be compared exactly."""


def _freeze(value: Any, tensors: bool = True) -> Hashable:
    """A hashable stand-in for ``value`` (tensors by shape and dtype, code by identity); raises :class:`_NoKey`.

    With ``tensors=False`` a tensor raises too: kept as a plain attribute, its values could steer the forward.
    So does a tensor with values (not on the meta device) among the arguments.
    """
    if isinstance(value, torch.Tensor):
        if not tensors or not value.is_meta:
            raise _NoKey
        return ("tensor", tuple(value.shape), value.dtype)
    if isinstance(value, _PLAIN):
        return (type(value), value)
    if isinstance(value, (tuple, list)):
        return (type(value), tuple(_freeze(v, tensors) for v in value))
    if isinstance(value, dict):
        return (dict, tuple((_freeze(k, tensors), _freeze(v, tensors)) for k, v in value.items()))
    if isinstance(value, _CODE):  # an activation function held as an attribute: the same object does the same
        return ("code", id(value))
    if isinstance(value, functools.partial):
        return ("partial", id(value.func), _freeze(value.args, tensors), _freeze(value.keywords, tensors))
    raise _NoKey


def _shapes(tensors: dict[str, torch.Tensor | None]) -> tuple:
    return tuple((k, None if t is None else (tuple(t.shape), t.dtype)) for k, t in tensors.items())


def fingerprint(module: nn.Module, memo: dict[int, Hashable | None] | None = None) -> Hashable | None:
    """What decides a module's work besides its inputs, or ``None`` if some attribute cannot be compared.

    A plain tensor attribute (not a parameter or buffer) gives ``None``: its values could steer the forward.
    ``memo`` (``{id(module): fingerprint}``) spares recomputing sub-modules within one pass.
    """
    memo = {} if memo is None else memo
    if id(module) not in memo:
        try:
            own = (
                type(module),
                module.training,
                _shapes(module._parameters),
                _shapes(module._buffers),
                tuple((k, _freeze(v, tensors=False)) for k, v in vars(module).items() if k not in _INTERNALS),
            )
        except _NoKey:
            own = None
        children = tuple((name, fingerprint(c, memo)) for name, c in module._modules.items() if c is not None)
        memo[id(module)] = None if own is None or any(c is None for _, c in children) else (own, children)
    return memo[id(module)]


def call_key(module: nn.Module, args: tuple, kwargs: dict, memo: dict | None = None) -> Hashable | None:
    """Equal for two calls that must do the same work (see the module docstring), else ``None`` or different."""
    module_key = fingerprint(module, memo)
    if module_key is None:
        return None
    try:
        return module_key, _freeze(args), _freeze(kwargs)
    except _NoKey:
        return None


def skeleton(output: Any) -> Any:
    """Fresh meta tensors of ``output``'s structure, shapes and dtypes (tuples, lists and dicts kept)."""
    if isinstance(output, torch.Tensor):
        return torch.empty(output.shape, dtype=output.dtype, device="meta")
    if isinstance(output, (tuple, list)):
        return type(output)(skeleton(v) for v in output) if type(output) in (tuple, list) else output
    if isinstance(output, dict):
        return {k: skeleton(v) for k, v in output.items()}
    return output
