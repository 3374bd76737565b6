"""Small shared pieces for running a model to learn about it: eval mode that is always undone, tensors found.

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
from collections.abc import Iterator

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
