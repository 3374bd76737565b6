"""The named building blocks of the seed networks.

* :class:`SimpleResidualBlock` — two 3×3 convolutions with an identity shortcut (seed 002).
* :class:`Residual` — the ResNet basic block with BatchNorm and an optional 1×1 projection (seed 004);
  with ``bias=False, shortcut_norm=True`` it is torchvision's ``BasicBlock`` parameter for parameter.
* :class:`InceptionA` — four parallel branches concatenated to 16 + 24 + 24 + 24 = 88 channels (seed 002).
* :class:`DirectConv` and :class:`BottleneckConv` — the 1×1-bottleneck demonstration (seed 002): a 5×5
  convolution 192→32 against a 1×1 convolution 192→16 followed by the 5×5 convolution 16→32.
* :class:`Bottleneck` — the ResNet-50 block (1×1, 3×3, 1×1, four times wider out), torchvision's v1.5 form.
* :func:`vgg_block`, :class:`NiNBlock`, :class:`ConvUnit`, :class:`Inception`, :class:`DenseLayer`,
  :class:`DenseBlock` and :class:`Transition` — the blocks of VGG, NiN, GoogLeNet and DenseNet (d2l chapter 7),
  with torchvision's module names where torchvision has the block.
"""

from __future__ import annotations

from collections import OrderedDict

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

    composition = "simple_residual"  # how forward uses the children: archbench.analysis.rules.COMPOSITIONS

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(self.relu(self.conv1(x)))
        return self.relu(x + y)


def _shortcut(
    block: nn.Module, in_channels: int, out_channels: int, project: bool, stride: int, *, bias: bool, norm: bool
) -> nn.Module | None:
    """A residual block's shortcut: ``None`` (identity) or a strided 1×1 projection, then BatchNorm if ``norm``.

    Raises:
        ValueError: if the block changes channels or size but has no projection.
    """
    if not project:
        if in_channels != out_channels or stride != 1:
            raise ValueError(
                f"{type(block).__name__}({in_channels} -> {out_channels}, stride={stride}) changes the shape, so the "
                "identity shortcut cannot be added; pass use_1x1conv=True."
            )
        return None
    projection = nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=bias)
    return nn.Sequential(projection, nn.BatchNorm2d(out_channels)) if norm else projection


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

    composition = "residual"  # how forward uses the children: archbench.analysis.rules.COMPOSITIONS

    expansion = 1  # output channels per ``out_channels`` (the Bottleneck's is 4)

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
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=bias)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=bias)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.downsample = _shortcut(self, in_channels, out_channels, use_1x1conv, stride, bias=bias, norm=shortcut_norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(y + shortcut)


class Bottleneck(nn.Module):
    """ResNet bottleneck block (torchvision v1.5: the stride sits on the 3×3): 1×1, 3×3, 1×1 convs + shortcut.

    Output channels are ``expansion × width``; the shortcut is the identity or, with ``use_1x1conv``, a strided
    1×1 convolution (then BatchNorm when ``shortcut_norm``). Parameter names are torchvision's ``Bottleneck``.

    Args:
        in_channels: input channels.
        width: channels of the 1×1 reduction and the 3×3 convolution.
        use_1x1conv: project the shortcut.
        stride: stride of the 3×3 convolution and of the projection.
        bias: give the convolutions a bias.
        shortcut_norm: put a BatchNorm after the projection.

    Example:
        >>> Bottleneck(64, 64, use_1x1conv=True)(torch.zeros(1, 64, 8, 8)).shape
        torch.Size([1, 256, 8, 8])
    """

    composition = "bottleneck"  # how forward uses the children: archbench.analysis.rules.COMPOSITIONS

    expansion = 4

    def __init__(
        self,
        in_channels: int,
        width: int,
        use_1x1conv: bool = False,
        stride: int = 1,
        *,
        bias: bool = False,
        shortcut_norm: bool = True,
    ) -> None:
        super().__init__()
        out_channels = width * self.expansion
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=bias)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=bias)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_channels, 1, bias=bias)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(self, in_channels, out_channels, use_1x1conv, stride, bias=bias, norm=shortcut_norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
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

    composition = "concat_branches"  # how forward uses the children: archbench.analysis.rules.COMPOSITIONS

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

    composition = "in_order"  # how forward uses the children: archbench.analysis.rules.COMPOSITIONS

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

    composition = "in_order"  # how forward uses the children: archbench.analysis.rules.COMPOSITIONS

    def __init__(
        self, in_channels: int = 192, mid_channels: int = 16, out_channels: int = 32, kernel: int = 5
    ) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(in_channels, mid_channels, 1)
        self.conv = nn.Conv2d(mid_channels, out_channels, kernel, padding=kernel // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.reduce(x))


def vgg_block(num_convs: int, in_channels: int, out_channels: int) -> nn.Sequential:
    """VGG block: ``num_convs`` × (3×3 conv, padding 1, ReLU), then a 2×2 max-pool that halves H×W.

    Example:
        >>> vgg_block(2, 3, 64)(torch.zeros(1, 3, 32, 32)).shape
        torch.Size([1, 64, 16, 16])
    """
    layers: list[nn.Module] = []
    for i in range(num_convs):
        layers += [nn.Conv2d(in_channels if i == 0 else out_channels, out_channels, 3, padding=1), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers, nn.MaxPool2d(kernel_size=2, stride=2))


class NiNBlock(nn.Sequential):
    """NiN block: a k×k convolution then two 1×1 convolutions, each followed by ReLU.

    Example:
        >>> NiNBlock(1, 96, 11, stride=4)(torch.zeros(1, 1, 224, 224)).shape
        torch.Size([1, 96, 54, 54])
    """

    def __init__(self, in_channels: int, out_channels: int, kernel: int, *, stride: int = 1, padding: int = 0) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=padding),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, kernel_size=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, kernel_size=1),
            nn.ReLU(inplace=True),
        )


