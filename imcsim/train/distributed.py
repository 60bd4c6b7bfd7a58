"""Data-parallel training on CPU processes: torch.distributed (gloo) + DDP communication hooks.

:func:`train_parallel` runs :func:`imcsim.train.loop.train`'s schedule on N workers.  Every
worker computes the same global batch of each step (a function of seed, epoch and step only)
and keeps its strided share ``batch[rank::N]`` — the ``DistributedSampler`` convention, so the
workers see disjoint shards whose union is the single-process batch.  Each worker's loss is
``sum(CE over its shard) · N / global batch size``; the hook's average is then the gradient of
the global batch mean.  Gradients travel through the hook chosen by
:class:`~imcsim.train.grad_compression.GradCompression` (dense, PowerSGD, GreedyLore),
which counts the bytes.

Three ways to run, one code path (:func:`_train_rank`):

* ``workers > 1``: N processes spawned by :func:`imcsim.train.workers.run_workers`,
  rendezvous on a file store in a private temporary directory (no port to collide);
* ``workers == 1``: in the calling process, a group of one (the hook path without spawning);
* under ``torchrun`` (``RANK``/``WORLD_SIZE``/``MASTER_ADDR`` set): in the calling process,
  ``env://`` rendezvous, one process per rank, possibly on several machines.

Resuming: rank 0 saves the model, optimizer, step and every worker's hook state (gathered) to
``state_path``; a rerun with the same settings continues from it, as :func:`train` does.
Interrupting (``run_workers``): the workers ignore SIGINT; the parent terminates and joins them
in ``finally`` and re-raises the ``KeyboardInterrupt``.  Results are reproducible for a seed
and a worker count (gloo sums in a fixed order; one thread per worker).
"""

from __future__ import annotations

import copy
import gc
import math
import os
import tempfile
import time
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from pydantic import Field
from torch import nn
from torch.nn.utils import prune

from imcsim._config import StrictModel
from imcsim.errors import ConfigError
from imcsim.nn.crossbar import detached_copy
from imcsim.train.grad_compression import GradCompression, attach
from imcsim.train.state import read_state
from imcsim.train.steps import (
    Progress,
    TrainConfig,
    TrainProgress,
    TrainResult,
    apply_masks,
    batch_at,
    lr_at,
    make_optimizer,
    zero_masks,
)
from imcsim.train.workers import run_workers

__all__ = ["DistributedConfig", "is_distributed", "launched_by_torchrun", "train_parallel"]


class DistributedConfig(StrictModel):
    """How to spread one training run over processes."""

    workers: int = Field(default=1, ge=1)
    """Processes on this machine (under torchrun: must be 1 or torchrun's world size)."""
    compression: GradCompression = Field(default_factory=GradCompression)
    """How the workers exchange gradients."""
    threads_per_worker: int = Field(default=1, ge=1)
    """Intra-op threads of each worker (fixed, so results repeat)."""
    timeout_s: float = Field(default=1800.0, gt=0)
    """Give up on a collective after this many seconds (a worker died or hangs)."""
    bucket_cap_mb: float | None = Field(default=None, gt=0)
    """DDP's gradient bucket size (``None``: PyTorch's default, 25 MiB after a 1 MiB first)."""


