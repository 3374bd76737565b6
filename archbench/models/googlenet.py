"""GoogLeNet (Szegedy et al. 2015): a stem, then nine Inception blocks in three groups, global average pool.

* ``"d2l"`` (d2l 7.4): 1×96×96 input, stages ``b1`` … ``b5`` as d2l names them, plain conv + ReLU, the paper's
  5×5 branch, 1024 → classes.
* ``"torchvision"``: BatchNorm after every convolution (``BasicConv2d``), a 3×3 kernel in the third branch,
  ceil-mode pooling, dropout 0.2 before ``fc``; module names match ``torchvision.models.googlenet`` built with
  ``aux_logits=False`` (the published weights' form: the auxiliary heads are dropped after loading).
"""

from __future__ import annotations

from collections import OrderedDict

import torch  # noqa: F401  (doctest namespace)
from torch import nn

from archbench.layers.blocks import ConvUnit, Inception
from archbench.models.arithmetic import bn, conv, conv_macs, linear, linear_macs
from archbench.models.common import check_variant
from archbench.registry import TORCHVISION_FORM, Figure, ModelSpec, register_model

Branches = tuple[int, int, tuple[int, int], tuple[int, int], int]
#: (in, 1×1, (3×3 reduce, 3×3), (5×5 reduce, 5×5), pool projection) of each Inception block: the paper's
#: Table 1, d2l 7.4; groups 3 (a, b), 4 (a–e) and 5 (a, b).
INCEPTION3: tuple[Branches, ...] = ((192, 64, (96, 128), (16, 32), 32), (256, 128, (128, 192), (32, 96), 64))
INCEPTION4: tuple[Branches, ...] = (
    (480, 192, (96, 208), (16, 48), 64),
    (512, 160, (112, 224), (24, 64), 64),
    (512, 128, (128, 256), (24, 64), 64),
    (512, 112, (144, 288), (32, 64), 64),
    (528, 256, (160, 320), (32, 128), 128),
)
INCEPTION5: tuple[Branches, ...] = ((832, 256, (160, 320), (32, 128), 128), (832, 384, (192, 384), (48, 128), 128))


class GoogLeNet(nn.Sequential):
    """Stem (7×7/2 conv, pool, 1×1 and 3×3 convs, pool) · Inception ×2, pool · ×5, pool · ×2 · avg-pool · fc.

    Args:
        in_channels: image channels.
        num_classes: output width.
        variant: ``"d2l"`` or ``"torchvision"`` (see the module docstring).
        dropout: drop probability before ``fc`` (torchvision form only).

    Example:
        >>> GoogLeNet()(torch.zeros(1, 1, 96, 96)).shape
        torch.Size([1, 10])
    """

    def __init__(self, *, in_channels: int = 1, num_classes: int = 10, variant: str = "d2l", dropout: float = 0.2) -> None:
        check_variant("GoogLeNet", variant)
        if variant == "d2l":
            super().__init__(OrderedDict(
                b1=nn.Sequential(
                    nn.Conv2d(in_channels, 64, 7, stride=2, padding=3), nn.ReLU(inplace=True),
                    nn.MaxPool2d(3, stride=2, padding=1),
                ),
                b2=nn.Sequential(
                    nn.Conv2d(64, 64, 1), nn.ReLU(inplace=True), nn.Conv2d(64, 192, 3, padding=1),
                    nn.ReLU(inplace=True), nn.MaxPool2d(3, stride=2, padding=1),
                ),
                b3=nn.Sequential(*(Inception(*c) for c in INCEPTION3), nn.MaxPool2d(3, stride=2, padding=1)),
                b4=nn.Sequential(*(Inception(*c) for c in INCEPTION4), nn.MaxPool2d(3, stride=2, padding=1)),
                b5=nn.Sequential(*(Inception(*c) for c in INCEPTION5), nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten()),
                fc=nn.Linear(1024, num_classes),
            ))  # fmt: skip
            return
        parts: OrderedDict[str, nn.Module] = OrderedDict(
            conv1=ConvUnit(in_channels, 64, 7, stride=2, padding=3, norm=True),
            maxpool1=nn.MaxPool2d(3, stride=2, ceil_mode=True),
            conv2=ConvUnit(64, 64, 1, norm=True),
            conv3=ConvUnit(64, 192, 3, padding=1, norm=True),
            maxpool2=nn.MaxPool2d(3, stride=2, ceil_mode=True),
        )
        groups = (("3", INCEPTION3, nn.MaxPool2d(3, stride=2, ceil_mode=True)),
                  ("4", INCEPTION4, nn.MaxPool2d(2, stride=2, ceil_mode=True)), ("5", INCEPTION5, None))  # fmt: skip
        for group, blocks, pool in groups:
            for letter, branches in zip("abcde", blocks):
                parts[f"inception{group}{letter}"] = Inception(*branches, kernel3=3, norm=True)
            if pool is not None:
                parts[f"maxpool{group}"] = pool
        parts["avgpool"] = nn.AdaptiveAvgPool2d((1, 1))
        parts["flatten"] = nn.Flatten()  # (N, 1024, 1, 1) -> (N, 1024)
        parts["dropout"] = nn.Dropout(dropout)
        parts["fc"] = nn.Linear(1024, num_classes)
        super().__init__(parts)