class ConvUnit(nn.Sequential):
    """Convolution then ReLU; with ``norm``, torchvision's ``BasicConv2d`` (bias-free conv, BatchNorm eps 1e-3).

    Example:
        >>> ConvUnit(3, 8, 3, padding=1, norm=True)(torch.zeros(1, 3, 5, 5)).shape
        torch.Size([1, 8, 5, 5])
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel: int, *, stride: int = 1, padding: int = 0, norm: bool = False
    ) -> None:
        layers: OrderedDict[str, nn.Module] = OrderedDict(
            conv=nn.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=padding, bias=not norm)
        )
        if norm:
            layers["bn"] = nn.BatchNorm2d(out_channels, eps=0.001)
        layers["relu"] = nn.ReLU(inplace=True)
        super().__init__(layers)


class Inception(nn.Module):
    """GoogLeNet's Inception block: four branches that keep H×W, concatenated to ``c1 + c2[1] + c3[1] + c4``.

    Branches: 1×1 → c1; 1×1 → c2[0], 3×3 → c2[1]; 1×1 → c3[0], k×k → c3[1]; 3×3 max-pool, 1×1 → c4.
    d2l uses k = 5 and plain conv + ReLU; torchvision uses k = 3 (a known deviation from the paper),
    :class:`ConvUnit` with BatchNorm and ceil-mode pooling (``norm=True``).

    Args:
        in_channels: input channels.
        c1: channels of the 1×1 branch.
        c2: (reduction, output) channels of the 3×3 branch.
        c3: (reduction, output) channels of the third branch.
        c4: channels of the pooling branch's 1×1 projection.
        kernel3: kernel size of the third branch (5 in d2l and the paper, 3 in torchvision).
        norm: torchvision's form (see above).

    Example:
        >>> Inception(192, 64, (96, 128), (16, 32), 32)(torch.zeros(1, 192, 12, 12)).shape
        torch.Size([1, 256, 12, 12])
    """

    composition = "concat_branches"  # how forward uses the children: archbench.analysis.rules.COMPOSITIONS

    def __init__(
        self,
        in_channels: int,
        c1: int,
        c2: tuple[int, int],
        c3: tuple[int, int],
        c4: int,
        *,
        kernel3: int = 5,
        norm: bool = False,
    ) -> None:
        super().__init__()
        self.out_channels = c1 + c2[1] + c3[1] + c4
        self.branch1 = ConvUnit(in_channels, c1, 1, norm=norm)
        self.branch2 = nn.Sequential(
            ConvUnit(in_channels, c2[0], 1, norm=norm), ConvUnit(c2[0], c2[1], 3, padding=1, norm=norm)
        )
        self.branch3 = nn.Sequential(
            ConvUnit(in_channels, c3[0], 1, norm=norm),
            ConvUnit(c3[0], c3[1], kernel3, padding=kernel3 // 2, norm=norm),
        )
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(kernel_size=3, stride=1, padding=1, ceil_mode=norm), ConvUnit(in_channels, c4, 1, norm=norm)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = [self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)]
        return torch.cat(branches, dim=1)  # 4 × (N, c_i, H, W) -> (N, c1 + c2 + c3 + c4, H, W)


class DenseLayer(nn.Sequential):
    """One DenseNet layer, ``growth`` new channels from all before it: BN, ReLU, conv.

    d2l's form is BN-ReLU-3×3 conv; with ``bottleneck`` (torchvision's ``_DenseLayer``, DenseNet-BC) it is
    BN-ReLU-1×1 conv to ``bottleneck`` channels, then BN-ReLU-3×3 conv, all convolutions bias-free.

    Example:
        >>> DenseLayer(64, 32)(torch.zeros(1, 64, 8, 8)).shape
        torch.Size([1, 32, 8, 8])
    """

    def __init__(self, in_channels: int, growth: int, *, bottleneck: int | None = None) -> None:
        if bottleneck is None:
            layers = [
                ("norm1", nn.BatchNorm2d(in_channels)),
                ("relu1", nn.ReLU(inplace=True)),
                ("conv1", nn.Conv2d(in_channels, growth, 3, padding=1)),
            ]
        else:
            layers = [
                ("norm1", nn.BatchNorm2d(in_channels)),
                ("relu1", nn.ReLU(inplace=True)),
                ("conv1", nn.Conv2d(in_channels, bottleneck, 1, bias=False)),
                ("norm2", nn.BatchNorm2d(bottleneck)),
                ("relu2", nn.ReLU(inplace=True)),
                ("conv2", nn.Conv2d(bottleneck, growth, 3, padding=1, bias=False)),
            ]
        super().__init__(OrderedDict(layers))


class DenseBlock(nn.Module):
    """``num_layers`` :class:`DenseLayer` s, each fed the concatenation of the input and all earlier outputs.

    Output channels: ``in_channels + num_layers × growth``; H×W kept.

    Example:
        >>> DenseBlock(4, 64, 32)(torch.zeros(1, 64, 8, 8)).shape
        torch.Size([1, 192, 8, 8])
    """

    composition = "dense"  # how forward uses the children: archbench.analysis.rules.COMPOSITIONS

    def __init__(self, num_layers: int, in_channels: int, growth: int, *, bottleneck: int | None = None) -> None:
        super().__init__()
        self.out_channels = in_channels + num_layers * growth
        for i in range(num_layers):
            self.add_module(f"denselayer{i + 1}", DenseLayer(in_channels + i * growth, growth, bottleneck=bottleneck))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.children():
            x = torch.cat([x, layer(x)], dim=1)  # (N, C, H, W) -> (N, C + growth, H, W)
        return x


class Transition(nn.Sequential):
    """DenseNet transition: BN, ReLU, 1×1 conv to ``out_channels``, 2×2 average pool (halves H×W).

    Example:
        >>> Transition(192, 96)(torch.zeros(1, 192, 24, 24)).shape
        torch.Size([1, 96, 12, 12])
    """

    def __init__(self, in_channels: int, out_channels: int, *, bias: bool = True) -> None:
        super().__init__(
            OrderedDict(
                norm=nn.BatchNorm2d(in_channels),
                relu=nn.ReLU(inplace=True),
                conv=nn.Conv2d(in_channels, out_channels, 1, bias=bias),
                pool=nn.AvgPool2d(kernel_size=2, stride=2),
            )
        )