def launched_by_torchrun() -> bool:
    """True in a process started by ``torchrun`` (or any ``env://`` launcher)."""
    return all(k in os.environ for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"))


def is_distributed(parallel: DistributedConfig) -> bool:
    """Whether ``parallel`` asks for the hook path rather than plain single-process training."""
    return (parallel.workers > 1 or parallel.compression.method != "none"
            or launched_by_torchrun())


def train_parallel(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, config: TrainConfig,
    parallel: DistributedConfig, *, state_path: str | Path | None = None,
    progress: Progress | None = None, keep_state: bool = False,
) -> TrainResult:
    """Train ``model`` in place, data-parallel; returns the run with its byte counts.

    The state file is removed when the run completes, unless ``keep_state`` (as in
    :func:`~imcsim.train.loop.train`: the caller removes it once the weights are written).
    """
    path = Path(state_path) if state_path is not None else None
    rank = int(os.environ["RANK"]) if launched_by_torchrun() else 0
    if launched_by_torchrun():
        world = int(os.environ["WORLD_SIZE"])
        if parallel.workers not in (1, world):
            raise ConfigError(f"workers={parallel.workers} but torchrun started {world}")
        _check_shards(len(images), config, world)
        result = _in_process(rank, world, "env://", model, images, labels, config, parallel,
                             path, progress if rank == 0 else None)
    elif parallel.workers == 1:
        _check_shards(len(images), config, 1)
        with tempfile.TemporaryDirectory(prefix="imcsim-ddp-") as tmp:
            result = _in_process(0, 1, f"file://{tmp}/store", model, images, labels, config,
                                 parallel, path, progress)
    else:
        _check_shards(len(images), config, parallel.workers)
        result = _spawn(model, images, labels, config, parallel, path, progress)
    if path is not None and rank == 0 and not keep_state:
        path.unlink(missing_ok=True)
    return result


def _check_shards(n: int, config: TrainConfig, world: int) -> None:
    """Every worker needs at least one image in every batch (no padding, no repeats)."""
    last = n % config.batch_size or config.batch_size
    if min(config.batch_size, n, last) < world:
        raise ConfigError(
            f"{world} workers need >= {world} images in every batch: batch size "
            f"{config.batch_size}, {n} images (last batch {last}); change --batch-size, "
            "--train-images or --workers"
        )


def _in_process(rank, world, init, model, images, labels, config, parallel, path, report,
                teardown=True):
    """Join (or reuse) the process group and train this rank.  ``teardown=False`` (spawned
    workers, which leave by ``os._exit``) keeps the group: destroying it races gloo's own
    threads, one of which may drop the last reference and join itself (an abort,
    "Resource deadlock avoided", seen in about one run of four)."""
    threads = torch.get_num_threads()
    own_group = not dist.is_initialized()
    if not own_group and init != "env://":
        raise ConfigError("a torch.distributed process group is already initialised here")
    torch.set_num_threads(parallel.threads_per_worker)
    if own_group:
        dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world,
                                timeout=timedelta(seconds=parallel.timeout_s))
    try:
        result = _train_rank(model, images, labels, config, parallel, path, report)
        dist.barrier()  # every rank's collectives are finished before the group goes
        return result
    finally:
        if own_group and teardown:
            gc.collect()  # DDP's reducer and the hook state drop their group references here
            dist.destroy_process_group()
        torch.set_num_threads(threads)


