"""VGG networks in plain PyTorch (Simonyan & Zisserman, "Very Deep Convolutional Networks
for Large-Scale Image Recognition", ICLR 2015).

* ``vgg_cifar`` -- VGG-11 (configuration A) with batch normalisation (Ioffe & Szegedy,
  ICML 2015), adapted to 32x32.
* ``vgg13`` -- configuration B for 224x224 ImageNet inputs.
"""

from __future__ import annotations

import torch
from torch import nn

from imcsim.zoo.init import init_weights

__all__ = ["VGG", "VGG11_LAYOUT", "VGG13_LAYOUT", "vgg13", "vgg_cifar", "vgg_features"]


def vgg_features(layout: list[int | str], in_channels: int, *, batch_norm: bool) -> nn.Sequential:
    """VGG feature extractor: ints are 3x3/pad-1 conv widths (+BN) + ReLU, ``"M"`` a 2x2 max-pool.

    Pools use ``ceil_mode=True``: identical to floor mode on 32x32 and 224x224
    inputs, and lets 28x28 inputs (MNIST) survive five halvings.
    """
    layers: list[nn.Module] = []
    channels = in_channels
    for item in layout:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2, ceil_mode=True))
            continue
        width = int(item)
        layers.append(nn.Conv2d(channels, width, kernel_size=3, padding=1, bias=not batch_norm))
        if batch_norm:
            layers.append(nn.BatchNorm2d(width))
        layers.append(nn.ReLU(inplace=True))
        channels = width
    return nn.Sequential(*layers)


VGG11_LAYOUT: list[int | str] = [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"]
VGG13_LAYOUT: list[int | str] = [
    64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M",
]  # fmt: skip


class VGG(nn.Module):
    """VGG network: ``features`` (convs/pools), ``avgpool``, ``classifier``."""

    def __init__(self, features: nn.Sequential, pool_size: int, classifier: nn.Module) -> None:
        super().__init__()
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d(pool_size)
        self.classifier = classifier
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


def vgg_cifar(num_classes: int = 10, in_channels: int = 3) -> nn.Module:
    """VGG-11 with BN for 32x32 inputs (Simonyan & Zisserman 2015 config A + Ioffe & Szegedy 2015).

    Layout: conv64-M-conv128-M-conv256-conv256-M-conv512-conv512-M-conv512-conv512-M
    (8 convs 3x3 pad 1, each followed by BN and ReLU; M = 2x2 max-pool), which
    reduces 32x32 to 1x1x512, then ``avgpool`` (global) and a single
    ``classifier`` Linear 512 -> ``num_classes``. About 9.2M parameters.
    """
    features = vgg_features(VGG11_LAYOUT, in_channels, batch_norm=True)
    return VGG(features, 1, nn.Linear(512, num_classes))


def vgg13(num_classes: int = 1000, in_channels: int = 3) -> nn.Module:
    """VGG-13 for 224x224 ImageNet inputs (Simonyan & Zisserman, ICLR 2015, config B), 133M parameters.

    Ten 3x3/pad-1 convs (64, 64, M, 128, 128, M, 256, 256, M, 512, 512, M, 512,
    512, M; no BN, as in the paper), adaptive average pooling to 7x7, and the
    classifier 25088 -> 4096 -> 4096 -> ``num_classes`` with ReLU and dropout 0.5.
    """
    features = vgg_features(VGG13_LAYOUT, in_channels, batch_norm=False)
    classifier = nn.Sequential(
        nn.Linear(512 * 7 * 7, 4096),
        nn.ReLU(inplace=True),
        nn.Dropout(0.5),
        nn.Linear(4096, 4096),
        nn.ReLU(inplace=True),
        nn.Dropout(0.5),
        nn.Linear(4096, num_classes),
    )
    return VGG(features, 7, classifier)
