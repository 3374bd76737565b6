"""VGG (Simonyan & Zisserman 2015): blocks of 3×3 convolutions each closed by a 2×2 max-pool.

* ``"d2l"`` (d2l 7.2): 1×224×224 input; ``features`` holds one :func:`~archbench.layers.blocks.vgg_block` per
  stage (so each stage's output has a name), then 25088 → 4096 → 4096 → classes.
* ``"torchvision"``: the same layers flattened into one ``features`` sequence, an adaptive 7×7 average pool,
  module names matching ``torchvision.models.vgg11`` / ``vgg16``.
"""

from __future__ import annotations

from collections import OrderedDict

import torch  # noqa: F401  (doctest namespace)
from torch import nn

from archbench.layers.blocks import vgg_block
from archbench.models.arithmetic import conv, conv_macs, linear, linear_macs
from archbench.models.common import check_variant, mlp_head
from archbench.registry import TORCHVISION_FORM, Figure, ModelSpec, register_model

#: (convolutions, channels) of each block: d2l 7.2 and the paper's configurations A and D.
VGG11_BLOCKS = ((1, 64), (1, 128), (2, 256), (2, 512), (2, 512))
VGG16_BLOCKS = ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512))


class VGG(nn.Sequential):
    """``features`` (VGG blocks) · [``avgpool``] · ``flatten`` · ``classifier`` (two 4096 layers with dropout).

    Args:
        blocks: (convolutions, channels) per block; five blocks take 224×224 to 7×7.
        in_channels: image channels.
        num_classes: output width.
        variant: ``"d2l"`` or ``"torchvision"`` (see the module docstring).
        dropout: drop probability of the two dropout layers.
        side: height and width of the last block's output (7 for 224×224 input); the torchvision form pools
            to it adaptively.

    Example:
        >>> VGG(((1, 8), (1, 16)), side=2)(torch.zeros(1, 1, 8, 8)).shape
        torch.Size([1, 10])
    """

    def __init__(
        self,
        blocks: tuple[tuple[int, int], ...],
        *,
        in_channels: int = 1,
        num_classes: int = 10,
        variant: str = "d2l",
        dropout: float = 0.5,
        side: int = 7,
    ) -> None:
        check_variant("VGG", variant)
        stages, channels = [], in_channels
        for num_convs, width in blocks:
            stages.append(vgg_block(num_convs, channels, width))
            channels = width
        parts: OrderedDict[str, nn.Module] = OrderedDict()
        if variant == "d2l":
            parts["features"] = nn.Sequential(*stages)
        else:
            parts["features"] = nn.Sequential(*(layer for stage in stages for layer in stage))
            parts["avgpool"] = nn.AdaptiveAvgPool2d((side, side))
        parts["flatten"] = nn.Flatten()  # (N, 512, 7, 7) -> (N, 25088)
        parts["classifier"] = mlp_head(channels * side * side, 4096, num_classes, dropout)
        super().__init__(parts)


# --- facts, each from outside the class above ------------------------------------------------------------
def vgg_params(blocks: tuple[tuple[int, int], ...], in_channels: int, num_classes: int) -> int:
    """Closed form: 3×3 convolutions with bias, then 512·7·7 → 4096 → 4096 → classes."""
    total, cin = 0, in_channels
    for num_convs, width in blocks:
        total += conv(cin, width, 3) + (num_convs - 1) * conv(width, width, 3)
        cin = width
    return total + linear(512 * 7 * 7, 4096) + linear(4096, 4096) + linear(4096, num_classes)


def vgg_macs(blocks: tuple[tuple[int, int], ...], in_channels: int, num_classes: int, size: int = 224) -> int:
    """Closed form at ``size``×``size``: block i's convolutions run at size / 2^i (padding 1 keeps the size)."""
    total, cin = 0, in_channels
    for i, (num_convs, width) in enumerate(blocks):
        side = size >> i
        total += conv_macs(cin, width, 3, side) + (num_convs - 1) * conv_macs(width, width, 3, side)
        cin = width
    return total + linear_macs(512 * 7 * 7, 4096) + linear_macs(4096, 4096) + linear_macs(4096, num_classes)


_D2L_SHAPES = {f"features.{i}": (c, 112 >> i, 112 >> i) for i, c in enumerate((64, 128, 256, 512, 512))}


def _figures(blocks: tuple[tuple[int, int], ...]) -> tuple[Figure, ...]:
    return (
        Figure("params", vgg_params(blocks, 1, 10), "closed form per layer"),
        Figure("macs", vgg_macs(blocks, 1, 10), "closed form per layer"),
        Figure("params", vgg_params(blocks, 3, 1000), "closed form per layer", TORCHVISION_FORM),
        Figure("macs", vgg_macs(blocks, 3, 1000), "closed form per layer", TORCHVISION_FORM),
    )


@register_model(
    ModelSpec(
        name="vgg11",
        input_shape=(1, 224, 224),
        num_classes=10,
        source="d2l 7.2 (VGG-11 on Fashion-MNIST resized to 224)",
        description="VGG-11: blocks (1,64)(1,128)(2,256)(2,512)(2,512) of 3x3 convs + 2x2 pool, 25088->4096->4096->10",
        flat_features=25088,
        layer_shapes=_D2L_SHAPES,  # d2l 7.2's printed block outputs
        figures=_figures(VGG11_BLOCKS),
        torchvision="vgg11",
    )
)
def vgg11(*, in_channels: int = 1, num_classes: int = 10, variant: str = "d2l", dropout: float = 0.5) -> VGG:
    """VGG-11 (configuration A); ``variant="torchvision"`` with 3 channels and 1000 classes loads torchvision's."""
    return VGG(VGG11_BLOCKS, in_channels=in_channels, num_classes=num_classes, variant=variant, dropout=dropout)


@register_model(
    ModelSpec(
        name="vgg16",
        input_shape=(1, 224, 224),
        num_classes=10,
        source="d2l 7.2 (VGG blocks), configuration D of Simonyan & Zisserman 2015",
        description="VGG-16: blocks (2,64)(2,128)(3,256)(3,512)(3,512) of 3x3 convs + 2x2 pool, 25088->4096->4096->10",
        flat_features=25088,
        layer_shapes=_D2L_SHAPES,
        figures=(
            *_figures(VGG16_BLOCKS),
            Figure("params", 138e6, "Simonyan & Zisserman 2015, Table 2: 138 M parameters", TORCHVISION_FORM, rel_tol=0.005),
            Figure("macs", 15.5e9, "headline figure: about 15.5 G multiply-adds at 224×224", TORCHVISION_FORM, rel_tol=0.01),
        ),
        torchvision="vgg16",
    )
)
def vgg16(*, in_channels: int = 1, num_classes: int = 10, variant: str = "d2l", dropout: float = 0.5) -> VGG:
    """VGG-16 (configuration D); ``variant="torchvision"`` with 3 channels and 1000 classes loads torchvision's."""
    return VGG(VGG16_BLOCKS, in_channels=in_channels, num_classes=num_classes, variant=variant, dropout=dropout)
