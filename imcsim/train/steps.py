"""The pieces of one training step that the single-process loop (``imcsim.train.loop``) and
the data-parallel workers (``imcsim.train.distributed``) share: the config, the seeded batch
and learning-rate schedule, the masks that keep pruned weights at zero, the optimizer.

Every random choice is drawn from generators seeded by ``(seed, epoch, step)``, so a run
killed after a saved checkpoint and resumed gives the same weights as an uninterrupted run.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from imcsim._config import StrictModel
from imcsim.nn.ops import weight_modules

__all__ = ["FINETUNE", "MAX_SEED", "Penalty", "Progress", "TrainConfig", "TrainProgress",
           "TrainResult", "apply_masks", "batch_at", "lr_at", "make_optimizer", "shift_batch",
           "zero_masks"]

MAX_SEED = 2**63 - 1


class TrainConfig(StrictModel):
    """Hyper-parameters of one training (or fine-tuning) run."""

    epochs: int = Field(default=8, ge=1, le=10_000)
    """Passes over the training images (1..10,000)."""
    batch_size: int = Field(default=64, ge=1, le=65_536)
    """Images per optimizer step."""
    lr: float = Field(default=0.05, gt=0, le=10)
    """Peak learning rate of the cosine schedule (SGD rates above 10 only diverge)."""
    warmup_steps: int = Field(default=30, ge=0, le=10**9)
    """Steps of linear warm-up before the cosine decay."""
    momentum: float = Field(default=0.9, ge=0, lt=1)
    """Nesterov momentum (SGD only)."""
    optimizer: Literal["sgd", "adamw"] = "sgd"
    """``sgd`` (Nesterov) or ``adamw`` (decoupled weight decay; for transformers)."""
    weight_decay: float = Field(default=5e-4, ge=0, le=1)
    """L2 penalty on every parameter."""
    shift_px: int = Field(default=2, ge=0, le=16)
    """Augmentation: random translation of up to this many pixels (0 = none)."""
    seed: int = Field(default=0, ge=0, le=MAX_SEED)
    """Seed of shuffling and augmentation (model initialisation is seeded by the caller)."""
    checkpoint_every_steps: int = Field(default=50, ge=1, le=10**9)
    """Save the resumable training state every this many steps (and at every epoch end)."""
    keep_zeros: bool = True
    """Weights that are exactly zero at the start stay zero (pruning masks stay applied)."""


FINETUNE = TrainConfig(epochs=2, lr=0.01, warmup_steps=0)
"""Default fine-tuning budget: two epochs at a low, constant-then-cosine learning rate."""


@dataclass(frozen=True)
class TrainProgress:
    """Reported after every optimizer step."""

    epoch: int
    step: int
    """Global step (1-based) over the whole run."""
    total_steps: int
    loss: float
    lr: float


@dataclass(frozen=True)
class TrainResult:
    """What a finished run did."""

    steps: int
    resumed_from_step: int
    final_loss: float
    wall_time_s: float = 0.0
    """Seconds this call spent training (the resumed part only, after a resume)."""
    workers: int = 1
    """Data-parallel processes (1 = plain single-process training)."""
    bytes_communicated: int = 0
    """Gradient bytes each worker handed to all-reduce over the whole run (0 for one process)."""
    bytes_uncompressed: int = 0
    """What uncompressed data-parallel training would have all-reduced per worker."""


Progress = Callable[[TrainProgress], None]
Penalty = Callable[[nn.Module], torch.Tensor]
"""An extra loss term of the model's weights, added to every step's loss."""


def _mixed_seed(*parts: int) -> int:
    return int(np.random.SeedSequence([abs(p) for p in parts]).generate_state(1)[0])


def lr_at(step: int, total: int, config: TrainConfig) -> float:
    """Learning rate of (0-based) ``step``: linear warm-up, then cosine decay to zero."""
    warm = min(config.warmup_steps, max(total - 1, 0))
    if step < warm:
        return config.lr * (step + 1) / warm
    frac = (step - warm) / max(total - warm, 1)
    return 0.5 * config.lr * (1 + math.cos(math.pi * frac))


def shift_batch(images: torch.Tensor, shift_px: int, gen: torch.Generator) -> torch.Tensor:
    """Translate every image by its own random (dy, dx) in [−shift_px, shift_px], edge-padded."""
    if shift_px == 0:
        return images
    n, _, h, w = images.shape
    padded = F.pad(images, (shift_px,) * 4, mode="replicate")
    offs = torch.randint(0, 2 * shift_px + 1, (n, 2), generator=gen)
    rows = (offs[:, 0, None] + torch.arange(h)[None, :])[:, None, :, None]
    cols = (offs[:, 1, None] + torch.arange(w)[None, :])[:, None, None, :]
    batch = torch.arange(n)[:, None, None, None]
    chans = torch.arange(images.shape[1])[None, :, None, None]
    return padded[batch, chans, rows, cols]


def zero_masks(model: nn.Module) -> dict[str, torch.Tensor]:
    """``{param name: mask}`` of supported weights (``imcsim.nn.ops``) holding exact zeros."""
    masks = {}
    for name, module, _ in weight_modules(model):
        weight = getattr(module, "weight", None)
        if isinstance(weight, nn.Parameter):
            nonzero = weight.detach() != 0
            if not bool(nonzero.all()):
                masks[f"{name}.weight" if name else "weight"] = nonzero
    return masks


def apply_masks(model: nn.Module, masks: dict[str, torch.Tensor]) -> None:
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, mask in masks.items():
            params[name].mul_(mask)


def batch_at(images: torch.Tensor, labels: torch.Tensor, step: int, steps_per_epoch: int,
             config: TrainConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """The (augmented) batch of global ``step``: a function of (seed, epoch, step) only."""
    epoch, within = divmod(step, steps_per_epoch)
    order = torch.randperm(
        len(images), generator=torch.Generator().manual_seed(_mixed_seed(config.seed, epoch))
    )
    idx = order[within * config.batch_size : (within + 1) * config.batch_size]
    gen = torch.Generator().manual_seed(_mixed_seed(config.seed, epoch, within + 1))
    return shift_batch(images[idx], config.shift_px, gen), labels[idx]


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """``config.optimizer`` over every parameter of ``model``: SGD with Nesterov momentum
    and weight decay, or AdamW."""
    if config.optimizer == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=config.lr,
                                 weight_decay=config.weight_decay)
    return torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                           nesterov=config.momentum > 0, weight_decay=config.weight_decay)
