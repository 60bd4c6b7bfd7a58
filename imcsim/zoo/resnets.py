"""Residual networks in plain PyTorch (no torchvision, no downloads).

* ``resnet20`` -- He, Zhang, Ren, Sun, "Deep Residual Learning for Image Recognition",
  CVPR 2016, Sec. 4.2 (CIFAR ResNet, 6n+2 layers with n=3).
* ``wrn16_4`` -- Zagoruyko & Komodakis, "Wide Residual Networks", BMVC 2016 (WRN-16-4).
* ``resnet18`` -- He et al. 2016, Table 1, 18-layer ImageNet network.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from imcsim.zoo.init import init_weights

__all__ = ["BasicBlock", "CifarResNet", "ImageNetResNet", "WideBasicBlock", "WideResNet",
           "conv3x3", "projection", "residual_stage", "resnet18", "resnet20", "wrn16_4"]


def conv3x3(in_ch: int, out_ch: int, stride: int = 1) -> nn.Conv2d:
    """3x3 convolution, padding 1, no bias (a BatchNorm follows or precedes it)."""
    return nn.Conv2d(in_ch, out_ch, kernel_size=3, stride=stride, padding=1, bias=False)


def projection(in_ch: int, out_ch: int, stride: int) -> nn.Sequential:
    """Option-B projection shortcut of He et al. 2016: 1x1 conv (strided) + BN."""
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, kernel_size=1, stride=stride, bias=False),
        nn.BatchNorm2d(out_ch),
    )


class BasicBlock(nn.Module):
    """Post-activation residual block of He et al. 2016: two 3x3 convs + shortcut.

    The shortcut is the identity when shapes match, else an option-B 1x1 conv+BN
    projection.
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = conv3x3(in_ch, out_ch, stride)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = conv3x3(out_ch, out_ch)
        self.bn2 = nn.BatchNorm2d(out_ch)
        needs_projection = stride != 1 or in_ch != out_ch
        self.shortcut = projection(in_ch, out_ch, stride) if needs_projection else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


