"""The LeNet family: five variants of two conv blocks followed by three fully connected layers.

Each variant is one :class:`LeNetConfig`; the first linear layer's width is derived from the config by
shape arithmetic, so a typo such as seed 000's ``Linear(1655, 120)`` cannot happen here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import nn

from archbench.sizes import conv_output_size, pool_output_size
from archbench.layers.batchnorm import BatchNorm
from archbench.models.arithmetic import bn, conv, conv_macs, linear, linear_macs
from archbench.registry import Figure, ModelSpec, register_model


@dataclass(frozen=True)
class LeNetConfig:
    """Hyperparameters of a LeNet variant.

    Attributes:
        in_channels: image channels.
        image_size: H = W of the input.
        channels: output channels of the two convolutions.
        kernel: convolution kernel size.
        conv1_padding: padding of the first convolution (2 keeps 28×28 in the d2l version).
        activation: ``"sigmoid"`` or ``"relu"``.
        pool: ``"avg"`` or ``"max"`` (2×2, stride 2).
        norm: ``None``, ``"ours"`` (archbench's BatchNorm) or ``"torch"`` (``nn.BatchNorm*``).
        hidden: widths of the two hidden fully connected layers.
        num_classes: output width.
    """

    in_channels: int = 1
    image_size: int = 28
    channels: tuple[int, int] = (6, 16)
    kernel: int = 5
    conv1_padding: int = 2
    activation: str = "sigmoid"
    pool: str = "avg"
    norm: str | None = None
    hidden: tuple[int, int] = (120, 84)
    num_classes: int = 10

    def flat_features(self) -> int:
        """Features after the second pooling layer: C × H × W by closed form."""
        size = conv_output_size(self.image_size, self.kernel, padding=self.conv1_padding)
        size = pool_output_size(size, 2, 2)
        size = pool_output_size(conv_output_size(size, self.kernel), 2, 2)
        return self.channels[1] * size * size


_ACTIVATIONS = {"sigmoid": nn.Sigmoid, "relu": nn.ReLU}
_POOLS = {"avg": nn.AvgPool2d, "max": nn.MaxPool2d}


def _norm(kind: str | None, features: int, conv: bool) -> nn.Module:
    if kind is None:
        return nn.Identity()
    if kind == "ours":
        return BatchNorm(features, num_dims=4 if conv else 2)
    if kind == "torch":
        return nn.BatchNorm2d(features) if conv else nn.BatchNorm1d(features)
    raise ValueError(f"LeNetConfig.norm must be None, 'ours' or 'torch', got {kind!r}.")


class LeNet(nn.Module):
    """conv-norm-act-pool ×2, flatten, then linear-norm-act ×2 and a linear classifier (logits).

    Args:
        config: the variant.

    Example:
        >>> LeNet(LeNetConfig())(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 10])
    """

    composition = "in_order"  # how forward uses the children: archbench.analysis.rules.COMPOSITIONS

    def __init__(self, config: LeNetConfig) -> None:
        super().__init__()
        if config.activation not in _ACTIVATIONS or config.pool not in _POOLS:
            raise ValueError(
                f"LeNetConfig needs activation in {sorted(_ACTIVATIONS)} and pool in {sorted(_POOLS)}, "
                f"got {config.activation!r} and {config.pool!r}."
            )
        self.config = config
        c1, c2 = config.channels
        h1, h2 = config.hidden
        act, pool = _ACTIVATIONS[config.activation], _POOLS[config.pool]
        self.conv1 = nn.Conv2d(config.in_channels, c1, config.kernel, padding=config.conv1_padding)
        self.norm1 = _norm(config.norm, c1, conv=True)
        self.act1 = act()
        self.pool1 = pool(kernel_size=2, stride=2)
        self.conv2 = nn.Conv2d(c1, c2, config.kernel)
        self.norm2 = _norm(config.norm, c2, conv=True)
        self.act2 = act()
        self.pool2 = pool(kernel_size=2, stride=2)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(config.flat_features(), h1)
        self.norm3 = _norm(config.norm, h1, conv=False)
        self.act3 = act()
        self.fc2 = nn.Linear(h1, h2)
        self.norm4 = _norm(config.norm, h2, conv=False)
        self.act4 = act()
        self.fc3 = nn.Linear(h2, config.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(self.act1(self.norm1(self.conv1(x))))
        x = self.pool2(self.act2(self.norm2(self.conv2(x))))
        x = self.flatten(x)  # (N, C, H, W) -> (N, C*H*W), e.g. (N, 16, 5, 5) -> (N, 400)
        x = self.act3(self.norm3(self.fc1(x)))
        x = self.act4(self.norm4(self.fc2(x)))
        return self.fc3(x)


# --- facts, each from outside the class above (DESIGN.md's table and the seeds) ----------------------------
_CONVS = conv(1, 6, 5) + conv(6, 16, 5)
_HEAD_400 = linear(400, 120) + linear(120, 84) + linear(84, 10)
_HEAD_256 = linear(256, 120) + linear(120, 84) + linear(84, 10)
_BNS = bn(6) + bn(16) + bn(120) + bn(84)
_FC_MACS_400 = linear_macs(400, 120) + linear_macs(120, 84) + linear_macs(84, 10)
_FC_MACS_256 = linear_macs(256, 120) + linear_macs(120, 84) + linear_macs(84, 10)
_UNPADDED_MACS = conv_macs(1, 6, 5, 24) + conv_macs(6, 16, 5, 8) + _FC_MACS_256  # 28 -> 24 -> 12 -> 8 -> 4


def _figures(params: int, macs: int) -> tuple[Figure, ...]:
    return (Figure("params", params, "closed form per layer"), Figure("macs", macs, "closed form per layer"))


_D2L = LeNetConfig()
_RELU_MAX = replace(_D2L, conv1_padding=0, activation="relu", pool="max")
_BN = replace(_D2L, conv1_padding=0)


@register_model(
    ModelSpec(
        name="lenet5",
        input_shape=(1, 28, 28),
        num_classes=10,
        source="seed 000 (d2l LeNet on Fashion-MNIST)",
        description="LeNet-5, d2l form: sigmoid, average pooling, first conv padded to keep 28x28",
        flat_features=400,
        layer_shapes={"conv1": (6, 28, 28), "pool1": (6, 14, 14), "conv2": (16, 10, 10), "pool2": (16, 5, 5)},
        figures=_figures(_CONVS + _HEAD_400, conv_macs(1, 6, 5, 28) + conv_macs(6, 16, 5, 10) + _FC_MACS_400),
    )
)
def lenet5(*, num_classes: int = 10) -> LeNet:
    """LeNet-5 as in d2l: 1×28×28 → 6×28×28 → 6×14×14 → 16×10×10 → 16×5×5 → 400 → 120 → 84 → 10."""
    return LeNet(replace(_D2L, num_classes=num_classes))


@register_model(
    ModelSpec(
        name="lenet5_classic",
        input_shape=(1, 32, 32),
        num_classes=10,
        source="seed 001 (PyTorch tutorial LeNet)",
        description="LeNet-5 on 32x32 input: ReLU, max pooling, no padding",
        flat_features=400,
        layer_shapes={"conv1": (6, 28, 28), "pool1": (6, 14, 14), "conv2": (16, 10, 10), "pool2": (16, 5, 5)},
        figures=_figures(_CONVS + _HEAD_400, conv_macs(1, 6, 5, 28) + conv_macs(6, 16, 5, 10) + _FC_MACS_400),
    )
)
def lenet5_classic(*, num_classes: int = 10) -> LeNet:
    """LeNet-5 of the PyTorch tutorial: 32×32 input, ReLU and max pooling, 16×5×5 = 400 features."""
    return LeNet(replace(_RELU_MAX, image_size=32, num_classes=num_classes))


@register_model(
    ModelSpec(
        name="lenet5_relu",
        input_shape=(1, 28, 28),
        num_classes=10,
        source="seed 003 (LeNet on MNIST, softmax removed)",
        description="LeNet-5 on 28x28: ReLU, max pooling, no padding, logits out",
        flat_features=256,
        layer_shapes={"conv1": (6, 24, 24), "pool1": (6, 12, 12), "conv2": (16, 8, 8), "pool2": (16, 4, 4)},
        figures=_figures(_CONVS + _HEAD_256, _UNPADDED_MACS),
    )
)
def lenet5_relu(*, num_classes: int = 10) -> LeNet:
    """LeNet-5 on unpadded 28×28 input with ReLU: 16×4×4 = 256 features, logits (no softmax)."""
    return LeNet(replace(_RELU_MAX, num_classes=num_classes))


_BN_SHAPES = {"conv1": (6, 24, 24), "pool1": (6, 12, 12), "conv2": (16, 8, 8), "pool2": (16, 4, 4)}


@register_model(
    ModelSpec(
        name="lenet5_bn",
        input_shape=(1, 28, 28),
        num_classes=10,
        source="seed 004 (d2l batch normalization)",
        description="LeNet-5 with archbench's hand-written BatchNorm after each conv and hidden linear",
        flat_features=256,
        layer_shapes=_BN_SHAPES,
        figures=_figures(_CONVS + _HEAD_256 + _BNS, _UNPADDED_MACS),
    )
)
def lenet5_bn(*, num_classes: int = 10) -> LeNet:
    """LeNet-5 (unpadded, sigmoid, average pooling) with our BatchNorm: 16×4×4 = 256 features."""
    return LeNet(replace(_BN, norm="ours", num_classes=num_classes))


@register_model(
    ModelSpec(
        name="lenet5_bn_torch",
        input_shape=(1, 28, 28),
        num_classes=10,
        source="seed 004 (d2l batch normalization)",
        description="LeNet-5 with torch.nn.BatchNorm1d/2d after each conv and hidden linear",
        flat_features=256,
        layer_shapes=_BN_SHAPES,
        figures=_figures(_CONVS + _HEAD_256 + _BNS, _UNPADDED_MACS),
    )
)
def lenet5_bn_torch(*, num_classes: int = 10) -> LeNet:
    """The same network as ``lenet5_bn`` with PyTorch's BatchNorm, for comparison."""
    return LeNet(replace(_BN, norm="torch", num_classes=num_classes))
