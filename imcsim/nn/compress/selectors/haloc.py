"""HALOC-style differentiable rank selection with the chip's cost table as the hardware
term (Xiao, Zhang, Gong, Yang, Yin, Zang, Yuan, "HALOC: Hardware-Aware Automatic Low-Rank
Compression for Compact Neural Networks", AAAI 2023).

Every layer holds a few candidate ranks (and the dense layer) with selection logits α,
p = softmax(α/τ).  Since the factors are nested, all candidates live in one factor pair
at the largest candidate rank: candidate k keeps the first k rank components (a mask
on the pair's middle channels).  Each step samples one candidate per layer (Gumbel-max,
straight-through gradient to every logit, as in differentiable architecture search),
and α is trained on calibration batches to minimise the network loss plus
λ·max(0, E_p[cost]/budget − 1), where E_p[cost] reads the cost table (computing cycles or
energy from the chip's mapper and cost model, or params / MACs) and λ ≥ 0 follows dual
ascent; τ is annealed from 1 to 0.1.  Candidates are spread over each layer's options
— with snapping only tile boundaries, which is HALOC's "latency-relevant rank steps" —
and the search starts at the uniform allocation.  Every few steps the most probable
allocation is scored on the whole calibration batch; the best one within budget is
returned (the last one stepped down until it fits, least logit lost per cost saved
first, competes too).  Unlike HALOC, the network weights stay frozen during the search;
fine-tuning comes after.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from imcsim.nn.compress.selectors.base import (
    Progress,
    RankProblem,
    SearchConfig,
    Selection,
)
from imcsim.nn.compress.selectors.bsr import levels
from imcsim.nn.compress.selectors.rules import Uniform
from imcsim.nn.compress.space import LayerSpace, Option

__all__ = ["Haloc", "candidates"]

_BATCH = 64
_INIT_LOGIT = 2.0
"""Initial logit of the uniform allocation's option (the others start at 0)."""
_DUAL_STEP = 20.0
"""Dual-ascent step of λ per unit of relative budget excess."""
_CHECK_EVERY = 10
"""Steps between scoring the most probable allocation on the whole calibration batch."""


def candidates(problem: RankProblem, space: LayerSpace, count: int, start: Option) -> list[Option]:
    """Up to ``count`` options of the layer's group count (and dense), spread over its cost
    range, plus ``start``; cheapest first."""
    g = problem.group_of(space)
    keep = [o for o in space.options if o.dense or o.groups == g]
    picked = set(levels(replace(space, options=tuple(keep)), count)) | {start}
    return [o for o in space.options if o in picked]


class _Mixture(nn.Module):
    """A layer as the probability mixture of its candidates (see module docstring).

    The dense candidate is the full-rank factor pair (the same function on the data,
    at the dense layer's cost), so one masked pair holds every candidate; the forward
    pass runs one sampled candidate (Gumbel-max), gradients reach every logit.
    """

    def __init__(self, problem: RankProblem, space: LayerSpace, options: list[Option],
                 groups: int, seed: int) -> None:
        super().__init__()
        bank = problem.bank
        self.options, self.groups = options, groups
        ranks = [space.full_ranks[groups] if o.dense else o.rank for o in options]
        self.top = max(ranks)
        self.pair = copy.deepcopy(bank.module(space.name, Option(groups, self.top)))
        biases = []
        for k in ranks:
            _, b = bank.approximation(space.name, Option(groups, k))
            biases.append(torch.zeros(self.pair.l.weight.shape[0]) if b is None else b.float())
        self.register_buffer("biases", torch.stack(biases))
        self.register_buffer("ranks", torch.tensor(ranks))
        self.register_buffer("costs", torch.tensor(
            [space.cost(o, problem.kind) for o in options], dtype=torch.float64))
        self.alpha = nn.Parameter(torch.zeros(len(options)))
        self.tau = 1.0
        self.gen = torch.Generator().manual_seed(seed)

    def probs(self) -> torch.Tensor:
        return torch.softmax(self.alpha / self.tau, 0)

    def weights(self) -> torch.Tensor:
        """A Gumbel-max sample of one candidate, with the softmax's gradient (straight-through)."""
        p = self.probs()
        noise = -torch.log(-torch.log(torch.rand(len(p), generator=self.gen).clamp(1e-20, 1)))
        pick = torch.argmax(torch.log(p.detach()) + noise)
        return F.one_hot(pick, len(p)).to(p.dtype) - p.detach() + p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weights()
        mask = (w[:, None] * (torch.arange(self.top)[None, :] < self.ranks[:, None])).sum(0)
        mask = mask.repeat(self.groups)
        bias = (w[:, None] * self.biases).sum(0)
        r, l_layer = self.pair.r, self.pair.l
        if isinstance(l_layer, nn.Conv2d):
            z = r(x) * mask[None, :, None, None]
            return F.conv2d(z, l_layer.weight, None, groups=l_layer.groups) + bias[None, :, None, None]
        return F.linear(r(x) * mask, l_layer.weight) + bias

    def expected_cost(self) -> torch.Tensor:
        return (self.probs().double() * self.costs).sum()


