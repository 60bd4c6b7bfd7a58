"""Rank selectors, one module each, in an explicit registry that sees the chip.

A selector gets a ``RankProblem`` — every searched layer's candidate (groups, rank)
options with their cost from the chip's mapper and cost model (params, MACs, computing
cycles, energy), the budget, the factor bank and a calibration scorer — and returns one
option per layer within the budget.

* ``uniform`` / ``energy`` (``rules.py``): the same rule for every layer (today's rules);
* ``alds`` (``alds.py``, NeurIPS 2021): min–max layer error, ranks and group counts;
* ``bsr`` (``bsr.py``): joint beam search scored on truncated networks;
* ``bo`` (``bo.py``, Bolaco EMNLP 2024): seeded Bayesian optimisation of per-stage ratios;
* ``haloc`` (``haloc.py``, AAAI 2023): differentiable selection with the cost table.

Add one: a class with ``name`` and ``select(problem, config, progress) -> Selection``,
then ``register_selector``.
"""

from __future__ import annotations

from imcsim.errors import ConfigError
from imcsim.nn.compress.selectors.alds import Alds
from imcsim.nn.compress.selectors.base import (
    Progress,
    RankProblem,
    SearchConfig,
    Selection,
    Selector,
)
from imcsim.nn.compress.selectors.bo import BayesOpt
from imcsim.nn.compress.selectors.bsr import BeamSearch
from imcsim.nn.compress.selectors.haloc import Haloc
from imcsim.nn.compress.selectors.rules import EnergyRule, Uniform

__all__ = [
    "SELECTORS", "Alds", "BayesOpt", "BeamSearch", "EnergyRule", "Haloc", "Progress",
    "RankProblem", "SearchConfig", "Selection", "Selector", "Uniform", "get_selector",
    "register_selector", "selector_names",
]

SELECTORS: dict[str, Selector] = {}


def register_selector(name: str, selector: Selector) -> None:
    """Add ``selector`` under ``name``; a name already taken is refused."""
    if name in SELECTORS:
        raise ConfigError(f"selector {name!r} is already registered")
    SELECTORS[name] = selector


def get_selector(name: str) -> Selector:
    if name not in SELECTORS:
        raise ConfigError(f"unknown selector {name!r} (known: {', '.join(selector_names())})")
    return SELECTORS[name]


def selector_names() -> list[str]:
    return list(SELECTORS)


for _selector in (Uniform(), EnergyRule(), Alds(), BeamSearch(), BayesOpt(), Haloc()):
    register_selector(_selector.name, _selector)
