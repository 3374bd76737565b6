"""Shared pieces for running a model to learn about it: eval mode that is always undone, tensors found, the
model's device and dtype, and a :class:`Recorder` of every module call (used by checks, summary and counts).

Example:
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Dropout()).train()
    >>> with eval_mode(net):
    ...     net.training
    False
    >>> net.training, net[0].training
    (True, True)
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch
from torch import nn


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode, then restore every sub-module's own train/eval state, whatever happens."""
    states = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, training in states:
            module.training = training


def first_tensor(value: object) -> torch.Tensor | None:
    """The first tensor in a (nested) tuple, list or dict, or None."""
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (tuple, list)):
        for item in value:
            found = first_tensor(item)
            if found is not None:
                return found
    if isinstance(value, dict):
        return first_tensor(list(value.values()))
    return None


def model_dtype(model: nn.Module) -> torch.dtype:
    """The dtype of the model's first floating-point parameter or buffer (the default dtype if none)."""
    tensors = (*model.parameters(), *model.buffers())
    return next((t.dtype for t in tensors if t.is_floating_point()), torch.get_default_dtype())


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter or buffer (the CPU if it has none)."""
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


class Recorder:
    """Forward hooks that log every module call; a context manager that removes them on exit.

    ``open_calls`` holds the indices of the rows whose forward has started but not finished, so after an
    exception its last entry is the innermost module that failed.
    """

    def __init__(self, model: nn.Module, validate: Callable[[nn.Module, torch.Tensor], None] | None = None) -> None:
        self._validate = validate
        self.rows: list[dict] = []
        self.open_calls: list[int] = []
        self._handles = []
        for name, module in model.named_modules():
            if name:
                self._handles.append(module.register_forward_pre_hook(self._pre(name, module)))
                self._handles.append(module.register_forward_hook(self._post))

    def _pre(self, name: str, module: nn.Module):
        def hook(_module: nn.Module, args: tuple) -> None:
            tensor = first_tensor(args)
            shape = tuple(tensor.shape) if tensor is not None else ()
            self.rows.append({"name": name, "module": module, "input_shape": shape, "output_shape": None})
            self.open_calls.append(len(self.rows) - 1)
            if self._validate is not None and tensor is not None:
                self._validate(module, tensor)

        return hook

    def _post(self, _module: nn.Module, _args: tuple, output: object) -> None:
        tensor = first_tensor(output)
        self.rows[self.open_calls.pop()]["output_shape"] = tuple(tensor.shape) if tensor is not None else ()

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()
