"""Rule selectors: the same rule for every layer (``uniform``, ``energy``).

* ``uniform``: every layer keeps the same fraction ρ of its full rank (or the same rank).
  With a budget, ρ is the largest fraction whose allocation fits.
* ``energy``: every layer keeps the smallest rank that holds a fraction E of the squared
  strengths Σσ² of each of its blocks (the singular values of W for SVD, of W·X for
  DRONE, the output variances for feature-based).  With a budget, E is the largest
  threshold whose allocation fits.

These are also the rules of ``RankRule`` (``ratio``, ``energy``, ``rank``); the per-layer
functions both use live in ``imcsim.nn.compress.rankrules``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from imcsim.errors import ConfigError
from imcsim.nn.compress.rankrules import energy_fractions, rank_for_energy, ratio_rank
from imcsim.nn.compress.selectors.base import (
    Progress,
    RankProblem,
    SearchConfig,
    Selection,
    best_feasible,
    option_at,
)

__all__ = ["EnergyRule", "Uniform"]


def _scan(problem: RankProblem, allocations: list[Selection], selector: str) -> int:
    """Index of the best (last) allocation within budget, or a one-line error."""
    best = best_feasible(problem, allocations)
    if best is None:
        least = min(problem.cost(a) for a in allocations)
        raise ConfigError(
            f"selector {selector!r} cannot meet the budget of {problem.budget:,.0f} "
            f"{problem.kind}: its smallest allocation needs {least:,.0f}"
        )
    return best


@dataclass(frozen=True)
class Uniform:
    """The same fraction of the full rank in every layer (or the same rank)."""

    name: str = "uniform"
    needs_budget: bool = False
    needs_scorer: bool = False
    one_group: bool = True

    def allocation(self, problem: RankProblem, ratio: float) -> Selection:
        out = []
        for space in problem.spaces:
            g = problem.group_of(space)
            out.append(option_at(problem, space, g, ratio_rank(space.full_ranks[g], ratio)))
        return tuple(out)

    def _fixed_rank(self, problem: RankProblem, rank: int) -> Selection:
        out = []
        for space in problem.spaces:
            g = problem.group_of(space)
            if rank > space.full_ranks[g]:
                raise ConfigError(f"layer {space.name!r}: rank {rank} exceeds the full rank "
                                  f"{space.full_ranks[g]} ({g} group(s))")
            out.append(option_at(problem, space, g, rank))
        return tuple(out)

    def ratios(self, problem: RankProblem) -> list[float]:
        """Every fraction at which some layer's rank changes, ascending."""
        values = {k / s.full_ranks[problem.group_of(s)] for s in problem.spaces
                  for k in range(1, s.full_ranks[problem.group_of(s)] + 1)}
        return sorted(values)

    def select(self, problem: RankProblem, config: SearchConfig,
               progress: Progress | None = None) -> Selection:
        problem.need(self)
        given = [k for k in ("rank", "ratio") if getattr(config, k) is not None]
        if len(given) + (problem.budget is not None) != 1:
            raise ConfigError("selector 'uniform' takes exactly one of a budget, --rank, --ratio")
        if config.rank is not None:
            return self._fixed_rank(problem, config.rank)
        if config.ratio is not None:
            return self.allocation(problem, config.ratio)
        return self.allocation(problem, self.best_ratio(problem))

    def best_ratio(self, problem: RankProblem) -> float:
        """The largest ratio whose allocation meets the budget."""
        grid = self.ratios(problem)
        return grid[_scan(problem, [self.allocation(problem, r) for r in grid], self.name)]


@dataclass(frozen=True)
class EnergyRule:
    """The smallest rank keeping a fraction E of Σσ² in every block of every layer."""

    name: str = "energy"
    needs_budget: bool = False
    needs_scorer: bool = False
    one_group: bool = True

    def allocation(self, problem: RankProblem, energy: float) -> Selection:
        out = []
        for space in problem.spaces:
            g = problem.group_of(space)
            rank = rank_for_energy(problem.bank.strengths(space.name, g), energy)
            out.append(option_at(problem, space, g, min(rank, space.full_ranks[g])))
        return tuple(out)

    def thresholds(self, problem: RankProblem) -> list[float]:
        """Every threshold at which some layer's rank changes, ascending."""
        values: set[float] = set()
        for space in problem.spaces:
            for s in problem.bank.strengths(space.name, problem.group_of(space)):
                values.update(np.round(energy_fractions(s), 12).tolist())
        return sorted(v for v in values if 0 < v <= 1)

    def select(self, problem: RankProblem, config: SearchConfig,
               progress: Progress | None = None) -> Selection:
        problem.need(self)
        if (config.energy is not None) == (problem.budget is not None):
            raise ConfigError("selector 'energy' takes exactly one of a budget, --energy")
        if config.energy is not None:
            return self.allocation(problem, config.energy)
        allocations = [self.allocation(problem, e) for e in self.thresholds(problem)]
        return allocations[_scan(problem, allocations, self.name)]
