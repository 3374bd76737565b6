"""DenseNet (Huang et al. 2017): dense blocks whose layers see every earlier output, joined by transitions.

* ``"d2l"`` (d2l 7.7): 1×96×96 input, growth 32, four dense blocks of four BN-ReLU-3×3 conv layers, each
  transition halving the channels (and H×W), 248 features → classes.
* ``"torchvision"``: DenseNet-BC (a 1×1 bottleneck of 4 × growth before each 3×3 conv, bias-free convolutions);
  module names match ``torchvision.models.densenet121``. ``densenet121`` builds this form by default.
"""

from __future__ import annotations

from collections import OrderedDict

import torch  # noqa: F401  (doctest namespace)
from torch import nn

from archbench.layers.blocks import DenseBlock, Transition
from archbench.models.arithmetic import bn, conv, conv_macs, linear, linear_macs
from archbench.models.common import check_variant
from archbench.registry import IMAGENET_INPUT, TORCHVISION_FORM, Figure, ModelSpec, register_model


class DenseNet(nn.Sequential):
    """``features`` (7×7/2 stem, pool, dense blocks and transitions, BN) · ReLU · avg-pool · ``classifier``.

    Args:
        blocks: layers in each dense block.
        growth: channels each layer adds.
        init_channels: channels of the stem.
        in_channels: image channels.
        num_classes: output width.
        variant: ``"d2l"`` (plain layers, convolutions with bias) or ``"torchvision"`` (bottleneck layers of
            4 × growth, bias-free convolutions).

    Example:
        >>> DenseNet((2, 2), growth=8)(torch.zeros(1, 1, 32, 32)).shape
        torch.Size([1, 10])
    """

    def __init__(
        self,
        blocks: tuple[int, ...] = (4, 4, 4, 4),
        *,
        growth: int = 32,
        init_channels: int = 64,
        in_channels: int = 1,
        num_classes: int = 10,
        variant: str = "d2l",
    ) -> None:
        check_variant("DenseNet", variant)
        d2l = variant == "d2l"
        features: OrderedDict[str, nn.Module] = OrderedDict(
            conv0=nn.Conv2d(in_channels, init_channels, 7, stride=2, padding=3, bias=d2l),
            norm0=nn.BatchNorm2d(init_channels),
            relu0=nn.ReLU(inplace=True),
            pool0=nn.MaxPool2d(3, stride=2, padding=1),
        )
        channels = init_channels
        for i, num_layers in enumerate(blocks, start=1):
            block = DenseBlock(num_layers, channels, growth, bottleneck=None if d2l else 4 * growth)
            features[f"denseblock{i}"] = block
            channels = block.out_channels
            if i < len(blocks):
                features[f"transition{i}"] = Transition(channels, channels // 2, bias=d2l)
                channels //= 2
        features["norm5"] = nn.BatchNorm2d(channels)
        super().__init__(OrderedDict(
            features=nn.Sequential(features),
            relu=nn.ReLU(inplace=True),
            avgpool=nn.AdaptiveAvgPool2d((1, 1)),
            flatten=nn.Flatten(),  # (N, C, 1, 1) -> (N, C)
            classifier=nn.Linear(channels, num_classes),
        ))  # fmt: skip


# --- facts, each from outside the class above ------------------------------------------------------------
def densenet_params(blocks: tuple[int, ...], in_channels: int, num_classes: int, *, bottleneck: bool) -> int:
    """Closed form with growth 32 and a 64-channel stem; ``bottleneck``: DenseNet-BC layers, bias-free convs."""
    bias = not bottleneck
    total, c = conv(in_channels, 64, 7, bias) + bn(64), 64
    for i, num_layers in enumerate(blocks):
        for _ in range(num_layers):
            if bottleneck:
                total += bn(c) + conv(c, 128, 1, bias=False) + bn(128) + conv(128, 32, 3, bias=False)
            else:
                total += bn(c) + conv(c, 32, 3)
            c += 32
        if i < len(blocks) - 1:
            total += bn(c) + conv(c, c // 2, 1, bias)
            c //= 2
    return total + bn(c) + linear(c, num_classes)


D2L_MACS = (  # at 96: stem conv at 48; blocks (and the conv of the transition after each) at 24, 12, 6, 3
    conv_macs(1, 64, 7, 48)
    + sum(conv_macs(64 + 32 * i, 32, 3, 24) for i in range(4)) + conv_macs(192, 96, 1, 24)
    + sum(conv_macs(96 + 32 * i, 32, 3, 12) for i in range(4)) + conv_macs(224, 112, 1, 12)
    + sum(conv_macs(112 + 32 * i, 32, 3, 6) for i in range(4)) + conv_macs(240, 120, 1, 6)
    + sum(conv_macs(120 + 32 * i, 32, 3, 3) for i in range(4))
    + linear_macs(248, 10)
)  # fmt: skip
DENSENET121_BLOCKS = (6, 12, 24, 16)


@register_model(
    ModelSpec(
        name="densenet",
        input_shape=(1, 96, 96),
        num_classes=10,
        source="d2l 7.7 (DenseNet on Fashion-MNIST resized to 96)",
        description="DenseNet, d2l form: growth 32, 4 dense blocks of 4 BN-ReLU-3x3 convs, halving transitions, 248->10",
        flat_features=248,
        layer_shapes={  # channels 64 + 4·32 = 192, halved to 96, and so on (d2l 7.7)
            "features.pool0": (64, 24, 24),
            "features.denseblock1": (192, 24, 24),
            "features.transition1": (96, 12, 12),
            "features.denseblock2": (224, 12, 12),
            "features.transition2": (112, 6, 6),
            "features.denseblock3": (240, 6, 6),
            "features.transition3": (120, 3, 3),
            "features.denseblock4": (248, 3, 3),
        },
        figures=(
            Figure("params", densenet_params((4, 4, 4, 4), 1, 10, bottleneck=False), "closed form per layer"),
            Figure("macs", D2L_MACS, "closed form per layer"),
        ),
    )
)
def densenet(*, in_channels: int = 1, num_classes: int = 10) -> DenseNet:
    """d2l's DenseNet (no torchvision counterpart; ``densenet121`` is torchvision's)."""
    return DenseNet((4, 4, 4, 4), in_channels=in_channels, num_classes=num_classes, variant="d2l")


@register_model(
    ModelSpec(
        name="densenet121",
        input_shape=IMAGENET_INPUT,
        num_classes=1000,
        source="Huang et al. 2017 (DenseNet-BC-121), torchvision",
        description="DenseNet-121: growth 32, blocks 6-12-24-16 of bottleneck layers, halving transitions, 1024->1000",
        flat_features=1024,
        layer_shapes={  # the paper's Table 1 output sizes (56, 28, 14, 7) with the channels of DenseNet-BC
            "features.pool0": (64, 56, 56),
            "features.denseblock1": (256, 56, 56),
            "features.transition1": (128, 28, 28),
            "features.denseblock2": (512, 28, 28),
            "features.transition2": (256, 14, 14),
            "features.denseblock3": (1024, 14, 14),
            "features.transition3": (512, 7, 7),
            "features.denseblock4": (1024, 7, 7),
        },
        figures=(Figure("params", densenet_params(DENSENET121_BLOCKS, 3, 1000, bottleneck=True), "closed form per layer"),),
        torchvision="densenet121",
        bench_input_shape=(3, 64, 64),
    )
)
def densenet121(*, in_channels: int = 3, num_classes: int = 1000, variant: str = "torchvision") -> DenseNet:
    """DenseNet-121 in torchvision's form (its ``state_dict`` loads unchanged)."""
    return DenseNet(DENSENET121_BLOCKS, in_channels=in_channels, num_classes=num_classes, variant=variant)
