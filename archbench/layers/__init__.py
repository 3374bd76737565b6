"""Layers and blocks: hand-written BatchNorm and the seed networks' named blocks."""

from archbench.layers.batchnorm import BatchNorm, batch_norm
from archbench.layers.blocks import (
    Bottleneck,
    BottleneckConv,
    ConvUnit,
    DenseBlock,
    DenseLayer,
    DirectConv,
    Inception,
    InceptionA,
    NiNBlock,
    Residual,
    SimpleResidualBlock,
    Transition,
    vgg_block,
)

__all__ = [
    "BatchNorm",
    "Bottleneck",
    "BottleneckConv",
    "ConvUnit",
    "DenseBlock",
    "DenseLayer",
    "DirectConv",
    "Inception",
    "InceptionA",
    "NiNBlock",
    "Residual",
    "SimpleResidualBlock",
    "Transition",
    "batch_norm",
    "vgg_block",
]