def _supernet(problem: RankProblem, count: int, start: Selection, seed: int
              ) -> tuple[nn.Module, list[_Mixture]]:
    model = copy.deepcopy(problem.bank.model).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    mixtures = []
    for i, (space, first) in enumerate(zip(problem.spaces, start)):
        options = candidates(problem, space, count, first)
        mix = _Mixture(problem, space, options, problem.group_of(space), seed + 1 + i)
        with torch.no_grad():
            mix.alpha[options.index(first)] = _INIT_LOGIT
        for p in mix.pair.parameters():
            p.requires_grad_(False)
        parent, _, child = space.name.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, child, mix)
        mixtures.append(mix)
    return model, mixtures


def _repair(problem: RankProblem, mixtures: list[_Mixture], picks: list[int]) -> list[int]:
    """Step layers down (least logit lost per cost saved first) until within budget."""
    def total() -> float:
        return problem.fixed + sum(float(m.costs[i]) for m, i in zip(mixtures, picks))

    while total() > problem.budget * (1 + 1e-12):
        best, move = math.inf, None
        for li, (m, i) in enumerate(zip(mixtures, picks)):
            cheaper = np.flatnonzero(m.costs.numpy() < float(m.costs[i]))
            if not len(cheaper):
                continue
            j = int(cheaper[np.argmax(m.costs.numpy()[cheaper])])
            lost = float(m.alpha[i].detach() - m.alpha[j].detach()) / (float(m.costs[i]) - float(m.costs[j]))
            if lost < best:
                best, move = lost, (li, j)
        if move is None:
            break
        picks[move[0]] = move[1]
    return picks


def _argmax(mixtures: list[_Mixture]) -> Selection:
    return tuple(m.options[int(torch.argmax(m.alpha.detach()))] for m in mixtures)


def _keep_best(problem: RankProblem, best: tuple[float, Selection] | None,
               selection: Selection) -> tuple[float, Selection] | None:
    """The lower-loss of ``best`` and ``selection`` (if within budget)."""
    if not problem.feasible(selection):
        return best
    assert problem.scorer is not None
    loss = problem.scorer.loss(selection)
    return (loss, selection) if best is None or loss < best[0] else best


@dataclass(frozen=True)
class Haloc:
    """Differentiable selection among candidate ranks under the chip's cost table."""

    name: str = "haloc"
    needs_budget: bool = True
    needs_scorer: bool = True
    one_group: bool = True

    def select(self, problem: RankProblem, config: SearchConfig,
               progress: Progress | None = None) -> Selection:
        problem.need(self)
        scorer = problem.scorer
        assert scorer is not None and problem.budget is not None
        start = Uniform().allocation(problem, Uniform().best_ratio(problem))
        model, mixtures = _supernet(problem, config.haloc_candidates, start, config.seed)
        opt = torch.optim.Adam([m.alpha for m in mixtures], lr=config.haloc_lr)
        gen = torch.Generator().manual_seed(config.seed)
        lam, n = 0.0, len(scorer.images)
        best: tuple[float, Selection] | None = None
        for step in range(config.haloc_steps):
            tau = 0.1 ** (step / max(config.haloc_steps - 1, 1))
            for m in mixtures:
                m.tau = tau
            idx = torch.randperm(n, generator=gen)[:_BATCH]
            with torch.enable_grad():
                loss = scorer.criterion(model(scorer.images[idx]), scorer.targets[idx])
                over = (problem.fixed + sum(m.expected_cost() for m in mixtures)) / problem.budget - 1
                opt.zero_grad(set_to_none=True)
                (loss + lam * over.float().clamp_min(0)).backward()
                opt.step()
            lam = max(0.0, lam + _DUAL_STEP * float(over.detach()))
            if progress is not None:
                progress("haloc", step + 1, config.haloc_steps)
            if step % _CHECK_EVERY == 0 or step == config.haloc_steps - 1:
                best = _keep_best(problem, best, _argmax(mixtures))
        picks = _repair(problem, mixtures, [int(torch.argmax(m.alpha.detach())) for m in mixtures])
        best = _keep_best(problem, best, tuple(m.options[i] for m, i in zip(mixtures, picks)))
        assert best is not None
        return best[1]
