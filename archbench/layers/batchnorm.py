r"""A hand-written batch normalisation with an analytic backward pass, in two conventions.

For an input with channels in dimension 1 — ``(N, C)`` from a fully connected layer, ``(N, C, L)``, or
``(N, C, H, W)`` from a convolution — every channel ``c`` is normalised over the ``M`` values it holds
(``M = N``, ``N·L`` or ``N·H·W``):

.. math::

    \mu_c = \frac{1}{M}\sum_i x_i, \qquad
    \sigma_c^2 = \frac{1}{M}\sum_i (x_i - \mu_c)^2, \qquad
    y_i = \gamma_c \, \frac{x_i - \mu_c}{\sqrt{\sigma_c^2 + \epsilon}} + \beta_c .

In training mode ``μ`` and ``σ²`` are the batch statistics above (always the *biased* variance); in
evaluation mode they are the running estimates. The two conventions differ only in how the running
estimates are updated after a training batch:

``convention="torch"`` (``nn.BatchNorm1d/2d``; default ``momentum m = 0.1`` weights the *new* batch)::

    running_mean ← (1 − m)·running_mean + m·μ
    running_var  ← (1 − m)·running_var  + m·σ²·M/(M − 1)      # the unbiased batch variance

    and with ``momentum=None`` the cumulative average: m = 1 / num_batches_tracked.

``convention="d2l"`` (the seeds' textbook form; default ``momentum m = 0.9`` weights the *old* value)::

    running_mean ← m·running_mean + (1 − m)·μ
    running_var  ← m·running_var  + (1 − m)·σ²                 # the biased variance, as in normalisation

    and with ``momentum=None`` the cumulative average: m = 1 − 1 / num_batches_tracked.

So ``torch`` with momentum ``m`` and ``d2l`` with momentum ``1 − m`` give the same running mean, and after
one step from the same running variance the torch ``running_var`` exceeds the d2l one by ``m·σ²/(M − 1)``.
Batch statistics need ``M ≥ 2`` (torch raises too: the unbiased variance divides by ``M − 1``).

Gradients (``x̂ = (x − μ)·invstd``, ``invstd = 1/sqrt(σ² + ε)``, ``g = ∂L/∂y``)::

    ∂L/∂β = Σ g        ∂L/∂γ = Σ g·x̂
    training (batch statistics):   ∂L/∂x = γ·invstd/M · (M·g − Σ g − x̂·Σ g·x̂)
    evaluation (running statistics): ∂L/∂x = γ·invstd·g

They are computed by hand in :class:`_BatchStatsNorm` and :class:`_GivenStatsNorm`, ``autograd.Function``\ s
(``torch.batch_norm`` and its relatives are not used anywhere). Double backward (``create_graph=True``,
e.g. ``gradgradcheck``) is supported: then the same formulas are evaluated with differentiable tensor
operations, recomputing the statistics from ``x`` so that their dependence on the input is in the graph.

Speed: a handful of passes and kernel calls each way, since on the small tensors of the seed networks
the cost per call, not the arithmetic, is what counts, and on large ones the memory traffic. Forward and
first-order backward each create exactly one full-size tensor (the output; the input gradient), as
``nn.BatchNorm`` does; the reductions are plain per-channel sums, per-group vector norms for ``Σx²`` and, for
contiguous groups of 1024 values or more, batched dot products, and the rest fused ``addcmul`` passes in place.

Numerics: the corrected two-pass algorithm. ``x`` is centred on its mean as first summed, ``s = Σx/M``,
and the sums of ``c = x − s`` give the exact mean ``s + r`` (``r = mean(c)``, the rounding error of the
first sum) and ``σ² = mean(c²) − r²``. The output is computed from ``c``, so an offset much larger than the
spread does not cancel catastrophically in float32 (``nn.BatchNorm``'s CPU kernel, computing ``x·α + β``,
loses about ``|μ|/σ`` ulps there). The backward pass recomputes ``c`` bit for bit instead of saving it; on
CPU, for an input of a million values or more whose channels all have ``|μ| ≤ 4σ``, it uses ``x`` uncentred
(accuracy within a factor 5 of the centred form, one pass fewer).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from archbench.errors import ShapeError

__all__ = ["CONVENTIONS", "BatchNorm", "batch_norm"]

CONVENTIONS: tuple[str, ...] = ("torch", "d2l")
_DEFAULT_MOMENTUM = {"torch": 0.1, "d2l": 0.9}
_SUPPORTED_DIMS = (2, 3, 4)
_LAYOUTS = {2: "(N, C)", 3: "(N, C, L)", 4: "(N, C, H, W)"}

# Per-(sample, channel) groups at least this long take the grouped reductions: one vector norm per group for
# Σx² (from 8 values), one batched dot product per group for Σa·b (from 1024, where a full-size product
# would cost more than the BLAS calls; below it the plain product and sum are faster).
_MIN_GROUP_FOR_NORM = 8
_MIN_GROUP_FOR_BMM = 1024
# On CPU the backward of an input of at least this many values skips re-centring x when every channel's
# |mean| is at most _MAX_UNCENTRED_OFFSET standard deviations.
_MIN_VALUES_UNCENTRED = 1 << 20
_MAX_UNCENTRED_OFFSET = 4.0


class _Default(enum.Enum):
    """Sentinel for "the convention's default momentum" (``None`` already means the cumulative average)."""

    MOMENTUM = "the convention's default"


# --------------------------------------------------------------------------------------------------
# Validation: one sentence naming what is wrong, the expected value and the fix.
# --------------------------------------------------------------------------------------------------


def _check_convention(convention: str) -> None:
    if convention not in CONVENTIONS:
        raise ShapeError(
            f"BatchNorm convention must be one of {list(CONVENTIONS)}, got {convention!r}; "
            "pass convention='torch' (PyTorch's update) or convention='d2l' (the seeds' update)."
        )


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_eps(eps: float) -> None:
    if not (_is_number(eps) and 0.0 < eps < float("inf")):
        raise ShapeError(
            f"BatchNorm eps must be a finite number above 0, got {eps!r}; pass a small value such as 1e-5 "
            "(nn.BatchNorm2d refuses eps <= 0 in training too: a constant channel would divide by zero)."
        )


def _check_flag(name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise ShapeError(f"BatchNorm {name} must be True or False, got {value!r}.")


def _check_momentum(momentum: float | None) -> None:
    if momentum is not None and not (_is_number(momentum) and 0.0 <= momentum <= 1.0):
        raise ShapeError(
            f"BatchNorm momentum must be a number in [0, 1] or None (cumulative average), got {momentum!r}; "
            "pass a weight such as 0.1 (torch) or 0.9 (d2l)."
        )


def _check_per_channel(name: str, tensor: torch.Tensor | None, channels: int) -> None:
    if tensor is not None and tuple(tensor.shape) != (channels,):
        raise ShapeError(
            f"batch_norm's {name} must have shape ({channels},), one value per channel of the input, "
            f"got {tuple(tensor.shape)}; pass a tensor with {channels} elements."
        )


def _check_batch_size(x: torch.Tensor, has_running_stats: bool) -> None:
    values = x.numel() // x.shape[1] if x.shape[1] else 0
    if values < 2:
        why = "in training mode" if has_running_stats else "without running statistics"
        fix = "or call model.eval() to use the running statistics" if has_running_stats else (
            "or build the layer with track_running_stats=True and evaluate in eval mode"
        )
        raise ShapeError(
            f"BatchNorm {why} normalises with the batch variance, which needs at least 2 values per "
            f"channel, but the input of shape {tuple(x.shape)} has {values}; use a batch size of at least 2 "
            f"{fix}."
        )


def _check_input(x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() < 2:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ShapeError(
            f"batch_norm expects a tensor with channels in dimension 1, shape (N, C, ...), got {shape}; "
            "add a batch dimension with x.unsqueeze(0) or pass a (N, C) batch."
        )


# --------------------------------------------------------------------------------------------------
# Per-channel reductions over every dimension except 1, without full-size temporaries where possible.
# --------------------------------------------------------------------------------------------------


def _reduce_dims(x: torch.Tensor) -> list[int]:
    return [0, *range(2, x.dim())]


def _per_channel(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """View a ``(C,)`` vector so that it broadcasts against ``x`` along dimension 1."""
    return v.view(-1, *([1] * (x.dim() - 2)))


def _grouped(t: torch.Tensor, min_group: int) -> torch.Tensor | None:
    """``t`` as ``(N·C, L)`` when it is contiguous with groups of at least ``min_group``, else None."""
    if t.dim() < 3 or not t.is_contiguous() or t.dtype not in (torch.float32, torch.float64):
        return None
    groups = t.shape[0] * t.shape[1]
    if groups == 0 or t.numel() // groups < min_group:
        return None
    return t.view(groups, -1)


def _channel_sum(t: torch.Tensor) -> torch.Tensor:
    """Σ over all dimensions but 1, as a ``(C,)`` tensor."""
    return t.sum(dim=_reduce_dims(t))


def _channel_sum_of_squares(t: torch.Tensor) -> torch.Tensor:
    """Σ t² over all dimensions but 1, through per-group norms when contiguous (no squared temporary)."""
    grouped = _grouped(t, _MIN_GROUP_FOR_NORM)
    if grouped is None:
        return _channel_dot(t, t)
    norms = torch.linalg.vector_norm(grouped, dim=1).view(t.shape[0], t.shape[1])
    return norms.square().sum(dim=0)


def _channel_dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Σ a·b over all dimensions but 1; one batched dot product per (sample, channel) for long groups."""
    ga, gb = _grouped(a, _MIN_GROUP_FOR_BMM), _grouped(b, _MIN_GROUP_FOR_BMM)
    if ga is None or gb is None:
        return (a * b).sum(dim=_reduce_dims(a))
    dots = torch.bmm(ga.unsqueeze(1), gb.unsqueeze(2))  # (N·C, 1, L) @ (N·C, L, 1) -> (N·C, 1, 1)
    return dots.view(a.shape[0], a.shape[1]).sum(dim=0)


