"""Closed-form conv/pool output sizes against what PyTorch produces, and the layer trace."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given
from hypothesis import strategies as st

from archbench.analysis.shapes import conv_output_shape, conv_output_size, pool_output_shape, pool_output_size
from archbench.errors import ShapeError

sizes = st.integers(1, 24)
kernels = st.integers(1, 7)
strides = st.integers(1, 4)
paddings = st.integers(0, 4)
dilations = st.integers(1, 3)


def _torch_or_error(fn):  # PyTorch's answer: a shape, or None when it refuses
    try:
        return tuple(fn().shape[2:])
    except RuntimeError:
        return None


def _ours_or_error(fn):
    try:
        return fn()
    except ShapeError:
        return None


@given(h=sizes, w=sizes, kh=kernels, kw=kernels, s=strides, p=paddings, d=dilations)
def test_conv2d_output_size_matches_torch(h: int, w: int, kh: int, kw: int, s: int, p: int, d: int) -> None:
    x = torch.zeros(1, 1, h, w)
    weight = torch.zeros(1, 1, kh, kw)
    theirs = _torch_or_error(lambda: F.conv2d(x, weight, stride=s, padding=p, dilation=d))
    ours = _ours_or_error(lambda: conv_output_shape((h, w), (kh, kw), s, p, d))
    assert ours == theirs


@given(h=sizes, k=kernels, s=strides, p=paddings, d=dilations, ceil=st.booleans())
def test_max_pool_output_size_matches_torch(h: int, k: int, s: int, p: int, d: int, ceil: bool) -> None:
    x = torch.zeros(1, 1, h, 8)
    theirs = _torch_or_error(
        lambda: F.max_pool2d(x, (k, 1), stride=(s, 1), padding=(p, 0), dilation=(d, 1), ceil_mode=ceil)
    )
    ours = _ours_or_error(lambda: pool_output_size(h, k, s, p, d, ceil))
    assert ours == (None if theirs is None else theirs[0])


@given(h=sizes, w=sizes, k=kernels, s=strides, p=paddings, ceil=st.booleans())
def test_avg_pool_output_size_matches_torch(h: int, w: int, k: int, s: int, p: int, ceil: bool) -> None:
    x = torch.zeros(1, 1, h, w)
    theirs = _torch_or_error(lambda: F.avg_pool2d(x, k, stride=s, padding=p, ceil_mode=ceil))
    ours = _ours_or_error(lambda: pool_output_shape((h, w), k, s, p, 1, ceil))
    assert ours == theirs


@given(size=sizes, k=kernels, s=strides, p=paddings, d=dilations)
def test_valid_conv_sizes_follow_the_formula(size: int, k: int, s: int, p: int, d: int) -> None:
    assume(size + 2 * p >= d * (k - 1) + 1)
    assert conv_output_size(size, k, s, p, d) == (size + 2 * p - d * (k - 1) - 1) // s + 1


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: conv_output_size(4, kernel=5), "smaller than the kernel"),
        (lambda: conv_output_size(0, kernel=1), "size must be a positive integer"),
        (lambda: conv_output_size(8, kernel=3, stride=0), "stride must be a positive integer"),
        (lambda: conv_output_size(8, kernel=3, padding=-1), "padding must be a non-negative"),
        (lambda: pool_output_size(8, kernel=2, padding=2), "exceeds half the kernel"),
        (lambda: pool_output_size(1, kernel=3, stride=1), "does not fit"),
    ],
)
def test_invalid_sizes_are_rejected_with_our_error(call, message: str) -> None:
    with pytest.raises(ShapeError, match=message):
        call()


def test_seed_examples() -> None:
    assert conv_output_size(28, 5, padding=2) == 28  # lenet5's first conv keeps 28×28
    assert pool_output_size(28, 2, 2) == 14
    assert conv_output_size(14, 5) == 10
    assert pool_output_size(10, 2, 2) == 5  # 16×5×5 = 400
    assert conv_output_size(224, 7, stride=2, padding=3) == 112
    assert pool_output_size(112, 3, 2, padding=1) == 56


def test_a_missing_batch_dimension_is_named() -> None:
    """Flatten keeps dim 0 as the batch: (3, 4) gives 4 features, (1, 3, 4) gives the 12 that Linear(12) takes."""
    from torch import nn

    from archbench.analysis import check_input

    result = check_input(nn.Sequential(nn.Flatten(), nn.Linear(12, 2)), (3, 4))
    assert not result.ok and result.message.endswith("a leading batch of 1 fits: (1, 3, 4).")
    assert "\n" not in result.message
    unrelated = check_input(nn.Sequential(nn.Flatten(), nn.Linear(13, 2)), (3, 4))  # 12 features either way
    assert not unrelated.ok and "leading batch" not in unrelated.message
