"""Residual networks: the seed's small residual net for MNIST and ResNet-18.

ResNet-18 comes in two variants that share one class:

* ``"d2l"`` (seed 004): convolutions with bias, 1×1 projection shortcuts without BatchNorm,
  single-channel 96×96 input, 10 classes.
* ``"torchvision"``: bias-free convolutions and a BatchNorm after each projection; module and
  parameter names match ``torchvision.models.resnet18`` so its ``state_dict`` loads without mapping.
"""

from __future__ import annotations

import torch
from torch import nn

from archbench.errors import ArchbenchError
from archbench.layers.blocks import Residual, SimpleResidualBlock
from archbench.registry import ModelSpec, register_model


class ResidualNet(nn.Module):
    """conv 1→16 k5, ReLU, pool · residual block · conv 16→32 k5, ReLU, pool · residual block · 512→10.

    Args:
        num_classes: output width.

    Example:
        >>> ResidualNet()(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 10])
    """

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, kernel_size=5)
        self.act1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)
        self.rblock1 = SimpleResidualBlock(16)
        self.conv2 = nn.Conv2d(16, 32, kernel_size=5)
        self.act2 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(2)
        self.rblock2 = SimpleResidualBlock(32)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.rblock1(self.pool1(self.act1(self.conv1(x))))  # (N, 16, 12, 12)
        x = self.rblock2(self.pool2(self.act2(self.conv2(x))))  # (N, 32, 4, 4)
        return self.fc(self.flatten(x))  # (N, 32, 4, 4) -> (N, 512) -> (N, 10)


class ResNet(nn.Module):
    """ResNet with basic blocks: 7×7/2 stem, 3×3/2 max-pool, four stages, global average pool, linear.

    Args:
        blocks_per_stage: residual blocks in each of the four stages (2, 2, 2, 2 for ResNet-18).
        in_channels: image channels.
        num_classes: output width.
        variant: ``"d2l"`` or ``"torchvision"`` (see the module docstring).

    Example:
        >>> ResNet((2, 2, 2, 2))(torch.zeros(1, 1, 96, 96)).shape
        torch.Size([1, 10])
    """

    widths = (64, 128, 256, 512)

    def __init__(
        self,
        blocks_per_stage: tuple[int, ...] = (2, 2, 2, 2),
        *,
        in_channels: int = 1,
        num_classes: int = 10,
        variant: str = "d2l",
    ) -> None:
        super().__init__()
        if variant not in ("d2l", "torchvision"):
            raise ArchbenchError(f"ResNet variant must be 'd2l' or 'torchvision', got {variant!r}.")
        bias = variant == "d2l"
        self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=bias)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        channels = 64
        for index, (width, count) in enumerate(zip(self.widths, blocks_per_stage), start=1):
            stage = self._make_stage(channels, width, count, first=index == 1, bias=bias)
            self.add_module(f"layer{index}", stage)
            channels = width
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(channels, num_classes)
        if variant == "torchvision":
            self._init_like_torchvision()

    @staticmethod
    def _make_stage(in_channels: int, width: int, count: int, *, first: bool, bias: bool) -> nn.Sequential:
        """The first block of every stage but the first halves H×W and changes channels via a 1×1 projection."""
        blocks = []
        for i in range(count):
            project = i == 0 and not first
            blocks.append(
                Residual(
                    in_channels if i == 0 else width,
                    width,
                    use_1x1conv=project,
                    stride=2 if project else 1,
                    bias=bias,
                    shortcut_norm=not bias,
                )
            )
        return nn.Sequential(*blocks)

    def _init_like_torchvision(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # (N, 64, H/4, W/4)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))  # (N, 512, H/32, W/32)
        x = self.flatten(self.avgpool(x))  # (N, 512, 1, 1) -> (N, 512)
        return self.fc(x)


@register_model(
    ModelSpec(
        name="residual_net",
        input_shape=(1, 28, 28),
        num_classes=10,
        source="seed 002 (simple residual network on MNIST)",
        description="Two conv layers each followed by a shape-keeping residual block, 512->10",
        flat_features=512,
        layer_shapes={"rblock1": (16, 12, 12), "rblock2": (32, 4, 4)},
    )
)
def residual_net(*, num_classes: int = 10) -> ResidualNet:
    """The seed's simple residual network for MNIST."""
    return ResidualNet(num_classes=num_classes)


@register_model(
    ModelSpec(
        name="resnet18",
        input_shape=(1, 96, 96),
        num_classes=10,
        source="seed 004 (d2l ResNet-18 on Fashion-MNIST resized to 96)",
        description="ResNet-18: 7x7/2 stem, 4 stages x 2 basic blocks (64-512), global average pool, 512->10",
        flat_features=512,
        layer_shapes={
            "maxpool": (64, 56, 56),
            "layer1": (64, 56, 56),
            "layer2": (128, 28, 28),
            "layer3": (256, 14, 14),
            "layer4": (512, 7, 7),
            "avgpool": (512, 1, 1),
        },
        facts_input_shape=(1, 224, 224),
        other_input_shapes=((1, 224, 224),),
    )
)
def resnet18(*, in_channels: int = 1, num_classes: int = 10, variant: str = "d2l") -> ResNet:
    """ResNet-18; ``variant="torchvision"`` with ``in_channels=3, num_classes=1000`` loads torchvision's weights."""
    return ResNet((2, 2, 2, 2), in_channels=in_channels, num_classes=num_classes, variant=variant)