def _scale(weight: torch.Tensor | None, invstd: torch.Tensor) -> torch.Tensor:
    return invstd if weight is None else weight * invstd


# --------------------------------------------------------------------------------------------------
# The analytic forward and backward passes: the corrected two-pass statistics, a few fused passes each.
# --------------------------------------------------------------------------------------------------


def _normalise_(
    centred: torch.Tensor, residual: torch.Tensor | None, scale: torch.Tensor, bias: torch.Tensor | None
) -> torch.Tensor:
    """In place, one pass: ``c ← (c − r)·scale + bias``, written as ``c·scale + (bias − r·scale)``."""
    if residual is None:
        offset = bias
    elif bias is None:
        offset = (residual * scale).neg_()
    else:
        offset = torch.addcmul(bias, residual, scale, value=-1)
    if offset is None:
        return centred.mul_(_per_channel(scale, centred))
    return torch.addcmul(_per_channel(offset, centred), centred, _per_channel(scale, centred), out=centred)


def _centring_is_optional(x: torch.Tensor, mean: torch.Tensor, invstd: torch.Tensor) -> bool:
    """True for a large CPU input whose every channel's mean is within a few standard deviations of zero.

    Then Σg·(x − μ) = Σg·x − μ·Σg and the affine form ``slope·x + offset`` lose at most a factor
    1 + |μ|/σ ≤ 5 of accuracy to cancellation, and the product g·x, written into the buffer that becomes
    ∂L/∂x, saves a pass over the data; below ``_MIN_VALUES_UNCENTRED`` values the check would cost more.
    """
    if x.device.type != "cpu" or x.numel() < _MIN_VALUES_UNCENTRED:
        return False
    return bool((mean.abs() * invstd).max() <= _MAX_UNCENTRED_OFFSET)


