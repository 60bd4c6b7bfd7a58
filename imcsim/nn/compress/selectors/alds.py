"""ALDS: automatic layer-wise decomposition selection (Liebenwein, Maalouf, Gal, Feldman,
Rus, "Compressing Neural Networks: Towards Determining the Optimal Layer-wise
Decomposition", NeurIPS 2021).

A layer folded to C_out × C_in·K² and split into k input-channel slices (imcsim's input
split with k groups) has, at rank j per slice, the error

    e(j, k) = max over slices σ_{j+1}(slice) / ‖W‖₂

(for DRONE and feature-based factorisations the σ are those of the matrix they truncate,
relative to its largest).  Global step, for fixed k per layer: every layer takes the
cheapest candidate whose error is ≤ ε, and ε is the smallest threshold whose allocation
meets the budget — this minimises the largest layer error (each layer's cost is a
non-increasing step function of ε, so the total is too).  Local step: each layer picks,
among all its (k, j) within the cost the global step gave it, the one with the smallest
error.  Alternate until the k stop changing; repeat from several random starts and keep
the allocation with the smallest largest error.  The budget is whatever metric the
problem counts — parameters as in the paper, or the chip's cycles or energy here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from imcsim.errors import ConfigError
from imcsim.nn.compress.selectors.base import (
    Progress,
    RankProblem,
    SearchConfig,
    Selection,
)
from imcsim.nn.compress.space import LayerSpace, Option

__all__ = ["Alds", "layer_errors"]


def layer_errors(problem: RankProblem, space: LayerSpace) -> dict[Option, float]:
    """ALDS error of every candidate option of one layer (0 for the dense layer)."""
    norm = problem.bank.norm(space.name)
    out = {}
    for option in space.options:
        if option.dense:
            out[option] = 0.0
            continue
        tails = [float(s[option.rank]) if option.rank < len(s) else 0.0
                 for s in problem.bank.strengths(space.name, option.groups)]
        out[option] = max(tails) / norm
    return out


@dataclass
class _Layer:
    """One layer's candidates as arrays (cost, error, group count)."""

    options: list[Option]
    cost: np.ndarray
    error: np.ndarray
    groups: np.ndarray

    def cheapest_within(self, eps: float, groups: int) -> int:
        """Index of the cheapest option with ``groups`` (or dense) and error ≤ ε."""
        ok = (self.error <= eps + 1e-15) & ((self.groups == groups) | (self.groups == 0))
        idx = np.flatnonzero(ok)
        return int(idx[np.argmin(self.cost[idx])]) if len(idx) else -1

    def best_within(self, cost: float) -> int:
        """Index of the smallest-error option costing at most ``cost`` (cheaper on ties)."""
        idx = np.flatnonzero(self.cost <= cost * (1 + 1e-12))
        order = np.lexsort((self.cost[idx], self.error[idx]))
        return int(idx[order[0]])


def _layers(problem: RankProblem) -> list[_Layer]:
    out = []
    for space in problem.spaces:
        errors = layer_errors(problem, space)
        opts = list(space.options)
        out.append(_Layer(
            opts, np.array([space.cost(o, problem.kind) for o in opts]),
            np.array([errors[o] for o in opts]),
            np.array([0 if o.dense else o.groups for o in opts]),
        ))
    return out


def _global(layers: list[_Layer], groups: list[int], problem: RankProblem) -> list[int] | None:
    """Smallest-ε allocation within budget for fixed group counts (bisection on ε)."""
    eps = np.unique(np.concatenate([
        x.error[(x.groups == g) | (x.groups == 0)] for x, g in zip(layers, groups)
    ]))
    lo, hi, best = 0, len(eps) - 1, None

    def pick(e: float) -> list[int] | None:
        idx = [x.cheapest_within(e, g) for x, g in zip(layers, groups)]
        return None if min(idx) < 0 else idx

    while lo <= hi:
        mid = (lo + hi) // 2
        idx = pick(float(eps[mid]))
        total = None if idx is None else problem.fixed + sum(
            float(x.cost[i]) for x, i in zip(layers, idx))
        if idx is not None and total is not None and total <= problem.budget * (1 + 1e-12):
            best, hi = idx, mid - 1
        else:
            lo = mid + 1
    return best


def _alternate(layers: list[_Layer], groups: list[int], problem: RankProblem,
               iterations: int) -> list[int] | None:
    idx = None
    for _ in range(iterations):
        idx = _global(layers, groups, problem)
        if idx is None:
            return None
        local = [x.best_within(float(x.cost[i])) for x, i in zip(layers, idx)]
        new = [int(x.groups[j]) or g for x, j, g in zip(layers, local, groups)]
        if new == groups:
            break
        groups = new
    return idx


@dataclass(frozen=True)
class Alds:
    """Minimise the largest layer error under the budget, choosing ranks and group counts."""

    name: str = "alds"
    needs_budget: bool = True
    needs_scorer: bool = False
    one_group: bool = False

    def select(self, problem: RankProblem, config: SearchConfig,
               progress: Progress | None = None) -> Selection:
        problem.need(self)
        layers = _layers(problem)
        rng = np.random.default_rng(config.seed)
        best: tuple[float, float, list[int]] | None = None
        for start in range(config.alds_restarts):
            choices = [sorted(s.full_ranks) for s in problem.spaces]
            groups = ([c[0] for c in choices] if start == 0
                      else [int(rng.choice(c)) for c in choices])
            idx = _alternate(layers, groups, problem, config.alds_iterations)
            if idx is not None:
                worst = max(float(x.error[i]) for x, i in zip(layers, idx))
                cost = sum(float(x.cost[i]) for x, i in zip(layers, idx))
                if best is None or (worst, cost) < best[:2]:
                    best = (worst, cost, idx)
            if progress is not None:
                progress("alds", start + 1, config.alds_restarts)
        if best is None:
            raise ConfigError(f"selector 'alds' found no allocation within {problem.budget:,.0f} "
                              f"{problem.kind}")
        return tuple(x.options[i] for x, i in zip(layers, best[2]))
