"""A small Inception network for MNIST (seed 002): two conv layers each followed by an InceptionA block."""

from __future__ import annotations

import torch
from torch import nn

from archbench.layers.blocks import InceptionA
from archbench.models.arithmetic import conv, linear
from archbench.registry import Figure, ModelSpec, register_model


class InceptionNet(nn.Module):
    """conv 1→10 k5, pool, ReLU · InceptionA · conv 88→20 k5, pool, ReLU · InceptionA · 1408→10.

    Args:
        num_classes: output width.

    Example:
        >>> InceptionNet()(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 10])
    """

    composition = "in_order"  # how forward uses the children: archbench.analysis.rules.COMPOSITIONS

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        width = InceptionA.out_channels  # 16 + 24 + 24 + 24 = 88
        self.conv1 = nn.Conv2d(1, 10, kernel_size=5)
        self.pool1 = nn.MaxPool2d(2)
        self.act1 = nn.ReLU()
        self.incep1 = InceptionA(10)
        self.conv2 = nn.Conv2d(width, 20, kernel_size=5)
        self.pool2 = nn.MaxPool2d(2)
        self.act2 = nn.ReLU()
        self.incep2 = InceptionA(20)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(width * 4 * 4, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.incep1(self.act1(self.pool1(self.conv1(x))))  # (N, 88, 12, 12)
        x = self.incep2(self.act2(self.pool2(self.conv2(x))))  # (N, 88, 4, 4)
        return self.fc(self.flatten(x))  # (N, 88, 4, 4) -> (N, 1408) -> (N, 10)


# --- facts, each from outside the class above (seed 002) ------------------------------------------------
def _inception_a_params(c: int) -> int:
    one_by_one = conv(c, 16, 1)
    five = conv(c, 16, 1) + conv(16, 24, 5)
    three = conv(c, 16, 1) + conv(16, 24, 3) + conv(24, 24, 3)
    pool = conv(c, 24, 1)
    return one_by_one + five + three + pool


PARAMS = conv(1, 10, 5) + _inception_a_params(10) + conv(88, 20, 5) + _inception_a_params(20) + linear(1408, 10)


@register_model(
    ModelSpec(
        name="inception_net",
        input_shape=(1, 28, 28),
        num_classes=10,
        source="seed 002 (Inception module on MNIST)",
        description="Two conv layers each followed by an InceptionA block (88 channels), 1408->10",
        flat_features=1408,
        layer_shapes={"incep1": (88, 12, 12), "conv2": (20, 8, 8), "incep2": (88, 4, 4)},
        figures=(Figure("params", PARAMS, "closed form per layer"),),
    )
)
def inception_net(*, num_classes: int = 10) -> InceptionNet:
    """The seed's Inception network for MNIST."""
    return InceptionNet(num_classes=num_classes)