def _fast_backward(
    grad_out: torch.Tensor,
    x: torch.Tensor,
    weight: torch.Tensor | None,
    shift: torch.Tensor,
    residual: torch.Tensor | None,
    invstd: torch.Tensor,
    needs: Sequence[bool],
) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
    """First-order backward: Σg and Σg·(x − μ) (one reduction each) and one new full-size tensor, ∂L/∂x.

    ``x − μ = c − r`` with ``c = x − s`` recomputed bit for bit; ``residual`` is None for given (running)
    statistics (``s`` is then their mean), which makes ∂L/∂x simply ``γ·invstd·g``.
    """
    batch_stats = residual is not None
    need_x, need_w, need_b = needs[0], needs[1] and weight is not None, needs[2]
    scale = _scale(weight, invstd)
    sum_g = _channel_sum(grad_out) if need_b or batch_stats else None
    if not batch_stats and not need_w:
        return (grad_out * _per_channel(scale, grad_out) if need_x else None), None, sum_g
    mean = shift + residual if batch_stats else None  # μ = s + r
    if mean is not None and _centring_is_optional(x, mean, invstd):
        buffer = torch.mul(grad_out, x)  # becomes ∂L/∂x
        dot = _channel_sum(buffer).addcmul_(mean, sum_g, value=-1)  # Σg·(x − μ) = Σg·x − μ·Σg
        centred, residual = x, mean  # x − μ = x − (s + r): the same formulas below
    else:
        buffer = centred = x - _per_channel(shift, x)  # c, as in the forward
        dot = _channel_dot(grad_out, centred)  # Σg·c
        if batch_stats:
            dot.addcmul_(residual, sum_g, value=-1)  # Σg·(x − μ) = Σg·c − r·Σg
    grad_weight = dot.mul_(invstd)  # Σg·x̂
    grad_bias = sum_g if need_b else None
    if not need_w:
        grad_weight = None
    if not need_x:
        return None, grad_weight, grad_bias
    if not batch_stats:
        return torch.mul(grad_out, _per_channel(scale, grad_out), out=buffer), grad_weight, grad_bias
    # ∂L/∂x = scale·g + slope·(c − r) + offset, slope = −scale·invstd·Σg·x̂/M, offset = −scale·Σg/M.
    m = x.numel() // x.shape[1]
    slope = (scale * invstd).mul_(dot).mul_(-1.0 / m)
    offset = torch.mul(scale, sum_g).mul_(-1.0 / m).addcmul_(slope, residual, value=-1)
    grad_in = torch.addcmul(_per_channel(offset, x), centred, _per_channel(slope, x), out=buffer)
    return grad_in.addcmul_(grad_out, _per_channel(scale, grad_out)), grad_weight, grad_bias


