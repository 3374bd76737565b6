"""The named building blocks of the seed networks.

* :class:`SimpleResidualBlock` — two 3×3 convolutions with an identity shortcut (seed 002).
* :class:`Residual` — the ResNet basic block with BatchNorm and an optional 1×1 projection (seed 004);
  with ``bias=False, shortcut_norm=True`` it is torchvision's ``BasicBlock`` parameter for parameter.
* :class:`InceptionA` — four parallel branches concatenated to 16 + 24 + 24 + 24 = 88 channels (seed 002).
* :class:`DirectConv` and :class:`BottleneckConv` — the 1×1-bottleneck demonstration (seed 002): a 5×5
  convolution 192→32 against a 1×1 convolution 192→16 followed by the 5×5 convolution 16→32.
"""

from __future__ import annotations

import torch
from torch import nn


class SimpleResidualBlock(nn.Module):
    """``relu(x + conv2(relu(conv1(x))))`` with 3×3 convolutions that keep channels and size.

    Args:
        channels: input and output channels.

    Example:
        >>> SimpleResidualBlock(16)(torch.zeros(2, 16, 12, 12)).shape
        torch.Size([2, 16, 12, 12])
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(self.relu(self.conv1(x)))
        return self.relu(x + y)


class Residual(nn.Module):
    """ResNet basic block: conv3×3-BN-ReLU-conv3×3-BN, plus a shortcut, then ReLU.

    The shortcut is the identity, or with ``use_1x1conv`` a strided 1×1 convolution (followed by
    BatchNorm when ``shortcut_norm``) that matches the new channel count and size.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        use_1x1conv: project the shortcut with a 1×1 convolution.
        stride: stride of the first 3×3 convolution and of the projection.
        bias: give the convolutions a bias (d2l does; torchvision does not, since BN follows).
        shortcut_norm: put a BatchNorm after the projection (torchvision's ``downsample``).

    Raises:
        ValueError: if the shortcut cannot match the output (channels or stride change without a projection).

    Example:
        >>> Residual(3, 6, use_1x1conv=True, stride=2)(torch.zeros(4, 3, 6, 6)).shape
        torch.Size([4, 6, 3, 3])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        use_1x1conv: bool = False,
        stride: int = 1,
        *,
        bias: bool = True,
        shortcut_norm: bool = False,
    ) -> None:
        super().__init__()
        if not use_1x1conv and (in_channels != out_channels or stride != 1):
            raise ValueError(
                f"Residual({in_channels}, {out_channels}, stride={stride}) changes the shape, so the identity "
                "shortcut cannot be added; pass use_1x1conv=True."
            )
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=bias)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=bias)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.downsample: nn.Module | None = None
        if use_1x1conv:
            projection = nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=bias)
            self.downsample = (
                nn.Sequential(projection, nn.BatchNorm2d(out_channels)) if shortcut_norm else projection
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(y + shortcut)


class InceptionA(nn.Module):
    """GoogLeNet-style block whose four branches keep H×W and concatenate to 88 channels.

    Branches: 1×1 conv → 16; 1×1 → 16 then 5×5 → 24; 1×1 → 16, 3×3 → 24, 3×3 → 24;
    3×3 average pool then 1×1 → 24.

    Args:
        in_channels: input channels (any).

    Example:
        >>> InceptionA(10)(torch.zeros(1, 10, 12, 12)).shape
        torch.Size([1, 88, 12, 12])
    """

    out_channels = 16 + 24 + 24 + 24

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch1x1 = nn.Conv2d(in_channels, 16, kernel_size=1)
        self.branch5x5 = nn.Sequential(
            nn.Conv2d(in_channels, 16, kernel_size=1),
            nn.Conv2d(16, 24, kernel_size=5, padding=2),
        )
        self.branch3x3 = nn.Sequential(
            nn.Conv2d(in_channels, 16, kernel_size=1),
            nn.Conv2d(16, 24, kernel_size=3, padding=1),
            nn.Conv2d(24, 24, kernel_size=3, padding=1),
        )
        self.branch_pool = nn.Sequential(
            nn.AvgPool2d(kernel_size=3, stride=1, padding=1),
            nn.Conv2d(in_channels, 24, kernel_size=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = [self.branch1x1(x), self.branch5x5(x), self.branch3x3(x), self.branch_pool(x)]
        return torch.cat(branches, dim=1)  # 4 × (N, c_i, H, W) -> (N, 88, H, W)


class DirectConv(nn.Module):
    """The expensive side of the bottleneck demonstration: one k×k convolution, size kept.

    Args:
        in_channels: input channels (192 in the seed).
        out_channels: output channels (32).
        kernel: odd kernel size (5); padding keeps H×W.

    Example:
        >>> DirectConv()(torch.zeros(1, 192, 28, 28)).shape
        torch.Size([1, 32, 28, 28])
    """

    def __init__(self, in_channels: int = 192, out_channels: int = 32, kernel: int = 5) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class BottleneckConv(nn.Module):
    """The cheap side: a 1×1 convolution down to ``mid_channels`` first, then the k×k convolution.

    Args:
        in_channels: input channels (192 in the seed).
        mid_channels: channels after the 1×1 reduction (16).
        out_channels: output channels (32).
        kernel: odd kernel size (5); padding keeps H×W.

    Example:
        >>> BottleneckConv()(torch.zeros(1, 192, 28, 28)).shape
        torch.Size([1, 32, 28, 28])
    """

    def __init__(
        self, in_channels: int = 192, mid_channels: int = 16, out_channels: int = 32, kernel: int = 5
    ) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(in_channels, mid_channels, 1)
        self.conv = nn.Conv2d(mid_channels, out_channels, kernel, padding=kernel // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.reduce(x))
