"""The named blocks: the seeds' shape facts and properties over drawn shapes."""

from __future__ import annotations

import torch
from hypothesis import given
from hypothesis import strategies as st

from archbench.analysis.shapes import conv_output_size
from archbench.layers import BottleneckConv, DirectConv, InceptionA, Residual, SimpleResidualBlock

batches = st.integers(1, 3)
channels = st.integers(1, 24)
spatial = st.integers(1, 12)


def test_residual_keeps_shape_seed_fact() -> None:
    """Seed 004: Residual(3, 3) maps 4×3×6×6 to 4×3×6×6."""
    assert Residual(3, 3)(torch.rand(4, 3, 6, 6)).shape == (4, 3, 6, 6)


def test_strided_residual_seed_fact() -> None:
    """Seed 004: Residual(3, 6, use_1x1conv=True, stride=2) maps 4×3×6×6 to 4×6×3×3."""
    assert Residual(3, 6, use_1x1conv=True, stride=2)(torch.rand(4, 3, 6, 6)).shape == (4, 6, 3, 3)


def test_residual_without_projection_refuses_a_shape_change() -> None:
    try:
        Residual(3, 6)
    except ValueError as err:
        assert "use_1x1conv=True" in str(err)
    else:
        raise AssertionError("Residual(3, 6) without a projection should be refused")


@given(n=batches, c=channels, h=spatial, w=spatial, seed=st.integers(0, 2**16))
def test_inception_keeps_size_and_outputs_88(n: int, c: int, h: int, w: int, seed: int) -> None:
    torch.manual_seed(seed)
    block = InceptionA(c)
    assert block(torch.randn(n, c, h, w)).shape == (n, 88, h, w)


@given(n=batches, c=channels, h=spatial, w=spatial, seed=st.integers(0, 2**16))
def test_stride1_residual_blocks_keep_shape(n: int, c: int, h: int, w: int, seed: int) -> None:
    torch.manual_seed(seed)
    x = torch.randn(n, c, h, w)
    assert SimpleResidualBlock(c)(x).shape == x.shape
    assert Residual(c, c).eval()(x).shape == x.shape


@given(n=batches, cin=channels, cout=channels, h=spatial, w=spatial, stride=st.integers(1, 3))
def test_projected_residual_matches_conv_arithmetic(n: int, cin: int, cout: int, h: int, w: int, stride: int) -> None:
    block = Residual(cin, cout, use_1x1conv=True, stride=stride).eval()
    expected = (n, cout, conv_output_size(h, 3, stride, 1), conv_output_size(w, 3, stride, 1))
    assert block(torch.randn(n, cin, h, w)).shape == expected


def test_bottleneck_demo_modules_keep_28x28() -> None:
    x = torch.zeros(1, 192, 28, 28)
    assert DirectConv()(x).shape == BottleneckConv()(x).shape == (1, 32, 28, 28)
    direct = sum(p.numel() for p in DirectConv().parameters())
    bottleneck = sum(p.numel() for p in BottleneckConv().parameters())
    assert direct == 5 * 5 * 192 * 32 + 32
    assert bottleneck == (192 * 16 + 16) + (5 * 5 * 16 * 32 + 32)