def _differentiable_backward(
    grad_out: torch.Tensor,
    x: torch.Tensor,
    weight: torch.Tensor | None,
    mean: torch.Tensor,
    invstd: torch.Tensor,
    eps: float,
    batch_stats: bool,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """The same formulas as differentiable ops (used under ``create_graph=True``, for double backward).

    With batch statistics, μ and invstd are recomputed from ``x`` so that their dependence on the input
    is recorded; with running statistics they are constants.
    """
    dims = _reduce_dims(x)
    if batch_stats:
        centred = x - x.mean(dim=dims, keepdim=True)
        invstd_b = torch.rsqrt(centred.square().mean(dim=dims, keepdim=True) + eps)
    else:
        centred = x - _per_channel(mean, x)
        invstd_b = _per_channel(invstd, x)
    x_hat = centred * invstd_b
    grad_bias = grad_out.sum(dim=dims)
    grad_weight = (grad_out * x_hat).sum(dim=dims)
    scale = invstd_b if weight is None else _per_channel(weight, x) * invstd_b
    if batch_stats:
        m = x.numel() // x.shape[1]
        projection = _per_channel(grad_bias, x) + x_hat * _per_channel(grad_weight, x)
        grad_in = scale * (grad_out - projection / m)
    else:
        grad_in = scale * grad_out
    return grad_in, (grad_weight if weight is not None else None), grad_bias


def _only_needed(grads: Sequence[torch.Tensor | None], needs: Sequence[bool]) -> tuple[torch.Tensor | None, ...]:
    return tuple(g if need else None for g, need in zip(grads, needs))


class _BatchStatsNorm(torch.autograd.Function):
    """Normalise with the batch statistics; returns ``(y, batch mean, biased batch variance)``."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, x: torch.Tensor, weight: torch.Tensor | None, bias: torch.Tensor | None, eps: float
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        m = x.numel() // x.shape[1]
        shift = _channel_sum(x).div_(m)  # s: the mean as first summed
        out = x - _per_channel(shift, x)  # c = x − s, then the output
        residual = _channel_sum(out).div_(m)  # r = mean(c): μ = s + r
        var = _channel_sum_of_squares(out).div_(m).sub_(residual.square()).clamp_(min=0)  # mean(c²) − r²
        invstd = var.add(eps).rsqrt_()
        _normalise_(out, residual, _scale(weight, invstd), bias)
        mean = shift + residual
        ctx.save_for_backward(x, weight, shift, residual, invstd)
        ctx.eps = eps
        ctx.mark_non_differentiable(mean, var)
        ctx.set_materialize_grads(False)
        return out, mean, var

    @staticmethod
    def backward(  # type: ignore[override]
        ctx: Any, grad_out: torch.Tensor | None, _grad_mean: Any, _grad_var: Any
    ) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None, None]:
        if grad_out is None:
            return None, None, None, None
        x, weight, shift, residual, invstd = ctx.saved_tensors
        needs = ctx.needs_input_grad[:3]
        # Autograd enables grad mode inside backward exactly when create_graph=True.
        if torch.is_grad_enabled():
            grads = _differentiable_backward(grad_out, x, weight, shift + residual, invstd, ctx.eps, True)
            return (*_only_needed(grads, needs), None)
        return (*_fast_backward(grad_out, x, weight, shift, residual, invstd, needs), None)


class _GivenStatsNorm(torch.autograd.Function):
    """Normalise with given (running) statistics, which are constants for autograd."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        x: torch.Tensor,
        weight: torch.Tensor | None,
        bias: torch.Tensor | None,
        mean: torch.Tensor,
        var: torch.Tensor,
        eps: float,
    ) -> torch.Tensor:
        mean = mean.to(x.dtype, copy=True)  # a private copy: later running-stat updates cannot break backward
        invstd = torch.rsqrt(var.to(x.dtype) + eps)
        out = _normalise_(x - _per_channel(mean, x), None, _scale(weight, invstd), bias)
        ctx.save_for_backward(x, weight, mean, invstd)
        ctx.eps = eps
        ctx.set_materialize_grads(False)
        return out

    @staticmethod
    def backward(  # type: ignore[override]
        ctx: Any, grad_out: torch.Tensor | None
    ) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None, None, None, None]:
        if grad_out is None:
            return None, None, None, None, None, None
        x, weight, mean, invstd = ctx.saved_tensors
        needs = ctx.needs_input_grad[:3]
        if torch.is_grad_enabled():  # create_graph=True: differentiable formulas
            grads = _differentiable_backward(grad_out, x, weight, mean, invstd, ctx.eps, False)
            return (*_only_needed(grads, needs), None, None, None)
        return (*_fast_backward(grad_out, x, weight, mean, None, invstd, needs), None, None, None)