def residual_stage(in_ch: int, out_ch: int, blocks: int, stride: int) -> nn.Sequential:
    """``blocks`` BasicBlocks; only the first one changes stride/width."""
    layers = [BasicBlock(in_ch, out_ch, stride)]
    layers += [BasicBlock(out_ch, out_ch) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class CifarResNet(nn.Module):
    """CIFAR ResNet of He et al. 2016, Sec. 4.2: 3x3 stem, three stages, GAP, fc."""

    def __init__(self, blocks_per_stage: int, num_classes: int, in_channels: int) -> None:
        super().__init__()
        self.conv1 = conv3x3(in_channels, 16)
        self.bn1 = nn.BatchNorm2d(16)
        self.layer1 = residual_stage(16, 16, blocks_per_stage, stride=1)
        self.layer2 = residual_stage(16, 32, blocks_per_stage, stride=2)
        self.layer3 = residual_stage(32, 64, blocks_per_stage, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class ImageNetResNet(nn.Module):
    """ImageNet ResNet of He et al. 2016, Table 1: 7x7/2 stem, max-pool, four stages."""

    def __init__(
        self, blocks: tuple[int, int, int, int], num_classes: int, in_channels: int
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = residual_stage(64, 64, blocks[0], stride=1)
        self.layer2 = residual_stage(64, 128, blocks[1], stride=2)
        self.layer3 = residual_stage(128, 256, blocks[2], stride=2)
        self.layer4 = residual_stage(256, 512, blocks[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class WideBasicBlock(nn.Module):
    """Pre-activation wide block of Zagoruyko & Komodakis 2016 (BN-ReLU-conv x2).

    When the shape changes, the 1x1 conv shortcut takes the pre-activated input
    (as in the authors' reference code); otherwise the shortcut is the identity.
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int, drop_rate: float) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_ch)
        self.conv1 = conv3x3(in_ch, out_ch, stride)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.dropout = nn.Dropout(drop_rate)
        self.conv2 = conv3x3(out_ch, out_ch)
        self.equal_in_out = stride == 1 and in_ch == out_ch
        self.shortcut = (
            nn.Identity()
            if self.equal_in_out
            else nn.Conv2d(in_ch, out_ch, kernel_size=1, stride=stride, bias=False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = F.relu(self.bn1(x))
        out = self.conv1(pre)
        out = self.conv2(self.dropout(F.relu(self.bn2(out))))
        return out + self.shortcut(x if self.equal_in_out else pre)


class WideResNet(nn.Module):
    """WRN-d-k of Zagoruyko & Komodakis 2016: widths 16, 16k, 32k, 64k; (d-4)/6 blocks/stage."""

    def __init__(
        self, depth: int, widen: int, num_classes: int, in_channels: int, drop_rate: float
    ) -> None:
        super().__init__()
        blocks = (depth - 4) // 6
        widths = (16 * widen, 32 * widen, 64 * widen)
        self.conv1 = conv3x3(in_channels, 16)
        self.layer1 = self._stage(16, widths[0], blocks, 1, drop_rate)
        self.layer2 = self._stage(widths[0], widths[1], blocks, 2, drop_rate)
        self.layer3 = self._stage(widths[1], widths[2], blocks, 2, drop_rate)
        self.bn_final = nn.BatchNorm2d(widths[2])
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(widths[2], num_classes)
        init_weights(self)

    @staticmethod
    def _stage(
        in_ch: int, out_ch: int, blocks: int, stride: int, drop_rate: float
    ) -> nn.Sequential:
        layers = [WideBasicBlock(in_ch, out_ch, stride, drop_rate)]
        layers += [WideBasicBlock(out_ch, out_ch, 1, drop_rate) for _ in range(blocks - 1)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer3(self.layer2(self.layer1(self.conv1(x))))
        x = F.relu(self.bn_final(x))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def resnet20(num_classes: int = 10, in_channels: int = 3) -> nn.Module:
    """ResNet-20 for CIFAR (He et al., CVPR 2016, Sec. 4.2), about 0.27M parameters.

    3x3 conv (16 ch, pad 1) + BN + ReLU, then three stages of three BasicBlocks
    with widths 16/32/64 (stride 2 at the start of stages 2 and 3), global
    average pooling and ``fc``. Downsampling blocks use **option-B** shortcuts
    (1x1 conv + BN projection) instead of the paper's option-A zero padding,
    which adds 2,752 parameters (272,474 in total for 10 classes).
    """
    return CifarResNet(3, num_classes, in_channels)


def wrn16_4(num_classes: int = 10, in_channels: int = 3, drop_rate: float = 0.0) -> nn.Module:
    """Wide ResNet 16-4 (Zagoruyko & Komodakis, BMVC 2016), about 2.75M parameters.

    3x3 stem (16 ch), three stages of two pre-activation blocks with widths
    64/128/256 (stride 2 at stages 2 and 3), 1x1 conv shortcuts where the shape
    changes, final BN-ReLU, global average pooling and ``fc``. Dropout between
    the two convs of each block is off unless ``drop_rate`` > 0.
    """
    return WideResNet(16, 4, num_classes, in_channels, drop_rate)


def resnet18(num_classes: int = 1000, in_channels: int = 3) -> nn.Module:
    """ResNet-18 for 224x224 ImageNet inputs (He et al., CVPR 2016, Table 1), 11.7M parameters.

    7x7/2 conv (64 ch) + BN + ReLU, 3x3/2 max-pool, four stages of two
    BasicBlocks with widths 64/128/256/512 (stride 2 at stages 2-4, option-B
    projection shortcuts), global average pooling and ``fc``.
    """
    return ImageNetResNet((2, 2, 2, 2), num_classes, in_channels)