def _train_rank(model, images, labels, config, parallel, path, report) -> TrainResult:
    """One worker's training loop (the same under spawn, in-process and torchrun)."""
    rank, world = dist.get_rank(), dist.get_world_size()
    masks = zero_masks(model) if config.keep_zeros else {}
    ddp = nn.parallel.DistributedDataParallel(model, bucket_cap_mb=parallel.bucket_cap_mb)
    hook = attach(ddp, parallel.compression, seed=config.seed)
    try:
        opt = make_optimizer(model, config)
        steps_per_epoch = math.ceil(len(images) / config.batch_size)
        total = steps_per_epoch * config.epochs
        start = _load(path, model, opt, hook, config, parallel, total) if path and path.exists() else 0
        started = time.perf_counter()
        model.train()
        loss_value = float("nan")
        for step in range(start, total):
            x, y = batch_at(images, labels, step, steps_per_epoch, config)
            lr = lr_at(step, total, config)
            for group in opt.param_groups:
                group["lr"] = lr
            xs, ys = x[rank::world], y[rank::world]
            loss = F.cross_entropy(ddp(xs), ys, reduction="sum")
            if not bool(torch.isfinite(loss)):  # every rank sees its own loss: all stop here
                raise ConfigError(f"training diverged at step {step + 1} (loss {float(loss)}); "
                                  "lower the learning rate")
            opt.zero_grad(set_to_none=True)
            (loss * (world / len(y))).backward()
            opt.step()
            apply_masks(model, masks)
            loss_value = float(loss.detach()) / len(ys)
            done = step + 1
            if path and (done % config.checkpoint_every_steps == 0 or done % steps_per_epoch == 0):
                _save(path, model, opt, hook, done, config, parallel)
            if report is not None:
                report(TrainProgress(step // steps_per_epoch + 1, done, total, loss_value, lr))
        model.eval()
        return TrainResult(steps=total, resumed_from_step=start, final_loss=loss_value,
                           wall_time_s=time.perf_counter() - started, workers=world,
                           bytes_communicated=hook.counter.bytes_communicated,
                           bytes_uncompressed=hook.counter.bytes_uncompressed)
    finally:
        # an exception's traceback keeps this frame: drop the reducer here, or it outlives
        # the group and blocks in the gloo destructor when it is finally freed
        del ddp, hook


def _settings(config: TrainConfig, parallel: DistributedConfig) -> dict[str, Any]:
    return {"train": config.model_dump(), "workers": dist.get_world_size(),
            "compression": parallel.compression.model_dump()}


def _save(path, model, opt, hook, step, config, parallel) -> None:
    """Gather every worker's hook state to rank 0, which writes one file atomically."""
    states: list[Any] | None = [None] * dist.get_world_size() if dist.get_rank() == 0 else None
    dist.gather_object(hook.state_dict(), states, dst=0)
    if dist.get_rank() == 0:
        tmp = path.with_name(path.name + ".tmp")
        torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step,
                    "config": _settings(config, parallel), "hooks": states}, tmp)
        os.replace(tmp, path)


def _load(path, model, opt, hook, config, parallel, total: int) -> int:
    """Restore model, optimizer and this worker's hook state (checked as :func:`train` does)."""
    state = read_state(path, total)
    if state["config"] != _settings(config, parallel):
        raise ConfigError(
            f"training state {path} was written with other settings (training, workers or "
            "gradient compression); delete it or pass --restart"
        )
    hooks = state.get("hooks")
    if not isinstance(hooks, list) or len(hooks) != dist.get_world_size():
        raise ConfigError(f"training state {path} has no hook state per worker; delete it "
                          "or pass --restart")
    try:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        hook.load_state_dict(hooks[dist.get_rank()])
    except (RuntimeError, ValueError, KeyError, TypeError, AttributeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"training state {path} does not fit the model: {first}; "
                          "delete it or pass --restart") from None
    return state["step"]


# -- spawning ---------------------------------------------------------------------------------
def _spawn(model, images, labels, config, parallel, path, progress) -> TrainResult:
    # computed weights (torch.nn.utils.prune) cannot cross processes: ship a detached copy
    shipped = detached_copy(model)
    saved = run_workers(_worker, (shipped, images, labels, config, parallel, path),
                        parallel.workers, progress)
    model.load_state_dict(saved["model"])
    _recompute_pruned(model)
    model.eval()
    return TrainResult(**saved["result"])


def _recompute_pruned(model: nn.Module) -> None:
    """``torch.nn.utils.prune`` recomputes ``weight`` from ``weight_orig`` only on a forward
    pass: do it now, so the loaded weights show at once."""
    for module in model.modules():
        for hook in module._forward_pre_hooks.values():
            if isinstance(hook, prune.BasePruningMethod):
                hook(module, None)


def _worker(rank, world, init, report, model, images, labels, config, parallel, path):
    own = copy.deepcopy(model)  # the pickled parameters live in memory shared by all workers
    result = _in_process(rank, world, init, own, images, labels, config, parallel, path, report,
                         teardown=False)
    return {"result": asdict(result), "model": own.state_dict()} if rank == 0 else None
