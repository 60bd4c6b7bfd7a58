"""Gradient communication of data-parallel training, as DDP communication hooks, with byte counts.

* ``none`` — plain averaging all-reduce (PyTorch's ``allreduce_hook``);
* ``powersgd`` — PyTorch's own PowerSGD hook (Vogels, Karimireddy, Jaggi, "PowerSGD: Practical
  Low-Rank Gradient Compression for Distributed Optimization", NeurIPS 2019) with error feedback
  and warm start, used unchanged as the baseline;
* ``greedylore`` — :class:`imcsim.train.greedylore.GreedyLore`.

Every hook counts, per worker, the bytes it hands to collectives (all-reduce payloads, basis
checksums; the ring all-reduce puts about 2·(N−1)/N times that on the wire) and the bytes plain
DDP would have all-reduced.  Hook states save and load (``state_dict``) so a training run
resumes with its error-feedback memory intact.  DDP's own broadcast of buffers (BatchNorm
running statistics), the same for every hook, is not counted.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.algorithms.ddp_comm_hooks import default_hooks
from torch.distributed.algorithms.ddp_comm_hooks import powerSGD_hook as psgd

from imcsim.train.comm import (
    METHODS,
    CommCounter,
    CommHook,
    GradCompression,
    classifier_params,
    completed_future,
)
from imcsim.train.greedylore import GreedyLore

__all__ = ["METHODS", "CommCounter", "CommHook", "GradCompression", "attach", "classifier_params",
           "completed_future"]

def _hook(state, bucket):  # no annotations: DDP checks them against non-string types
    return state.communicate(bucket)


def attach(ddp: nn.parallel.DistributedDataParallel, config: GradCompression, *,
           seed: int) -> CommHook:
    """Register ``config``'s communication hook on ``ddp`` and return its state."""
    model = ddp.module
    hook: CommHook
    if config.method == "greedylore":
        hook = GreedyLore(model, config, seed=seed, dense=classifier_params(model))
    elif config.method == "powersgd":
        hook = _PowerSGD(model, config, seed=seed)
    else:
        hook = _AllReduce()
    ddp.register_comm_hook(hook, _hook)
    return hook


