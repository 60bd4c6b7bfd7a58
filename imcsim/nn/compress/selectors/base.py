"""The rank-selection problem every selector solves, and the selector contract.

A ``RankProblem`` is the searched layers' candidate options (``LayerSpace``: costs from
the chip's mapper and cost model, snapped to tile boundaries or not), the budget in one
metric, the cost of the layers left out of the search, the factor bank (spectra, modules)
and, for selectors that score networks, a ``Scorer``.  A selector returns one ``Option``
per searched layer, within the budget.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from pydantic import Field

from imcsim._config import StrictModel
from imcsim.errors import ConfigError
from imcsim.nn.compress.bank import FactorBank
from imcsim.nn.compress.scoring import Scorer
from imcsim.nn.compress.space import LayerSpace, Option, snap_up

__all__ = [
    "Progress", "RankProblem", "SearchConfig", "Selection", "Selector", "best_feasible",
    "check_budget", "check_request", "option_at",
]

Selection = tuple[Option, ...]
Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``, called as a search advances."""


class SearchConfig(StrictModel):
    """Knobs of the selectors (each reads the ones it needs)."""

    seed: int = 0
    """Seed of every random choice (ALDS restarts, BO sampler, HALOC batches)."""
    rank: int | None = Field(default=None, ge=1)
    """``uniform`` without a budget: this rank per group in every layer."""
    ratio: float | None = Field(default=None, gt=0, le=1)
    """``uniform`` without a budget: this fraction of every layer's full rank."""
    energy: float | None = Field(default=None, gt=0, le=1)
    """``energy`` without a budget: keep this fraction of Σσ² in every block."""
    alds_restarts: int = Field(default=5, ge=1)
    """ALDS: random starts of the group counts (the first start is all-plain)."""
    alds_iterations: int = Field(default=10, ge=1)
    """ALDS: at most this many global/local alternations per start."""
    beam_width: int = Field(default=3, ge=1)
    """BSR: partial assignments kept after every layer."""
    beam_levels: int = Field(default=6, ge=2)
    """BSR: candidate options tried per layer (spread over its cost range)."""
    trials: int = Field(default=50, ge=1)
    """BO: trials of the sampler (the first is the uniform allocation)."""
    haloc_steps: int = Field(default=150, ge=1)
    """HALOC: optimisation steps of the selection logits."""
    haloc_lr: float = Field(default=0.1, gt=0)
    """HALOC: Adam learning rate of the selection logits."""
    haloc_candidates: int = Field(default=8, ge=2)
    """HALOC: candidate options per layer (tile boundaries first when snapping)."""
    state_dir: Path | None = None
    """Where long searches keep resumable state (BO's trial journal); ``None``: memory."""


@dataclass
class RankProblem:
    """Everything a selector may look at (see the module docstring)."""

    spaces: tuple[LayerSpace, ...]
    kind: str
    """Metric of the budget (params, macs, cycles, energy)."""
    budget: float | None
    fixed: float
    """The metric of the layers outside the search (left dense)."""
    bank: FactorBank
    groups: tuple[int, ...] = (1,)
    """Group counts the user allowed."""
    snap: bool = False
    scorer: Scorer | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.spaces)

    def cost(self, selection: Sequence[Option]) -> float:
        return self.fixed + sum(s.cost(o, self.kind) for s, o in zip(self.spaces, selection))

    def feasible(self, selection: Sequence[Option]) -> bool:
        return self.budget is None or self.cost(selection) <= self.budget * (1 + 1e-12)

    def check_budget(self) -> None:
        """``ConfigError`` when even the cheapest options miss the budget."""
        check_budget(self.spaces, self.kind, self.budget, self.fixed)

    def need(self, selector: Selector) -> None:
        """One-line errors for what ``selector`` cannot work without."""
        check_request(selector, self.budget, self.groups, self.scorer is not None)

    def group_of(self, space: LayerSpace) -> int:
        """The single allowed group count where it divides this layer, else 1."""
        return self.groups[0] if self.groups[0] in space.full_ranks else 1


def check_budget(spaces: Sequence[LayerSpace], kind: str, budget: float | None,
                 fixed: float) -> None:
    """``ConfigError`` when even the cheapest options of ``spaces`` miss ``budget``."""
    if budget is None:
        return
    least = fixed + sum(s.cost(s.options[0], kind) for s in spaces)
    if least > budget * (1 + 1e-12):
        raise ConfigError(
            f"budget of {budget:,.0f} {kind} cannot be met: the cheapest ranks need "
            f"{least:,.0f} (layers outside the search: {fixed:,.0f})"
        )


def check_request(selector: Selector, budget: float | None, groups: Sequence[int],
                  scorer: bool = True) -> None:
    """One-line errors for a budget, scorer or group count ``selector`` cannot do without."""
    name = selector.name
    if selector.needs_budget and budget is None:
        raise ConfigError(f"selector {name!r} needs a budget (--budget-cycles, --budget-params, "
                          "--budget-macs, --budget-energy or --budget-keep)")
    if selector.needs_scorer and not scorer:
        raise ConfigError(f"selector {name!r} needs calibration images to score networks")
    if selector.one_group and len(groups) != 1:
        raise ConfigError(f"selector {name!r} takes one group count (got {tuple(groups)})")


def option_at(problem: RankProblem, space: LayerSpace, groups: int, rank: int) -> Option:
    """Rank ``rank`` with ``groups`` as a candidate: snapped up to its tile boundary when
    the problem snaps, the dense layer when that rank is dominated by it."""
    if problem.snap:
        rank = snap_up(space.curves[groups], rank)
    option = Option(groups, rank)
    return option if option in space.metrics and option in space.options else space.dense


def best_feasible(problem: RankProblem, candidates: Sequence[Selection]) -> int | None:
    """Index of the last candidate within the budget (candidates ordered worst → best)."""
    costs = np.array([problem.cost(c) for c in candidates])
    ok = np.flatnonzero(costs <= (problem.budget or np.inf) * (1 + 1e-12))
    return int(ok[-1]) if len(ok) else None


class Selector(Protocol):
    """One rank-selection method (see ``imcsim.nn.compress.selectors``)."""

    name: str
    needs_budget: bool
    """Refuses to run without a budget."""
    needs_scorer: bool
    """Scores networks on calibration images."""
    one_group: bool
    """Takes a single group count (only ALDS chooses among several)."""

    def select(self, problem: RankProblem, config: SearchConfig,
               progress: Progress | None = None) -> Selection:
        """One option per layer of ``problem``, within its budget."""
        ...