# --------------------------------------------------------------------------------------------------
# Public API.
# --------------------------------------------------------------------------------------------------


def _new_batch_weight(
    momentum: float | None, convention: str, num_batches_tracked: torch.Tensor | None
) -> float:
    """How much the current batch counts in the running-statistics update, in either convention."""
    if momentum is None:
        assert num_batches_tracked is not None
        return 1.0 / float(num_batches_tracked)
    return momentum if convention == "torch" else 1.0 - momentum


@torch.no_grad()
def _update_running_stats(
    running_mean: torch.Tensor,
    running_var: torch.Tensor,
    mean: torch.Tensor,
    var: torch.Tensor,
    values_per_channel: int,
    weight_new: float,
    convention: str,
) -> None:
    if convention == "torch":
        var = var * (values_per_channel / (values_per_channel - 1))  # unbiased, as nn.BatchNorm stores it
    running_mean.lerp_(mean.to(running_mean.dtype), weight_new)
    running_var.lerp_(var.to(running_var.dtype), weight_new)


def batch_norm(
    x: torch.Tensor,
    gamma: torch.Tensor | None,
    beta: torch.Tensor | None,
    running_mean: torch.Tensor | None,
    running_var: torch.Tensor | None,
    *,
    training: bool,
    momentum: float | None,
    eps: float = 1e-5,
    convention: str = "torch",
    num_batches_tracked: torch.Tensor | None = None,
) -> torch.Tensor:
    """Batch-normalise ``x`` per channel (dimension 1), updating the running statistics in place.

    Batch statistics are used when ``training`` is true or no running statistics are given (PyTorch's
    rule); otherwise ``running_mean``/``running_var`` normalise. When training with running statistics,
    they are updated by the rule of ``convention`` (see the module docstring), and ``num_batches_tracked``,
    if given, is incremented first.

    Args:
        x: input of shape ``(N, C)``, ``(N, C, L)`` or ``(N, C, H, W)``; any memory format.
        gamma: per-channel scale ``(C,)``, or None for 1.
        beta: per-channel shift ``(C,)``, or None for 0.
        running_mean: running mean ``(C,)`` or None (then batch statistics are always used).
        running_var: running variance ``(C,)``; given together with ``running_mean``.
        training: normalise with (and learn from) the batch statistics.
        momentum: update weight in the convention's meaning — of the new batch for ``"torch"``, of the
            old value for ``"d2l"`` — or None for the cumulative average (needs ``num_batches_tracked``).
        eps: added to the variance before the square root.
        convention: ``"torch"`` or ``"d2l"``.
        num_batches_tracked: optional scalar counter of training batches, incremented in place.

    Returns:
        The normalised tensor, same shape (and memory format) as ``x``.

    Raises:
        ShapeError: for an input without a channel dimension, per-channel tensors of the wrong size, a
            batch with fewer than 2 values per channel when batch statistics are needed, only one of
            the running statistics, an unknown convention or a momentum outside [0, 1].

    Example:
        >>> x = torch.randn(8, 3, 5, 5)
        >>> mean, var = torch.zeros(3), torch.ones(3)
        >>> y = batch_norm(x, None, None, mean, var, training=True, momentum=0.1)
        >>> torch.allclose(y.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-6)
        True
        >>> torch.allclose(mean, 0.1 * x.mean(dim=(0, 2, 3)))
        True
    """
    _check_convention(convention)
    _check_momentum(momentum)
    _check_eps(eps)
    _check_input(x)
    channels = x.shape[1]
    for name, tensor in (("gamma", gamma), ("beta", beta), ("running_mean", running_mean),
                         ("running_var", running_var)):
        _check_per_channel(name, tensor, channels)
    if (running_mean is None) != (running_var is None):
        raise ShapeError(
            "batch_norm needs running_mean and running_var together, got only one of them; "
            "pass both (C,) tensors or neither."
        )
    if training and running_mean is not None and momentum is None and num_batches_tracked is None:
        raise ShapeError(
            "batch_norm with momentum=None (cumulative average) needs num_batches_tracked, got None; "
            "pass the counter tensor or a numeric momentum."
        )
    use_batch_stats = training or running_mean is None
    if not use_batch_stats:
        assert running_mean is not None and running_var is not None
        return _GivenStatsNorm.apply(x, gamma, beta, running_mean, running_var, eps)
    _check_batch_size(x, has_running_stats=running_mean is not None)
    out, mean, var = _BatchStatsNorm.apply(x, gamma, beta, eps)
    if training and running_mean is not None:
        assert running_var is not None
        if num_batches_tracked is not None:
            num_batches_tracked.add_(1)
        weight_new = _new_batch_weight(momentum, convention, num_batches_tracked)
        _update_running_stats(running_mean, running_var, mean, var, x.numel() // channels, weight_new,
                              convention)
    return out