# --- facts, each from outside the class above ------------------------------------------------------------
def _unit(cin: int, cout: int, k: int, norm: bool) -> int:
    return conv(cin, cout, k, bias=not norm) + (bn(cout) if norm else 0)


def googlenet_params(in_channels: int, num_classes: int, *, norm: bool, kernel3: int) -> int:
    """Closed form: stem convolutions, each Inception block's six convolutions, the final linear layer."""
    total = _unit(in_channels, 64, 7, norm) + _unit(64, 64, 1, norm) + _unit(64, 192, 3, norm)
    for cin, c1, (r2, c2), (r3, c3), c4 in INCEPTION3 + INCEPTION4 + INCEPTION5:
        total += _unit(cin, c1, 1, norm) + _unit(cin, r2, 1, norm) + _unit(r2, c2, 3, norm)
        total += _unit(cin, r3, 1, norm) + _unit(r3, c3, kernel3, norm) + _unit(cin, c4, 1, norm)
    return total + linear(1024, num_classes)


def _inception_macs(blocks: tuple[Branches, ...], side: int) -> int:
    total = 0
    for cin, c1, (r2, c2), (r3, c3), c4 in blocks:
        total += conv_macs(cin, c1, 1, side) + conv_macs(cin, r2, 1, side) + conv_macs(r2, c2, 3, side)
        total += conv_macs(cin, r3, 1, side) + conv_macs(r3, c3, 5, side) + conv_macs(cin, c4, 1, side)
    return total


D2L_MACS = (  # d2l at 96: stem conv at 48, stem 1×1/3×3 at 24, groups 3, 4, 5 at 12, 6, 3
    conv_macs(1, 64, 7, 48) + conv_macs(64, 64, 1, 24) + conv_macs(64, 192, 3, 24)
    + _inception_macs(INCEPTION3, 12) + _inception_macs(INCEPTION4, 6) + _inception_macs(INCEPTION5, 3)
    + linear_macs(1024, 10)
)  # fmt: skip


@register_model(
    ModelSpec(
        name="googlenet",
        input_shape=(1, 96, 96),
        num_classes=10,
        source="d2l 7.4 (GoogLeNet on Fashion-MNIST resized to 96)",
        description="GoogLeNet: 7x7/2 stem, 1x1 and 3x3 convs, 9 Inception blocks (256-1024 channels), 1024->10",
        flat_features=1024,
        layer_shapes={"b1": (64, 24, 24), "b2": (192, 12, 12), "b3": (480, 6, 6), "b4": (832, 3, 3), "b5": (1024,)},
        figures=(
            Figure("params", googlenet_params(1, 10, norm=False, kernel3=5), "closed form per layer"),
            Figure("macs", D2L_MACS, "closed form per layer"),
            Figure(
                "params", googlenet_params(3, 1000, norm=True, kernel3=3), "closed form per layer", TORCHVISION_FORM
            ),
            Figure("macs", 1.5e9, "Szegedy et al. 2015: 1.5 billion multiply-adds", TORCHVISION_FORM, rel_tol=0.01),
        ),
        torchvision="googlenet",
    )
)
def googlenet(*, in_channels: int = 1, num_classes: int = 10, variant: str = "d2l", dropout: float = 0.2) -> GoogLeNet:
    """GoogLeNet; ``variant="torchvision"`` with 3 channels and 1000 classes loads torchvision's (aux heads off)."""
    return GoogLeNet(in_channels=in_channels, num_classes=num_classes, variant=variant, dropout=dropout)
