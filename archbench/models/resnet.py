"""Residual networks: the seed's small residual net for MNIST and ResNet-18, -34 and -50.

ResNet-18 comes in two variants that share one class (ResNet-34 and -50 default to the torchvision one):

* ``"d2l"`` (seed 004): convolutions with bias, 1×1 projection shortcuts without BatchNorm,
  single-channel 96×96 input, 10 classes.
* ``"torchvision"``: bias-free convolutions and a BatchNorm after each projection; module and
  parameter names match ``torchvision.models.resnet18`` so its ``state_dict`` loads without mapping.
"""

from __future__ import annotations

import torch
from torch import nn

from archbench.layers.blocks import Bottleneck, Residual, SimpleResidualBlock
from archbench.models.arithmetic import bn, conv, linear
from archbench.models.common import check_variant
from archbench.registry import IMAGENET_INPUT, TORCHVISION_FORM, Figure, ModelSpec, register_model


class ResidualNet(nn.Module):
    """conv 1→16 k5, ReLU, pool · residual block · conv 16→32 k5, ReLU, pool · residual block · 512→10.

    Args:
        num_classes: output width.

    Example:
        >>> ResidualNet()(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 10])
    """

    composition = "in_order"  # how forward uses the children: archbench.analysis.rules.COMPOSITIONS

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
    """ResNet: 7×7/2 stem, 3×3/2 max-pool, four stages of residual blocks, global average pool, linear.

    Args:
        block: :class:`~archbench.layers.blocks.Residual` (basic block) or
            :class:`~archbench.layers.blocks.Bottleneck`.
        layers: blocks in each of the four stages (2, 2, 2, 2 for ResNet-18).
        in_channels: image channels.
        num_classes: output width.
        variant: ``"d2l"`` or ``"torchvision"`` (see the module docstring).

    Example:
        >>> ResNet(Residual, (2, 2, 2, 2))(torch.zeros(1, 1, 96, 96)).shape
        torch.Size([1, 10])
    """

    composition = "in_order"  # how forward uses the children: archbench.analysis.rules.COMPOSITIONS

    widths = (64, 128, 256, 512)

    def __init__(
        self,
        block: type[Residual] | type[Bottleneck],
        layers: tuple[int, ...],
        *,
        in_channels: int = 1,
        num_classes: int = 10,
        variant: str = "d2l",
    ) -> None:
        super().__init__()
        check_variant("ResNet", variant)
        bias = variant == "d2l"
        self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=bias)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.channels = 64
        for index, (width, count) in enumerate(zip(self.widths, layers), start=1):
            stage = self._make_layer(block, width, count, stride=1 if index == 1 else 2, bias=bias)
            self.add_module(f"layer{index}", stage)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(self.channels, num_classes)
        if variant == "torchvision":
            self._init_like_torchvision()

    def _make_layer(
        self, block: type[Residual] | type[Bottleneck], width: int, count: int, *, stride: int, bias: bool
    ) -> nn.Sequential:
        """A stage; its first block takes the stride and, if the shape changes, a 1×1 projection shortcut."""
        out = width * block.expansion
        blocks = []
        for i in range(count):
            step = stride if i == 0 else 1
            project = step != 1 or self.channels != out
            blocks.append(block(self.channels, width, project, step, bias=bias, shortcut_norm=not bias))
            self.channels = out
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
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))  # (N, C, H/32, W/32), C = 512 or 2048
        x = self.flatten(self.avgpool(x))  # (N, C, 1, 1) -> (N, C)
        return self.fc(x)


# --- facts, each from outside the classes above ----------------------------------------------------------
RESIDUAL_NET_PARAMS = (
    conv(1, 16, 5) + 2 * conv(16, 16, 3) + conv(16, 32, 5) + 2 * conv(32, 32, 3) + linear(512, 10)
)  # fmt: skip


def resnet_params(layers: tuple[int, ...], in_channels: int, num_classes: int, *, bottleneck: bool, bias: bool) -> int:
    """Closed form: stem conv + BN, each block's convs and BNs (+ projection, with BN unless ``bias``), fc."""
    total, cin = conv(in_channels, 64, 7, bias) + bn(64), 64
    for stage, (width, count) in enumerate(zip((64, 128, 256, 512), layers)):
        out = 4 * width if bottleneck else width
        for i in range(count):
            if bottleneck:
                total += conv(cin, width, 1, bias) + conv(width, width, 3, bias) + conv(width, out, 1, bias)
                total += bn(width) + bn(width) + bn(out)
            else:
                total += conv(cin, width, 3, bias) + conv(width, width, 3, bias) + bn(width) + bn(width)
            if i == 0 and (stage > 0 or cin != out):
                total += conv(cin, out, 1, bias) + (0 if bias else bn(out))
            cin = out
    return total + linear(cin, num_classes)


