"""AlexNet (Krizhevsky et al. 2012): five convolutions, three max-pools, three fully connected layers.

* ``"d2l"`` (d2l 7.1): 1×224×224 input, 96-256-384-384-256 channels, first conv padding 1, 6400 features.
* ``"torchvision"``: 64-192-384-256-256 channels, padding 2, adaptive 6×6 pool, 9216 features, dropout before
  each hidden linear layer; module names match ``torchvision.models.alexnet``.
"""

from __future__ import annotations

from collections import OrderedDict

import torch  # noqa: F401  (doctest namespace)
from torch import nn

from archbench.models.arithmetic import conv, conv_macs, linear, linear_macs
from archbench.models.common import check_variant, mlp_head
from archbench.registry import TORCHVISION_FORM, Figure, ModelSpec, register_model


class AlexNet(nn.Sequential):
    """``features`` (5 convs, 3 max-pools) · [``avgpool``] · ``flatten`` · ``classifier`` (two 4096 layers).

    Args:
        in_channels: image channels.
        num_classes: output width.
        variant: ``"d2l"`` or ``"torchvision"`` (see the module docstring).
        dropout: drop probability of the two dropout layers.

    Example:
        >>> AlexNet()(torch.zeros(1, 1, 224, 224)).shape
        torch.Size([1, 10])
    """

    def __init__(self, *, in_channels: int = 1, num_classes: int = 10, variant: str = "d2l", dropout: float = 0.5) -> None:
        check_variant("AlexNet", variant)
        d2l = variant == "d2l"
        c1, c2, c3, c4, c5 = (96, 256, 384, 384, 256) if d2l else (64, 192, 384, 256, 256)
        features = nn.Sequential(
            nn.Conv2d(in_channels, c1, kernel_size=11, stride=4, padding=1 if d2l else 2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(c1, c2, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(c2, c3, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(c3, c4, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(c4, c5, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        side = 5 if d2l else 6  # d2l: 224 -> 54 -> 26 -> 12 -> 5; torchvision pools adaptively to 6×6
        parts: OrderedDict[str, nn.Module] = OrderedDict(features=features)
        if not d2l:
            parts["avgpool"] = nn.AdaptiveAvgPool2d((side, side))
        parts["flatten"] = nn.Flatten()  # (N, 256, side, side) -> (N, 256·side²)
        parts["classifier"] = mlp_head(c5 * side * side, 4096, num_classes, dropout, dropout_first=not d2l)
        super().__init__(parts)


# --- facts, each from outside the class above ------------------------------------------------------------
D2L_PARAMS = (
    conv(1, 96, 11) + conv(96, 256, 5) + conv(256, 384, 3) + conv(384, 384, 3) + conv(384, 256, 3)
    + linear(6400, 4096) + linear(4096, 4096) + linear(4096, 10)
)  # fmt: skip
D2L_MACS = (  # output sides 54, 26, 12, 12, 12 (d2l's printed shapes)
    conv_macs(1, 96, 11, 54) + conv_macs(96, 256, 5, 26) + conv_macs(256, 384, 3, 12)
    + conv_macs(384, 384, 3, 12) + conv_macs(384, 256, 3, 12)
    + linear_macs(6400, 4096) + linear_macs(4096, 4096) + linear_macs(4096, 10)
)  # fmt: skip
TORCHVISION_PARAMS = (
    conv(3, 64, 11) + conv(64, 192, 5) + conv(192, 384, 3) + conv(384, 256, 3) + conv(256, 256, 3)
    + linear(9216, 4096) + linear(4096, 4096) + linear(4096, 1000)
)  # fmt: skip


@register_model(
    ModelSpec(
        name="alexnet",
        input_shape=(1, 224, 224),
        num_classes=10,
        source="d2l 7.1 (AlexNet on Fashion-MNIST resized to 224)",
        description="AlexNet, d2l form: 96 k11/4 · pool · 256 k5 · pool · 384, 384, 256 k3 · pool · 6400->4096->4096->10",
        flat_features=6400,
        layer_shapes={  # d2l 7.1's printed output shapes
            "features.0": (96, 54, 54),
            "features.2": (96, 26, 26),
            "features.3": (256, 26, 26),
            "features.5": (256, 12, 12),
            "features.6": (384, 12, 12),
            "features.8": (384, 12, 12),
            "features.10": (256, 12, 12),
            "features.12": (256, 5, 5),
        },
        figures=(
            Figure("params", D2L_PARAMS, "closed form per layer"),
            Figure("macs", D2L_MACS, "closed form per layer"),
            Figure("params", TORCHVISION_PARAMS, "closed form per layer", TORCHVISION_FORM),
        ),
        torchvision="alexnet",
    )
)
def alexnet(*, in_channels: int = 1, num_classes: int = 10, variant: str = "d2l", dropout: float = 0.5) -> AlexNet:
    """AlexNet; ``variant="torchvision"`` with ``in_channels=3, num_classes=1000`` loads torchvision's weights."""
    return AlexNet(in_channels=in_channels, num_classes=num_classes, variant=variant, dropout=dropout)
