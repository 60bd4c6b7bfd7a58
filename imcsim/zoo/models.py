"""The built-in model registry: reference networks written in plain PyTorch (no torchvision,
no downloads); the architectures live in ``resnets.py``, ``vgg.py`` and ``vit.py``.

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
from torch import nn

from imcsim.errors import ConfigError
from imcsim.nn.devices import current_device
from imcsim.zoo.resnets import resnet18, resnet20, wrn16_4
from imcsim.zoo.vgg import vgg13, vgg_cifar
from imcsim.zoo.vit import tiny_vit

__all__ = [
    "MODELS",
    "ModelSpec",
    "build_model",
    "example_input",
    "get_spec",
    "resnet18",
    "resnet20",
    "tiny_vit",
    "vgg13",
    "vgg_cifar",
    "wrn16_4",
]


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
    device = current_device()  # built on the CPU: a fake-tensor capture cannot move it
    return model if device == torch.device("cpu") else model.to(device)


def example_input(name: str, batch: int = 1, in_channels: int = 3) -> torch.Tensor:
    """Zero tensor of shape ``(batch, in_channels, H, W)`` for registry model ``name``."""
    spec = get_spec(name)
    check_positive("batch", batch)
    check_positive("in_channels", in_channels)
    return torch.zeros(batch, in_channels, *spec.input_size)
