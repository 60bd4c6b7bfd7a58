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
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from imcsim.errors import ConfigError
from imcsim.nn.extract import check_finite
from imcsim.train.distributed import DistributedConfig, is_distributed, train_parallel
from imcsim.train.state import DeferInterrupt, TrainInterrupted, load_state, save_state
from imcsim.train.steps import (
    FINETUNE,
    Penalty,
    Progress,
    TrainConfig,
    TrainProgress,
    TrainResult,
    apply_masks,
    batch_at,
    lr_at,
    make_optimizer,
    shift_batch,
    zero_masks,
)

# The step pieces live in ``imcsim.train.steps``; this module re-exports the ones its callers
# always imported from here.
__all__ = ["FINETUNE", "TrainConfig", "TrainInterrupted", "TrainProgress", "TrainResult",
           "batch_at", "evaluate", "finetune", "lr_at", "make_optimizer", "shift_batch", "train"]


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
        for start in range(0, len(images), batch_size):
            logits = model(images[start : start + batch_size])
            correct += int((logits.argmax(1) == labels[start : start + batch_size]).sum())
    finally:
        model.train(was_training)
    return correct / len(images)


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
    is data-parallel: :func:`imcsim.train.distributed.train_parallel`.
    """
    config = config if config is not None else TrainConfig()
    if len(images) != len(labels) or len(images) == 0:
        raise ConfigError(f"train: {len(images)} images for {len(labels)} labels")
    check_finite(images, "training images")
    if parallel is not None and is_distributed(parallel):
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
    x, y = batch_at(images, labels, step, steps_per_epoch, config)
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