class _AllReduce:
    """Uncompressed DDP: average every bucket with one all-reduce."""

    def __init__(self) -> None:
        self.counter = CommCounter()

    def communicate(self, bucket: dist.GradBucket) -> torch.futures.Future[torch.Tensor]:
        size = bucket.buffer().numel() * bucket.buffer().element_size()
        self.counter.bytes_uncompressed += size
        self.counter.bytes_communicated += size
        return completed_future(default_hooks.allreduce_hook(None, bucket).wait())

    def state_dict(self) -> dict:
        return {"counter": self.counter.as_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.counter = CommCounter(**state["counter"])


class _PowerSGD:
    """PyTorch's ``powerSGD_hook``, counted, with its per-bucket memories kept per parameter.

    PyTorch keys the error-feedback and warm-start memories by bucket index, and DDP lays
    buckets out anew after the first step of every (resumed) run; this wrapper moves the
    memories to the new layout so that a resumed run continues exactly.
    """

    def __init__(self, model: nn.Module, config: GradCompression, *, seed: int) -> None:
        self.state = psgd.PowerSGDState(
            process_group=None, matrix_approximation_rank=config.rank,
            start_powerSGD_iter=config.warmup_steps, min_compression_rate=config.min_compression,
            use_error_feedback=True, warm_start=True, random_seed=seed)
        self.counter = CommCounter()
        self.names = {p: n for n, p in model.named_parameters()}
        self.shapes = {n: p.shape for n, p in model.named_parameters()}
        self.layout: dict[int, tuple[str, ...]] = {}
        self.pool: dict[str, dict[str, torch.Tensor]] = {}

    def communicate(self, bucket: dist.GradBucket) -> torch.futures.Future[torch.Tensor]:
        buffer = bucket.buffer()
        size = buffer.numel() * buffer.element_size()
        self.counter.bytes_uncompressed += size
        self._follow_layout(bucket.index(), tuple(self.names[p] for p in bucket.parameters()))
        before = self.state.total_numel_after_compression
        vanilla = self.state.iter < self.state.start_powerSGD_iter
        # PyTorch chains this bucket's later all-reduces in future callbacks; waiting here keeps
        # the collectives of successive buckets in the same order on every worker (gloo needs it)
        averaged = psgd.powerSGD_hook(self.state, bucket).wait()
        sent = self.state.total_numel_after_compression - before
        self.counter.bytes_communicated += size if vanilla else sent * buffer.element_size()
        return completed_future(averaged)

    # -- memories per parameter -----------------------------------------------------------
    def _compressed(self, names: tuple[str, ...]) -> list[tuple[str, int, int, int]]:
        """``(name, rows, cols, rank)`` of the matrices PowerSGD compresses, in its Q order."""
        groups: dict[tuple[int, int], list[tuple[str, int, int, int]]] = {}
        for name in names:
            rows = self.shapes[name][0]
            cols = int(np.prod(self.shapes[name])) // rows
            rank = min(rows, cols, self.state.matrix_approximation_rank)
            if psgd._should_compress(rows, cols, rank, self.state.min_compression_rate)[0]:
                groups.setdefault((rows, cols), []).append((name, rows, cols, rank))
        return [item for group in groups.values() for item in group]

    def _explode(self, b: int) -> dict[str, dict[str, torch.Tensor]]:
        names, out = self.layout[b], {}
        if b in self.state.error_dict:
            sizes = [int(np.prod(self.shapes[n])) for n in names]
            for n, e in zip(names, self.state.error_dict[b].split(sizes)):
                out.setdefault(n, {})["error"] = e.clone()
        if b in self.state.q_memory_dict:
            items = self._compressed(names)
            parts = self.state.q_memory_dict[b].split([c * r for _, _, c, r in items])
            for (n, *_), q in zip(items, parts):
                out.setdefault(n, {})["q"] = q.clone()
        return out

    def _follow_layout(self, b: int, names: tuple[str, ...]) -> None:
        if self.layout.get(b) == names:
            return
        for other, old in list(self.layout.items()):
            if set(old) & set(names) or other == b:
                self.pool.update(self._explode(other))
                del self.layout[other]
                for memory in (self.state.error_dict, self.state.p_memory_dict,
                               self.state.q_memory_dict):
                    memory.pop(other, None)
        self.layout[b] = names
        if all("error" in self.pool.get(n, {}) for n in names):
            self.state.error_dict[b] = torch.cat([self.pool[n].pop("error") for n in names])
        items = self._compressed(names)
        if items and all("q" in self.pool.get(n, {}) for n, *_ in items):
            self.state.q_memory_dict[b] = torch.cat([self.pool[n].pop("q") for n, *_ in items])
            self.state.p_memory_dict[b] = torch.empty(sum(rows * r for _, rows, _, r in items))

    # -- checkpoints ----------------------------------------------------------------------
    def state_dict(self) -> dict:
        memories = {n: dict(m) for n, m in self.pool.items()}
        for b in self.layout:
            for n, m in self._explode(b).items():
                memories.setdefault(n, {}).update(m)
        kind, keys, pos, has_gauss, gauss = self.state.rng.get_state()
        return {"counter": self.counter.as_dict(), "iter": self.state.iter,
                "numel": [self.state.total_numel_before_compression,
                          self.state.total_numel_after_compression],
                "rng": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                        "has_gauss": int(has_gauss), "gauss": float(gauss)},
                "memories": memories}

    def load_state_dict(self, state: dict) -> None:
        self.counter = CommCounter(**state["counter"])
        self.state.iter = int(state["iter"])
        before, after = state["numel"]
        self.state.total_numel_before_compression = before
        self.state.total_numel_after_compression = after
        rng = state["rng"]
        self.state.rng.set_state(("MT19937", rng["keys"].numpy().astype(np.uint32), rng["pos"],
                                  rng["has_gauss"], rng["gauss"]))
        self.layout.clear()
        for memory in (self.state.error_dict, self.state.p_memory_dict, self.state.q_memory_dict):
            memory.clear()
        self.pool = {n: dict(m) for n, m in state["memories"].items()}
