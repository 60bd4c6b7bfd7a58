"""Compute cost and payload of the gradient hooks per training step, same run.

    python benchmarks/bench_grad_compression.py [--rank 4] [--steps 10] [--repeats 3]

ResNet-20 (untrained, seed 0) on one worker's share of a batch (32 images, 3x32x32), one
thread, a process group of one: what each DDP communication hook adds to a training step
(forward, backward, hook, SGD step) once it compresses (after its dense warm-up and first
basis refresh), and how many bytes it hands to all-reduce per compressed step. The
all-reduce itself is free with one worker, so the times isolate the hooks' arithmetic
(projections, SVD-free steps, PowerSGD's orthogonalisation). Every time is the minimum over
``--repeats`` interleaved rounds of ``--steps`` steps, so machine load inflates all alike.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from imcsim.train.grad_compression import GradCompression, attach
from imcsim.train.loop import TrainConfig, make_optimizer
from imcsim.zoo.models import build_model

VARIANTS = {"none": {"method": "none"}, "powersgd": {"method": "powersgd"},
            "greedylore": {"method": "greedylore"},
            "greedylore --grad-side long": {"method": "greedylore", "side": "long"}}


def setup(fields: dict, rank: int):
    model = build_model("resnet20", seed=0)
    ddp = nn.parallel.DistributedDataParallel(model)
    config = GradCompression(rank=rank, warmup_steps=2, refresh_every_steps=10**6, **fields)
    return ddp, attach(ddp, config, seed=0), make_optimizer(model, TrainConfig())


def step(ddp, opt, x, y) -> None:
    opt.zero_grad(set_to_none=True)
    F.cross_entropy(ddp(x), y).backward()
    opt.step()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rank", type=int, default=4)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(32, 3, 32, 32, generator=gen), torch.randint(0, 10, (32,), generator=gen)
    with tempfile.TemporaryDirectory() as tmp:
        dist.init_process_group("gloo", init_method=f"file://{tmp}/s", rank=0, world_size=1)
        runs = {name: setup(fields, args.rank) for name, fields in VARIANTS.items()}
        payload = {}
        for name, (ddp, hook, opt) in runs.items():
            for _ in range(4):  # dense warm-up, basis refresh, compressed steps
                step(ddp, opt, x, y)
            before = hook.counter.bytes_communicated
            step(ddp, opt, x, y)
            payload[name] = hook.counter.bytes_communicated - before
        best = dict.fromkeys(runs, float("inf"))
        for _ in range(args.repeats):
            for name, (ddp, _, opt) in runs.items():
                start = time.perf_counter()
                for _ in range(args.steps):
                    step(ddp, opt, x, y)
                best[name] = min(best[name], (time.perf_counter() - start) / args.steps)
        dist.destroy_process_group()
    dense = sum(p.numel() * 4 for p in runs["none"][0].parameters())
    print(f"ResNet-20, 32 images per step, rank {args.rank}, one thread")
    print(f"{'hook':30s} {'ms/step':>8s} {'vs none':>8s} {'bytes/step':>11s} {'dense/sent':>10s}")
    for name in runs:
        print(f"{name:30s} {1e3 * best[name]:8.1f} {best[name] / best['none']:7.2f}x "
              f"{payload[name]:11,d} {dense / payload[name]:9.1f}x")


if __name__ == "__main__":
    main()
