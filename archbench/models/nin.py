"""Network in Network (Lin et al. 2014), d2l 7.3: NiN blocks and a global average pool instead of a classifier."""

from __future__ import annotations

import torch  # noqa: F401  (doctest namespace)
from torch import nn

from archbench.layers.blocks import NiNBlock
from archbench.models.arithmetic import conv, conv_macs
from archbench.registry import Figure, ModelSpec, register_model


class NiN(nn.Sequential):
    """NiN 96 k11/4 · pool · NiN 256 k5 · pool · NiN 384 k3 · pool · dropout · NiN classes k3 · global avg-pool.

    The last block has one channel per class, so the average pool gives the logits: no fully connected layer.

    Args:
        in_channels: image channels.
        num_classes: output width.
        dropout: drop probability before the last block.

    Example:
        >>> NiN()(torch.zeros(1, 1, 224, 224)).shape
        torch.Size([1, 10])
    """

    def __init__(self, *, in_channels: int = 1, num_classes: int = 10, dropout: float = 0.5) -> None:
        super().__init__(
            NiNBlock(in_channels, 96, 11, stride=4),
            nn.MaxPool2d(kernel_size=3, stride=2),
            NiNBlock(96, 256, 5, padding=2),
            nn.MaxPool2d(kernel_size=3, stride=2),
            NiNBlock(256, 384, 3, padding=1),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Dropout(dropout),
            NiNBlock(384, num_classes, 3, padding=1),
            nn.AdaptiveAvgPool2d((1, 1)),
            nn.Flatten(),  # (N, classes, 1, 1) -> (N, classes)
        )


# --- facts, each from outside the class above ------------------------------------------------------------
def _nin_block_params(cin: int, cout: int, k: int) -> int:
    return conv(cin, cout, k) + 2 * conv(cout, cout, 1)


def _nin_block_macs(cin: int, cout: int, k: int, side: int) -> int:
    return conv_macs(cin, cout, k, side) + 2 * conv_macs(cout, cout, 1, side)


PARAMS = _nin_block_params(1, 96, 11) + _nin_block_params(96, 256, 5) + _nin_block_params(256, 384, 3) + _nin_block_params(384, 10, 3)
MACS = (  # block outputs 54, 26, 12 and 5 wide (d2l's printed shapes)
    _nin_block_macs(1, 96, 11, 54) + _nin_block_macs(96, 256, 5, 26)
    + _nin_block_macs(256, 384, 3, 12) + _nin_block_macs(384, 10, 3, 5)
)  # fmt: skip


@register_model(
    ModelSpec(
        name="nin",
        input_shape=(1, 224, 224),
        num_classes=10,
        source="d2l 7.3 (NiN on Fashion-MNIST resized to 224)",
        description="Network in Network: NiN blocks 96 k11/4, 256 k5, 384 k3, 10 k3 with max-pools, global average pool",
        flat_features=10,
        layer_shapes={  # d2l 7.3's printed output shapes
            "0": (96, 54, 54),
            "1": (96, 26, 26),
            "2": (256, 26, 26),
            "3": (256, 12, 12),
            "4": (384, 12, 12),
            "5": (384, 5, 5),
            "7": (10, 5, 5),
            "8": (10, 1, 1),
        },
        figures=(Figure("params", PARAMS, "closed form per layer"), Figure("macs", MACS, "closed form per layer")),
    )
)
def nin(*, in_channels: int = 1, num_classes: int = 10, dropout: float = 0.5) -> NiN:
    """d2l's NiN (no torchvision counterpart)."""
    return NiN(in_channels=in_channels, num_classes=num_classes, dropout=dropout)
