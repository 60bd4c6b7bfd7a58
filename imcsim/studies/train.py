"""Train, evaluate and fine-tune models on in-memory tensors (CPU friendly, seeded, resumable).

Training is SGD with Nesterov momentum (or AdamW, Loshchilov & Hutter, ICLR 2019, the usual
choice for vision transformers) and a per-step cosine learning-rate schedule after a
short linear warm-up (Loshchilov & Hutter, "SGDR", ICLR 2017; Goyal et al., 2017), light
augmentation by random translations of up to ``shift_px`` pixels.  Every random choice
(initialisation is the caller's, shuffling and augmentation are ours) is drawn from
generators seeded by ``(seed, epoch, step)``, so a run killed after a saved checkpoint and
resumed gives the same weights as an uninterrupted run.

Masks stay applied while fine-tuning compressed models: weights that are exactly zero when
training starts (pruned weights) are forced back to zero after every optimizer step, which
works for any module whose ``weight`` is a plain parameter; modules pruned with
``torch.nn.utils.prune`` keep their own ``weight_mask`` and need nothing.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from imcsim._config import StrictModel
from imcsim.errors import ConfigError
from imcsim.nn.devices import module_device
from imcsim.nn.extract import check_finite
from imcsim.nn.ops import weight_modules
from imcsim.studies.train_state import DeferInterrupt, TrainInterrupted, load_state, save_state

if TYPE_CHECKING:
    from imcsim.studies.distributed import DistributedConfig

__all__ = ["TrainConfig", "TrainInterrupted", "TrainProgress", "TrainResult", "batch_at",
           "evaluate", "finetune", "make_optimizer", "train"]

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


@torch.no_grad()
def evaluate(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 256
) -> float:
    """Top-1 accuracy (fraction in [0, 1]) of ``model`` in eval mode; restores its mode."""
    if len(images) == 0:
        raise ConfigError("evaluate: no images")
    check_finite(images, "evaluation images")
    was_training = model.training
    model.eval()
    try:
        correct = 0
        device = module_device(model)  # one transfer per batch, to the model's device
        for start in range(0, len(images), batch_size):
            logits = model(images[start : start + batch_size].to(device))
            correct += int((logits.argmax(1) == labels[start : start + batch_size].to(device)
                            ).sum())
    finally:
        model.train(was_training)
    return correct / len(images)


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


def train(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    config: TrainConfig | None = None,
    *,
    state_path: str | Path | None = None,
    progress: Progress | None = None,
    keep_state: bool = False,
    penalty: Penalty | None = None,
    parallel: DistributedConfig | None = None,
) -> TrainResult:
    """Train ``model`` in place on ``images``/``labels`` (cross-entropy, plus
    ``penalty(model)`` when given, e.g. a stable-rank regulariser).

    With ``state_path`` the optimizer state is saved every ``checkpoint_every_steps`` steps,
    at every epoch end and when Ctrl-C stops the run (at the end of the current step;
    ``TrainInterrupted`` is raised); a later call with the same path and config resumes
    from it.  The state file is removed when the run completes, unless ``keep_state``
    (then the caller removes it once the trained weights are safely written).  With
    ``parallel`` (more than one worker, gradient compression, or under ``torchrun``) the run
    is data-parallel: :func:`imcsim.studies.distributed.train_parallel`.
    """
    config = config if config is not None else TrainConfig()
    if len(images) != len(labels) or len(images) == 0:
        raise ConfigError(f"train: {len(images)} images for {len(labels)} labels")
    check_finite(images, "training images")
    if parallel is not None:
        from imcsim.studies.distributed import is_distributed, train_parallel

        if is_distributed(parallel):
            if penalty is not None:
                raise ConfigError("train: a penalty is not supported data-parallel; "
                                  "run it on one process")
            return train_parallel(model, images, labels, config, parallel,
                                  state_path=state_path, progress=progress,
                                  keep_state=keep_state)
    started = time.perf_counter()
    steps_per_epoch = math.ceil(len(images) / config.batch_size)
    total = steps_per_epoch * config.epochs
    opt = make_optimizer(model, config)
    masks = zero_masks(model) if config.keep_zeros else {}
    path = Path(state_path) if state_path is not None else None
    start, loss_value = 0, float("nan")
    if path is not None and path.exists():
        start, loss_value = load_state(path, model, opt, config, total)
    model.train()
    done, in_step = start, False
    try:
        with DeferInterrupt() as interrupt:
            for step in range(start, total):
                in_step = True
                loss_value = _step(model, opt, masks, images, labels, step, steps_per_epoch,
                                   total, config, penalty)
                done, in_step = step + 1, False
                at_mark = done % config.checkpoint_every_steps == 0 or done % steps_per_epoch == 0
                if path and (at_mark or done == total):
                    save_state(path, model, opt, done, config, loss_value)
                if interrupt.hit:
                    raise KeyboardInterrupt
                if progress is not None:
                    progress(TrainProgress(step // steps_per_epoch + 1, done, total, loss_value,
                                           lr_at(step, total, config)))
    except KeyboardInterrupt:
        if path is None or in_step:  # mid-step weights are half updated: keep the last save
            raise
        save_state(path, model, opt, done, config, loss_value)
        raise TrainInterrupted(path, done, total) from None
    model.eval()
    if path and path.exists() and not keep_state:
        path.unlink()
    return TrainResult(steps=total, resumed_from_step=start, final_loss=loss_value,
                       wall_time_s=time.perf_counter() - started)


def _step(model: nn.Module, opt: torch.optim.Optimizer, masks: dict[str, torch.Tensor],
          images: torch.Tensor, labels: torch.Tensor, step: int, steps_per_epoch: int,
          total: int, config: TrainConfig, penalty: Penalty | None = None) -> float:
    """One optimizer step; a non-finite loss stops training (nothing diverged is saved)."""
    x, y = batch_at(images, labels, step, steps_per_epoch, config)  # drawn on the CPU
    x, y = x.to(module_device(model)), y.to(module_device(model))
    for group in opt.param_groups:
        group["lr"] = lr_at(step, total, config)
    loss = F.cross_entropy(model(x), y)
    if penalty is not None:
        loss = loss + penalty(model)
    if not bool(torch.isfinite(loss)):
        raise ConfigError(f"training diverged at step {step + 1} (loss {float(loss)}); "
                          "lower the learning rate")
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    apply_masks(model, masks)
    return float(loss.detach())


def finetune(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    config: TrainConfig | None = None,
    *,
    progress: Progress | None = None,
    state_path: str | Path | None = None,
    penalty: Penalty | None = None,
    parallel: DistributedConfig | None = None,
) -> TrainResult:
    """Short, low-learning-rate training of a compressed (or crossbar) model; zeros stay zero.

    Works on any module: low-rank factors train as ordinary convolutions, pruned weights
    keep their masks (``keep_zeros``), and crossbar layers from :func:`to_crossbar` train
    with their quantization in the loop through a straight-through estimator.  ``parallel``
    runs it data-parallel (see :func:`train`).
    """
    config = config if config is not None else FINETUNE
    return train(model, images, labels, config, state_path=state_path, progress=progress,
                 penalty=penalty, parallel=parallel)
