"""The seeds' two cost arguments, computed by the counters of :mod:`archbench.analysis.counts`.

* The 1×1 bottleneck (seed 002): a 5×5 convolution 192→32 on 28×28 costs 120,422,400 MACs; reducing to 16
  channels with a 1×1 convolution first costs 2,408,448 + 10,035,200 = 12,443,648 MACs, 9.68× fewer.
* The fully connected argument for convolutions: a dense layer from a 1000×1000 RGB image to 256 outputs
  holds 768,000,000 weights (plus 256 biases), about 3 GB in float32. The layer is built on the ``meta``
  device, so nothing is allocated; the bottleneck figures are closed forms, so any size answers at once.

Example:
    >>> c = bottleneck_comparison()
    >>> c.direct_macs, c.bottleneck_macs, round(c.mac_ratio, 2)
    (120422400, 12443648, 9.68)
    >>> dense_layer_cost().weights
    768000000
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from torch import nn

from archbench.analysis.counts import METHODS, count_macs, count_params
from archbench.errors import ArchbenchError


@dataclass(frozen=True)
class BottleneckComparison:
    """A k×k convolution against a 1×1 reduction followed by the same k×k convolution.

    Attributes:
        in_channels, mid_channels, out_channels: channels in, after the 1×1 reduction, out.
        size: H = W of the input (kept by both designs).
        kernel: the large kernel (odd).
        batch: images per batch.
        method: the counter used.
        direct_macs, bottleneck_macs: multiply-accumulates of each design.
        reduce_macs: the 1×1 convolution's share of ``bottleneck_macs``.
        direct_params, bottleneck_params: parameters of each design (biases included).
    """

    in_channels: int
    mid_channels: int
    out_channels: int
    size: int
    kernel: int
    batch: int
    method: str
    direct_macs: int
    bottleneck_macs: int
    reduce_macs: int
    direct_params: int
    bottleneck_params: int

    @property
    def mac_ratio(self) -> float:
        """How many times cheaper the bottleneck is in MACs."""
        return self.direct_macs / self.bottleneck_macs

    @property
    def param_ratio(self) -> float:
        """How many times fewer parameters the bottleneck has."""
        return self.direct_params / self.bottleneck_params


def _check_sizes(**values: int) -> None:
    for name, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ArchbenchError(f"{name} must be a positive integer, got {value!r}.")


def bottleneck_comparison(
    in_channels: int = 192,
    mid_channels: int = 16,
    out_channels: int = 32,
    *,
    size: int = 28,
    kernel: int = 5,
    batch: int = 1,
    method: str = "analytic",
) -> BottleneckComparison:
    """Cost of ``DirectConv`` against ``BottleneckConv`` (archbench.layers.blocks), both keeping H×W.

    Args:
        in_channels: input channels (192 in the seed).
        mid_channels: channels after the 1×1 reduction (16).
        out_channels: output channels (32).
        size: input height and width (28).
        kernel: odd kernel size of the large convolution (5); padding ``kernel // 2`` keeps the size.
        batch: images per batch.
        method: counter, as in :func:`~archbench.analysis.counts.count_macs`.

    With ``method="analytic"`` the counts are closed forms (``batch·size²`` output pixels times the
    multiply-adds per pixel; the tests check them against :func:`count_macs` on built layers), so nothing is
    allocated; ``"fvcore"`` and ``"torch"`` build and run the layers, and refuse sizes needing over 1 GiB.

    Raises:
        ArchbenchError: for a size that is not a positive integer, an even kernel, an unknown method, or
            sizes too large for a counter that builds the layers.

    Example:
        >>> bottleneck_comparison(256, 64, 256, size=14, kernel=3).mac_ratio > 1
        True
    """
    _check_sizes(in_channels=in_channels, mid_channels=mid_channels, out_channels=out_channels, size=size,
                 kernel=kernel, batch=batch)  # fmt: skip
    if kernel % 2 == 0:
        raise ArchbenchError(f"kernel must be odd so that padding kernel // 2 keeps the size, got {kernel}.")
    if method not in METHODS:
        raise ArchbenchError(f"Unknown counting method {method!r}; use one of {', '.join(METHODS)}.")
    if method == "analytic":  # closed forms: nothing is built, so any size answers at once
        pixels = batch * size * size
        return BottleneckComparison(
            in_channels, mid_channels, out_channels, size, kernel, batch, method,
            direct_macs=pixels * out_channels * in_channels * kernel**2,
            bottleneck_macs=pixels * mid_channels * (in_channels + out_channels * kernel**2),
            reduce_macs=pixels * mid_channels * in_channels,
            direct_params=out_channels * (in_channels * kernel**2 + 1),
            bottleneck_params=mid_channels * (in_channels + 1) + out_channels * (mid_channels * kernel**2 + 1),
        )  # fmt: skip
    return _counted_comparison(in_channels, mid_channels, out_channels, size, kernel, batch, method)


#: The most memory the fvcore and torch counters may allocate for the two designs (they build real layers).
MAX_COUNTER_BYTES = 2**30


def _counted_comparison(
    in_channels: int, mid_channels: int, out_channels: int, size: int, kernel: int, batch: int, method: str
) -> BottleneckComparison:
    """The same comparison through a counter that runs the layers (fvcore or FlopCounterMode)."""
    from archbench.layers.blocks import BottleneckConv, DirectConv

    weights = out_channels * in_channels * kernel**2 + mid_channels * (in_channels + out_channels * kernel**2)
    activations = batch * size * size * (in_channels + mid_channels + 2 * out_channels)
    needed = 4 * (weights + activations)
    if needed > MAX_COUNTER_BYTES:
        raise ArchbenchError(
            f"The {method} counter would allocate about {needed / 2**30:,.1f} GiB of float32 weights and activations "
            f"for these sizes (limit {MAX_COUNTER_BYTES / 2**30:.0f} GiB); use method 'analytic', which is a closed form."
        )
    shape = (batch, in_channels, size, size)
    direct = DirectConv(in_channels, out_channels, kernel)  # on the CPU: fvcore cannot trace meta convolutions
    bottleneck = BottleneckConv(in_channels, mid_channels, out_channels, kernel)
    direct_count = count_macs(direct, shape, method)
    bottleneck_count = count_macs(bottleneck, shape, method)
    reduce = next(r.macs for r in bottleneck_count.layers if r.name == "reduce")
    return BottleneckComparison(
        in_channels, mid_channels, out_channels, size, kernel, batch, method,
        direct_macs=direct_count.total,
        bottleneck_macs=bottleneck_count.total,
        reduce_macs=reduce,
        direct_params=count_params(direct),
        bottleneck_params=count_params(bottleneck),
    )  # fmt: skip


@dataclass(frozen=True)
class DenseLayerCost:
    """A fully connected layer applied to a whole flattened image.

    Attributes:
        image_shape: (C, H, W) of the image.
        out_features: outputs of the layer.
        weights: ``C·H·W × out_features``.
        biases: ``out_features``.
        macs: multiply-accumulates for one image (equal to ``weights``).
        method: the counter used.
    """

    image_shape: tuple[int, ...]
    out_features: int
    weights: int
    biases: int
    macs: int
    method: str

    @property
    def params(self) -> int:
        """Weights plus biases."""
        return self.weights + self.biases

    @property
    def float32_bytes(self) -> int:
        """Memory of the parameters in float32 (4 bytes each)."""
        return 4 * self.params


def dense_layer_cost(
    image_shape: Sequence[int] = (3, 1000, 1000), out_features: int = 256, *, method: str = "analytic"
) -> DenseLayerCost:
    """Parameters and MACs of ``nn.Linear(C·H·W, out_features)`` on one image, built on the meta device.

    Args:
        image_shape: (C, H, W); the seeds' 1000×1000 RGB image by default.
        out_features: width of the layer (256).
        method: counter, as in :func:`~archbench.analysis.counts.count_macs`.

    Example:
        >>> cost = dense_layer_cost()
        >>> cost.params, round(cost.float32_bytes / 1e9, 2)
        (768000256, 3.07)
    """
    if isinstance(image_shape, (str, bytes)) or not isinstance(image_shape, Sequence) or not image_shape:
        raise ArchbenchError(f"image_shape must be a sequence of sizes such as (3, 1000, 1000), got {image_shape!r}.")
    shape = tuple(image_shape)
    _check_sizes(out_features=out_features, **{f"image_shape[{i}]": s for i, s in enumerate(shape)})
    if method not in METHODS:
        raise ArchbenchError(f"Unknown counting method {method!r}; use one of {', '.join(METHODS)}.")
    features = math.prod(shape)
    if method == "analytic":  # closed form: one multiply-accumulate per weight
        weights = features * out_features
        return DenseLayerCost(shape, out_features, weights, out_features, weights, method)
    if features * out_features >= 2**62:
        raise ArchbenchError(
            f"A {features:,}×{out_features:,} layer is too large for the {method} counter; use method 'analytic'."
        )
    layer = nn.Sequential(nn.Flatten(), nn.Linear(features, out_features, device="meta"))
    count = count_macs(layer, (1, *shape), method)
    linear = layer[1]
    return DenseLayerCost(shape, out_features, linear.weight.numel(), linear.bias.numel(), count.total, method)
