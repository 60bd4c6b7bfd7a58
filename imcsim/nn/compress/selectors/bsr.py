"""Beam-search rank selection, BSR-style (Eo, Kang, Rhee, "A Highly Effective Low-Rank
Compression of Deep Neural Networks with Modified Beam-Search and Modified Stable Rank",
2021; Neural Networks 2023).

BSR searches the ranks of all layers jointly and scores *truncated networks* (no
fine-tuning) on held-out data.  Here the search runs over the layers in order, like a
decoder over tokens: a partial assignment fixes the first t layers, and is scored as a
whole network whose remaining layers take the uniform allocation that the remaining
budget allows (so spending budget early visibly costs the later layers).  Every partial
assignment is extended by ``beam_levels`` options of the next layer, spread over its
cost range; the ``beam_width`` lowest-loss ones survive.  The paper's exact step rule
was not available to us; this is the same idea — joint beam search, truncated-network
scores, one budget knob — in a form that always returns an allocation within budget.
The result is never worse, on the calibration loss, than the uniform allocation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from imcsim.errors import ConfigError
from imcsim.nn.compress.rankrules import ratio_rank
from imcsim.nn.compress.selectors.base import (
    Progress,
    RankProblem,
    SearchConfig,
    Selection,
    option_at,
)
from imcsim.nn.compress.space import LayerSpace, Option

__all__ = ["BeamSearch", "levels"]

_GRID = 64


def levels(space: LayerSpace, count: int) -> list[Option]:
    """``count`` options spread evenly over the layer's candidates (cheapest to dearest)."""
    opts = space.options
    picks = np.unique(np.round(np.linspace(0, len(opts) - 1, min(count, len(opts)))).astype(int))
    return [opts[i] for i in picks]


class _Fill:
    """Uniform allocation of the remaining layers within the remaining budget."""

    def __init__(self, problem: RankProblem) -> None:
        self.problem = problem
        ratios = np.linspace(1 / _GRID, 1, _GRID)
        self.options = [[option_at(problem, s, problem.group_of(s),
                                   ratio_rank(s.full_ranks[problem.group_of(s)], r))
                         for r in ratios] for s in problem.spaces]
        self.cost = np.array([[s.cost(o, problem.kind) for o in row]
                              for s, row in zip(problem.spaces, self.options)])

    def complete(self, head: tuple[Option, ...]) -> Selection | None:
        """``head`` plus the largest uniform fill that fits, or ``None``."""
        t = len(head)
        if t == len(self.options):
            return head if self.problem.feasible(head) else None
        spent = self.problem.fixed + sum(s.cost(o, self.problem.kind)
                                         for s, o in zip(self.problem.spaces, head))
        totals = spent + self.cost[t:].sum(axis=0)
        ok = np.flatnonzero(totals <= self.problem.budget * (1 + 1e-12))
        if not len(ok):
            return None
        return head + tuple(row[int(ok[-1])] for row in self.options[t:])


@dataclass(frozen=True)
class BeamSearch:
    """Joint beam search over the layers' ranks, scored on the calibration batch."""

    name: str = "bsr"
    needs_budget: bool = True
    needs_scorer: bool = True
    one_group: bool = True

    def select(self, problem: RankProblem, config: SearchConfig,
               progress: Progress | None = None) -> Selection:
        problem.need(self)
        scorer, fill = problem.scorer, _Fill(problem)
        assert scorer is not None
        start = fill.complete(())
        if start is None:
            raise ConfigError(f"selector 'bsr': the uniform allocation cannot meet "
                              f"{problem.budget:,.0f} {problem.kind}")
        beam: list[tuple[float, tuple[Option, ...]]] = [(scorer.loss(start), ())]
        total = len(problem.spaces)
        for t, space in enumerate(problem.spaces):
            children: dict[tuple[Option, ...], float] = {}
            for _, head in beam:
                for option in levels(space, config.beam_levels):
                    full = fill.complete(head + (option,))
                    if full is not None and head + (option,) not in children:
                        children[head + (option,)] = scorer.loss(full)
            if not children:
                break
            ranked = sorted(children.items(), key=lambda kv: kv[1])[: config.beam_width]
            beam = [(loss, head) for head, loss in ranked]
            if progress is not None:
                progress("bsr", t + 1, total)
        best_loss, best = min((loss, fill.complete(head)) for loss, head in beam)
        assert best is not None
        return best if best_loss <= scorer.loss(start) else start
