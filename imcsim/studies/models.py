"""Reference CNNs written in plain PyTorch (no torchvision, no downloads).

Every ``nn.Conv2d`` and ``nn.Linear`` is a named submodule that runs exactly once
per forward pass, so a mapper can walk ``named_modules()`` and find every
weight matrix it has to place on a crossbar. Module names follow the usual
conventions (``conv1``, ``bn1``, ``layer1.0.conv1``, ``layer2.0.shortcut.0``,
``fc``; ``features.N`` / ``classifier.N`` for VGG).

Models:

* ``resnet20``  -- He, Zhang, Ren, Sun, "Deep Residual Learning for Image
  Recognition", CVPR 2016, Sec. 4.2 (CIFAR ResNet, 6n+2 layers with n=3).
* ``wrn16_4``   -- Zagoruyko & Komodakis, "Wide Residual Networks", BMVC 2016
  (WRN-16-4).
* ``vgg_cifar`` -- VGG-11 (configuration A of Simonyan & Zisserman, ICLR 2015)
  with batch normalisation (Ioffe & Szegedy, ICML 2015), adapted to 32x32.
* ``resnet18``  -- He et al. 2016, Table 1, 18-layer ImageNet network.
* ``vgg13``     -- Simonyan & Zisserman, "Very Deep Convolutional Networks for
  Large-Scale Image Recognition", ICLR 2015, configuration B.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from imcsim.errors import ConfigError
from imcsim.nn.devices import current_device
from imcsim.studies.vit import tiny_vit

__all__ = [
    "MODELS",
    "ModelSpec",
    "build_model",
    "example_input",
    "resnet18",
    "resnet20",
    "tiny_vit",
    "vgg13",
    "vgg_cifar",
    "wrn16_4",
]


def init_weights(model: nn.Module) -> None:
    """Kaiming-normal convs (He et al., ICCV 2015; fan-out, ReLU gain), BN to (1, 0).

    Linear layers keep PyTorch's default initialisation.
    """
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


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


def vgg_cifar(num_classes: int = 10, in_channels: int = 3) -> nn.Module:
    """VGG-11 with BN for 32x32 inputs (Simonyan & Zisserman 2015 config A + Ioffe & Szegedy 2015).

    Layout: conv64-M-conv128-M-conv256-conv256-M-conv512-conv512-M-conv512-conv512-M
    (8 convs 3x3 pad 1, each followed by BN and ReLU; M = 2x2 max-pool), which
    reduces 32x32 to 1x1x512, then ``avgpool`` (global) and a single
    ``classifier`` Linear 512 -> ``num_classes``. About 9.2M parameters.
    """
    features = vgg_features(VGG11_LAYOUT, in_channels, batch_norm=True)
    return VGG(features, 1, nn.Linear(512, num_classes))


def resnet18(num_classes: int = 1000, in_channels: int = 3) -> nn.Module:
    """ResNet-18 for 224x224 ImageNet inputs (He et al., CVPR 2016, Table 1), 11.7M parameters.

    7x7/2 conv (64 ch) + BN + ReLU, 3x3/2 max-pool, four stages of two
    BasicBlocks with widths 64/128/256/512 (stride 2 at stages 2-4, option-B
    projection shortcuts), global average pooling and ``fc``.
    """
    return ImageNetResNet((2, 2, 2, 2), num_classes, in_channels)


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


@dataclass(frozen=True)
class ModelSpec:
    """Registry entry: how to build a model and what input it expects."""

    name: str
    builder: Callable[..., nn.Module]
    input_size: tuple[int, int]
    num_classes: int
    description: str


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            "resnet20", resnet20, (32, 32), 10,
            "ResNet-20 for CIFAR, option-B shortcuts (He et al., CVPR 2016)",
        ),
        ModelSpec(
            "wrn16-4", wrn16_4, (32, 32), 10,
            "Wide ResNet 16-4 for CIFAR (Zagoruyko & Komodakis, BMVC 2016)",
        ),
        ModelSpec(
            "vgg-cifar", vgg_cifar, (32, 32), 10,
            "VGG-11 with BN for CIFAR (Simonyan & Zisserman, ICLR 2015; Ioffe & Szegedy, ICML 2015)",
        ),
        ModelSpec(
            "tiny-vit", tiny_vit, (32, 32), 10,
            "Tiny ViT: 4x4 patches, width 192, 12 heads, MLP ratio 2, depth 4, 2 CLS tokens "
            "(after Wu, 'Powerful Design of Small Vision Transformer on CIFAR10', arXiv 2025)",
        ),
        ModelSpec(
            "resnet18", resnet18, (224, 224), 1000,
            "ResNet-18 for ImageNet (He et al., CVPR 2016)",
        ),
        ModelSpec(
            "vgg13", vgg13, (224, 224), 1000,
            "VGG-13 (config B) for ImageNet (Simonyan & Zisserman, ICLR 2015)",
        ),
    )
}  # fmt: skip


def get_spec(name: str) -> ModelSpec:
    """Registry entry for ``name``; ``ConfigError`` listing the known names otherwise."""
    try:
        return MODELS[name]
    except KeyError:
        known = ", ".join(MODELS)
        raise ConfigError(f"unknown model {name!r}; known models: {known}") from None


def check_positive(field: str, value: int) -> None:
    """Raise ``ConfigError`` unless ``value`` is an int >= 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{field} must be a positive integer (got {value!r})")


def build_model(
    name: str, *, num_classes: int | None = None, in_channels: int = 3, seed: int = 0
) -> nn.Module:
    """Build registry model ``name``; ``num_classes`` defaults to the spec's value.

    Weights are initialised from ``seed`` without touching torch's global generator, so
    the same call gives the same model in every process (sweep workers agree); the model
    is then moved to the run device (``imcsim.nn.devices.current_device``; the CPU unless
    ``--device`` / ``use_device`` says otherwise).
    """
    spec = get_spec(name)
    classes = spec.num_classes if num_classes is None else num_classes
    check_positive("num_classes", classes)
    check_positive("in_channels", in_channels)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = spec.builder(num_classes=classes, in_channels=in_channels)
    return model.to(current_device())


def example_input(name: str, batch: int = 1, in_channels: int = 3) -> torch.Tensor:
    """Zero tensor of shape ``(batch, in_channels, H, W)`` for registry model ``name``."""
    spec = get_spec(name)
    check_positive("batch", batch)
    check_positive("in_channels", in_channels)
    return torch.zeros(batch, in_channels, *spec.input_size)
