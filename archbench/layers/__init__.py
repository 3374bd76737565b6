"""Layers and blocks: hand-written BatchNorm and the seed networks' named blocks."""

from archbench.layers.batchnorm import BatchNorm, batch_norm
from archbench.layers.blocks import BottleneckConv, DirectConv, InceptionA, Residual, SimpleResidualBlock

__all__ = [
    "BatchNorm",
    "BottleneckConv",
    "DirectConv",
    "InceptionA",
    "Residual",
    "SimpleResidualBlock",
    "batch_norm",
]