class BatchNorm(nn.Module):
    """Batch normalisation over dimension 1, a drop-in for ``nn.BatchNorm1d``/``nn.BatchNorm2d``.

    Parameters ``weight`` and ``bias`` and buffers ``running_mean``, ``running_var`` and
    ``num_batches_tracked`` have torch's names, shapes and dtypes, so state dicts move between this
    layer and ``nn.BatchNorm*`` without key mapping. Training and evaluation follow ``module.training``;
    with ``track_running_stats=False`` the batch statistics are used in both modes, as in torch.

    Args:
        num_features: channels ``C``.
        num_dims: input rank: 2 for ``(N, C)``, 3 for ``(N, C, L)``, 4 for ``(N, C, H, W)``.
        momentum: update weight in the convention's meaning (default 0.1 for ``"torch"``, weighting the
            new batch; 0.9 for ``"d2l"``, weighting the old value); None for the cumulative average.
        eps: added to the variance before the square root.
        affine: learn ``weight`` (init 1) and ``bias`` (init 0).
        track_running_stats: keep running estimates for evaluation.
        convention: ``"torch"`` or ``"d2l"``; see the module docstring for the two update rules.
        device: where parameters and buffers are created.
        dtype: their floating-point type.

    Raises:
        ShapeError: for an unsupported ``num_dims`` or ``convention``, a bad momentum, and at call time
            for an input of the wrong rank or channel count or a training batch with one value per channel.

    Example:
        >>> bn = BatchNorm(6, num_dims=4)
        >>> bn(torch.randn(4, 6, 8, 8)).shape
        torch.Size([4, 6, 8, 8])
        >>> int(bn.num_batches_tracked), round(bn.momentum, 2)
        (1, 0.1)
        >>> sorted(BatchNorm(120, num_dims=2).state_dict())
        ['bias', 'num_batches_tracked', 'running_mean', 'running_var', 'weight']
    """

    _version = 2  # as nn.BatchNorm*: checkpoints of version < 2 have no num_batches_tracked

    def __init__(
        self,
        num_features: int,
        num_dims: int = 4,
        *,
        momentum: float | None | _Default = _Default.MOMENTUM,
        eps: float = 1e-5,
        affine: bool = True,
        track_running_stats: bool = True,
        convention: str = "torch",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        _check_convention(convention)
        if isinstance(num_dims, bool) or num_dims not in _SUPPORTED_DIMS:
            raise ShapeError(
                f"BatchNorm num_dims must be one of {list(_SUPPORTED_DIMS)}, got {num_dims!r}; use 2 after "
                "a linear layer (N, C) and 4 after a convolution (N, C, H, W)."
            )
        if isinstance(num_features, bool) or not isinstance(num_features, int) or num_features < 1:
            raise ShapeError(
                f"BatchNorm num_features must be a positive channel count, got {num_features!r}; "
                "pass the number of channels of the preceding layer."
            )
        if momentum is _Default.MOMENTUM:
            momentum = _DEFAULT_MOMENTUM[convention]
        _check_momentum(momentum)
        _check_eps(eps)
        _check_flag("affine", affine)
        _check_flag("track_running_stats", track_running_stats)
        factory = {"device": device, "dtype": dtype}
        self.num_features = num_features
        self.num_dims = num_dims
        self.momentum: float | None = momentum
        self.eps = eps
        self.affine = affine
        self.track_running_stats = track_running_stats
        self.convention = convention
        if affine:
            self.weight = nn.Parameter(torch.empty(num_features, **factory))
            self.bias = nn.Parameter(torch.empty(num_features, **factory))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", torch.zeros(num_features, **factory))
            self.register_buffer("running_var", torch.ones(num_features, **factory))
            self.register_buffer(
                "num_batches_tracked", torch.tensor(0, dtype=torch.long, device=device)
            )
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        self.reset_parameters()

    def reset_running_stats(self) -> None:
        """Running mean 0, running variance 1, no batches tracked."""
        if self.track_running_stats:
            self.running_mean.zero_()
            self.running_var.fill_(1)
            self.num_batches_tracked.zero_()

    def reset_parameters(self) -> None:
        """Reset the running statistics and set ``weight`` to 1 and ``bias`` to 0."""
        self.reset_running_stats()
        if self.affine:
            nn.init.ones_(self.weight)
            nn.init.zeros_(self.bias)

    def _check_input(self, x: torch.Tensor) -> None:
        if x.dim() != self.num_dims:
            raise ShapeError(
                f"BatchNorm(num_dims={self.num_dims}) expects a {self.num_dims}-dimensional input "
                f"{_LAYOUTS[self.num_dims]}, got shape {tuple(x.shape)}; reshape the input or build the "
                f"layer with num_dims={x.dim() if x.dim() in _SUPPORTED_DIMS else self.num_dims}."
            )
        if x.shape[1] != self.num_features:
            raise ShapeError(
                f"BatchNorm({self.num_features}) expects {self.num_features} channels in dimension 1, got "
                f"{x.shape[1]} in an input of shape {tuple(x.shape)}; match num_features to the preceding "
                "layer's output channels."
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise ``x``; in training mode with running statistics, update them too."""
        self._check_input(x)
        return batch_norm(
            x,
            self.weight,
            self.bias,
            self.running_mean,
            self.running_var,
            training=self.training,
            momentum=self.momentum,
            eps=self.eps,
            convention=self.convention,
            num_batches_tracked=self.num_batches_tracked,
        )

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, num_dims={self.num_dims}, eps={self.eps}, momentum={self.momentum}, "
            f"affine={self.affine}, track_running_stats={self.track_running_stats}, "
            f"convention={self.convention!r}"
        )

    def _load_from_state_dict(
        self,
        state_dict: dict[str, Any],
        prefix: str,
        local_metadata: dict[str, Any],
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        # Checkpoints written before num_batches_tracked existed (version < 2) load with a zero counter,
        # as they do into nn.BatchNorm*.
        version = local_metadata.get("version")
        key = prefix + "num_batches_tracked"
        if (version is None or version < 2) and self.track_running_stats and key not in state_dict:
            state_dict[key] = torch.tensor(0, dtype=torch.long)
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )
