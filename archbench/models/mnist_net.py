"""The network of PyTorch's MNIST example (seed 001): two conv blocks with dropout, log-softmax out."""

from __future__ import annotations

import torch
from torch import nn

from archbench.models.arithmetic import conv, conv_macs, linear, linear_macs
from archbench.registry import Figure, ModelSpec, register_model


class MnistNet(nn.Module):
    """conv 1→10 k5, max-pool, ReLU · conv 10→20 k5, Dropout2d, max-pool, ReLU · 320→50→10, log-softmax.

    The output is log-probabilities: train it with ``nn.NLLLoss`` (CrossEntropyLoss would apply a second
    log-softmax, which is harmless here only because log-softmax is idempotent).

    Args:
        num_classes: output width.
        dropout: drop probability of both dropout layers.

    Example:
        >>> MnistNet()(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 10])
    """

    composition = "in_order"  # how forward uses the children: archbench.analysis.rules.COMPOSITIONS

    def __init__(self, num_classes: int = 10, dropout: float = 0.5) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 10, kernel_size=5)
        self.pool1 = nn.MaxPool2d(2)
        self.act1 = nn.ReLU()
        self.conv2 = nn.Conv2d(10, 20, kernel_size=5)
        self.conv2_drop = nn.Dropout2d(dropout)
        self.pool2 = nn.MaxPool2d(2)
        self.act2 = nn.ReLU()
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(320, 50)
        self.act3 = nn.ReLU()
        self.drop = nn.Dropout(dropout)
        self.fc2 = nn.Linear(50, num_classes)
        self.log_softmax = nn.LogSoftmax(dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act1(self.pool1(self.conv1(x)))
        x = self.act2(self.pool2(self.conv2_drop(self.conv2(x))))
        x = self.flatten(x)  # (N, 20, 4, 4) -> (N, 320)
        x = self.drop(self.act3(self.fc1(x)))
        return self.log_softmax(self.fc2(x))


@register_model(
    ModelSpec(
        name="mnist_net",
        input_shape=(1, 28, 28),
        num_classes=10,
        source="seed 001 (PyTorch MNIST example)",
        description="PyTorch's MNIST example net: pool before ReLU, Dropout2d, 320->50->10, log-softmax",
        flat_features=320,
        output="log_probs",
        layer_shapes={"conv1": (10, 24, 24), "pool1": (10, 12, 12), "conv2": (20, 8, 8), "pool2": (20, 4, 4)},
        figures=(  # seed 001's layers: conv 1→10 k5 on 28², conv 10→20 k5 on 12², 320→50→10
            Figure("params", conv(1, 10, 5) + conv(10, 20, 5) + linear(320, 50) + linear(50, 10), "closed form per layer"),
            Figure(
                "macs",
                conv_macs(1, 10, 5, 24) + conv_macs(10, 20, 5, 8) + linear_macs(320, 50) + linear_macs(50, 10),
                "closed form per layer",
            ),
        ),
    )
)
def mnist_net(*, num_classes: int = 10, dropout: float = 0.5) -> MnistNet:
    """The PyTorch MNIST example network (outputs log-probabilities)."""
    return MnistNet(num_classes=num_classes, dropout=dropout)
