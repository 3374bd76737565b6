"""Closed forms that the networks' figures are written in: parameters and MACs of one layer at a time.

Each network module writes its expected parameter count (and, where it is short, its MAC count) as a sum of
these per-layer terms, read off the architecture's description rather than off the built module, so the
registry's :class:`~archbench.registry.Figure` values are an independent witness of the code.

Example:
    >>> conv(1, 6, 5) + conv(6, 16, 5) + linear(400, 120) + linear(120, 84) + linear(84, 10)
    61706
    >>> conv_macs(1, 6, 5, 28) + conv_macs(6, 16, 5, 10) + linear_macs(400, 120)
    405600
"""

from __future__ import annotations


def conv(cin: int, cout: int, k: int, bias: bool = True) -> int:
    """Parameters of a k×k convolution: ``cout × cin × k × k`` weights (+ ``cout`` biases)."""
    return cout * cin * k * k + (cout if bias else 0)


def linear(fin: int, fout: int, bias: bool = True) -> int:
    """Parameters of a fully connected layer: ``fin × fout`` weights (+ ``fout`` biases)."""
    return fin * fout + (fout if bias else 0)


def bn(channels: int) -> int:
    """Parameters of a BatchNorm: weight and bias per channel (running statistics are buffers)."""
    return 2 * channels


def conv_macs(cin: int, cout: int, k: int, out_hw: int) -> int:
    """MACs of a k×k convolution with a square ``out_hw`` × ``out_hw`` output, one image."""
    return cout * out_hw * out_hw * cin * k * k


def linear_macs(fin: int, fout: int) -> int:
    """MACs of a fully connected layer, one sample."""
    return fin * fout


def out_size(size: int, k: int, stride: int = 1, padding: int = 0) -> int:
    """Output length of a convolution or pooling (floor mode): ``(size + 2p − k) // s + 1``."""
    return (size + 2 * padding - k) // stride + 1