def _imagenet_stages(widths: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
    """He et al. 2016, Table 1: outputs 56, 56, 28, 14, 7 at 224 (conv2_x … conv5_x), then 1×1."""
    shapes = {"maxpool": (64, 56, 56)}
    shapes.update({f"layer{i}": (w, 56 >> max(i - 1, 0), 56 >> max(i - 1, 0)) for i, w in enumerate(widths, 1)})
    shapes["avgpool"] = (widths[-1], 1, 1)
    return shapes


@register_model(
    ModelSpec(
        name="residual_net",
        input_shape=(1, 28, 28),
        num_classes=10,
        source="seed 002 (simple residual network on MNIST)",
        description="Two conv layers each followed by a shape-keeping residual block, 512->10",
        flat_features=512,
        layer_shapes={"rblock1": (16, 12, 12), "rblock2": (32, 4, 4)},
        figures=(Figure("params", RESIDUAL_NET_PARAMS, "closed form per layer"),),
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
        layer_shapes={  # seed 004's printed shapes at 1×224×224
            "maxpool": (64, 56, 56),
            "layer1": (64, 56, 56),
            "layer2": (128, 28, 28),
            "layer3": (256, 14, 14),
            "layer4": (512, 7, 7),
            "avgpool": (512, 1, 1),
        },
        facts_input_shape=(1, 224, 224),
        other_input_shapes=((1, 224, 224),),
        figures=(
            Figure("params", resnet_params((2, 2, 2, 2), 1, 10, bottleneck=False, bias=True), "closed form per layer"),
            Figure(
                "params",
                resnet_params((2, 2, 2, 2), 3, 1000, bottleneck=False, bias=False),
                "closed form per layer",
                TORCHVISION_FORM,
            ),
        ),
        torchvision="resnet18",
    )
)
def resnet18(*, in_channels: int = 1, num_classes: int = 10, variant: str = "d2l") -> ResNet:
    """ResNet-18; ``variant="torchvision"`` with ``in_channels=3, num_classes=1000`` loads torchvision's weights."""
    return ResNet(Residual, (2, 2, 2, 2), in_channels=in_channels, num_classes=num_classes, variant=variant)


@register_model(
    ModelSpec(
        name="resnet34",
        input_shape=IMAGENET_INPUT,
        num_classes=1000,
        source="He et al. 2016 (ResNet-34), torchvision",
        description="ResNet-34: 7x7/2 stem, stages of 3-4-6-3 basic blocks (64-512), global average pool, 512->1000",
        flat_features=512,
        layer_shapes=_imagenet_stages((64, 128, 256, 512)),
        figures=(
            Figure("params", resnet_params((3, 4, 6, 3), 3, 1000, bottleneck=False, bias=False), "closed form per layer"),
            Figure("macs", 3.6e9, "He et al. 2016, Table 1: 3.6×10⁹ FLOPs (multiply-adds)", rel_tol=0.02),
        ),
        torchvision="resnet34",
        bench_input_shape=(3, 64, 64),
    )
)
def resnet34(*, in_channels: int = 3, num_classes: int = 1000, variant: str = "torchvision") -> ResNet:
    """ResNet-34 in torchvision's form by default (its ``state_dict`` loads unchanged)."""
    return ResNet(Residual, (3, 4, 6, 3), in_channels=in_channels, num_classes=num_classes, variant=variant)


@register_model(
    ModelSpec(
        name="resnet50",
        input_shape=IMAGENET_INPUT,
        num_classes=1000,
        source="He et al. 2016 (ResNet-50, v1.5: stride on the 3x3), torchvision",
        description="ResNet-50: 7x7/2 stem, stages of 3-4-6-3 bottleneck blocks (256-2048), global average pool, 2048->1000",
        flat_features=2048,
        layer_shapes=_imagenet_stages((256, 512, 1024, 2048)),
        figures=(
            Figure("params", resnet_params((3, 4, 6, 3), 3, 1000, bottleneck=True, bias=False), "closed form per layer"),
            Figure("macs", 4.1e9, "v1.5 headline: about 4.1 G multiply-adds (the paper's v1: 3.8 G)", rel_tol=0.01),
        ),
        torchvision="resnet50",
        bench_input_shape=(3, 64, 64),
    )
)
def resnet50(*, in_channels: int = 3, num_classes: int = 1000, variant: str = "torchvision") -> ResNet:
    """ResNet-50 (v1.5) in torchvision's form by default (its ``state_dict`` loads unchanged)."""
    return ResNet(Bottleneck, (3, 4, 6, 3), in_channels=in_channels, num_classes=num_classes, variant=variant)
