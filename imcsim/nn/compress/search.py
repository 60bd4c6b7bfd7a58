"""``search_ranks``: choose and apply a rank (and group count) for every layer of a model.

Capture the layers' input statistics on calibration images, factorise every searched
layer with the chosen factorisation (``factorizations``), price every candidate option
on the chip (``hwcost``: the mapper's computing cycles, the cost model's energy, params,
MACs), let the chosen selector (``selectors``) pick one option per layer within the
budget, and return the compressed model with per-layer records: rank, groups, cost and
the output reconstruction error on held-out activations.  Accuracy, fine-tuning and
data loading belong to ``imcsim.studies.rank_search``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import torch
from torch import nn

from imcsim.conventions import CycleCount
from imcsim.errors import ConfigError
from imcsim.hardware import ChipConfig
from imcsim.layers import LayerShape
from imcsim.mappers import Mapper
from imcsim.nn.compress.bank import FactorBank
from imcsim.nn.compress.calibration import InputStats, capture_input_stats
from imcsim.nn.compress.factorizations import get_factorization
from imcsim.nn.compress.hwcost import ZERO, Budget, CostTable, Metrics, mapped_metrics
from imcsim.nn.compress.lowrank import targets
from imcsim.nn.compress.modules import Split
from imcsim.nn.compress.scoring import Scorer
from imcsim.nn.compress.selectors import (
    Progress,
    RankProblem,
    SearchConfig,
    Selection,
    get_selector,
)
from imcsim.nn.compress.selectors.base import check_budget, check_request
from imcsim.nn.compress.space import LayerSpace, Option, build_spaces
from imcsim.nn.extract import extract_layers

__all__ = ["LayerChoice", "SearchResult", "search_ranks"]


@dataclass(frozen=True)
class LayerChoice:
    """What the search chose for one layer and what it costs."""

    name: str
    rank: int
    """Rank per group (the full rank when the layer stays dense)."""
    groups: int
    factorized: bool
    full_rank: int
    """Full rank of the layer with ``groups`` groups."""
    params: int
    macs: int
    cycles: int
    energy_pj: float | None
    output_error: float
    """Relative output error ‖(W̃ − Ŵ̃)X̃‖/‖W̃X̃‖ on held-out activations (0 when dense)."""

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class SearchResult:
    """A compressed model, its per-layer choices and whole-model costs."""

    model: nn.Module
    layers: tuple[LayerChoice, ...]
    selection: Selection
    total: Metrics
    """The compressed model as mapped on the chip (every layer, searched or not)."""
    dense: Metrics
    """The uncompressed model on the same chip."""
    budget: Budget | None
    problem: RankProblem


def _shapes(model: nn.Module, example: torch.Tensor, names: Sequence[str]
            ) -> tuple[dict[str, LayerShape], list[LayerShape]]:
    """Searched layers by name, and every other extracted layer (left dense)."""
    layers = extract_layers(model, example).layers
    searched = {x.name: x for x in layers if x.name in names}
    repeated = [x.name for x in layers if x.name.split("#", 1)[0] in names and "#" in x.name]
    if repeated:
        raise ConfigError(f"layer {repeated[0]!r}: a module called more than once per "
                          "image cannot be rank-searched (exclude it)")
    missing = [n for n in names if n not in searched]
    if missing:
        raise ConfigError(f"layer {missing[0]!r} never runs on the example input")
    return searched, [x for x in layers if x.name not in searched]


def _choice(name: str, space: LayerSpace, option: Option, bank: FactorBank,
            stats: InputStats) -> LayerChoice:
    m = space.metrics[option]
    return LayerChoice(
        name=name, rank=option.rank, groups=option.groups, factorized=not option.dense,
        full_rank=space.dense.rank if option.dense else space.full_ranks[option.groups], params=m.params,
        macs=m.macs, cycles=m.cycles, energy_pj=m.energy_pj,
        output_error=0.0 if option.dense else bank.output_error(name, option, stats),
    )


def _budget(budget: Budget | None, keep: float | None, dense: Metrics) -> Budget | None:
    if keep is None:
        return budget
    if budget is not None:
        raise ConfigError("give one budget: an absolute budget or a keep fraction, not both")
    if not 0 < keep <= 1:
        raise ConfigError(f"keep must be in (0, 1] (got {keep})")
    return Budget(kind="params", value=keep * dense.params)


def search_ranks(
    model: nn.Module, calibration: torch.Tensor, chip: ChipConfig, *,
    labels: torch.Tensor | None = None, heldout: torch.Tensor | None = None,
    mapper: str | Mapper = "sdk", factorization: str = "svd", selector: str = "uniform",
    budget: Budget | None = None, keep: float | None = None, groups: Sequence[int] = (1,),
    split: Split = "input", snap: bool = False, exclude: Sequence[str] = (),
    config: SearchConfig | None = None, progress: Progress | None = None,
    selection: Sequence[Option] | None = None,
    stats: Mapping[str, InputStats] | None = None,
    heldout_stats: Mapping[str, InputStats] | None = None,
    cycle_count: CycleCount = "activations",
) -> SearchResult:
    """Pick and apply one (groups, rank) per Conv2d/Linear of ``model`` within ``budget``.

    ``calibration`` images fit the data-aware factorisations and score networks (with
    ``labels``: cross-entropy; without: distance to the dense outputs); ``heldout``
    images measure each layer's output error (the calibration images when ``None``).
    ``keep`` is a budget of that fraction of the model's weights.  A given ``selection``
    (one option per searched layer, e.g. saved by an interrupted run) replaces the search;
    given ``stats`` / ``heldout_stats`` (from ``capture_input_stats`` on the same images)
    are used instead of capturing them again.  ``cycle_count``: what a cycle counts
    (``Conventions.cycles``).  The model is untouched.
    """
    config = config or SearchConfig()
    factorizer, chooser = get_factorization(factorization), get_selector(selector)
    if not groups or any(isinstance(g, bool) or g < 1 for g in groups):
        raise ConfigError(f"groups must be positive integers (got {tuple(groups)})")
    model = model.eval()
    names = [n for n, _ in targets(model, exclude)]
    searched, others = _shapes(model, calibration[:1], names)
    table = CostTable(mapper, chip, split, cycle_count)
    fixed = sum((table.dense(x) for x in others), ZERO)
    dense = fixed + sum((table.dense(x) for x in searched.values()), ZERO)
    budget = _budget(budget, keep, dense)
    kind = budget.kind if budget is not None else "params"
    dense.get(kind)  # an energy budget on a chip without a cost model fails here
    spaces = build_spaces([searched[n] for n in names], table, tuple(groups), kind, snap)
    check_request(chooser, None if budget is None else budget.value, groups)
    check_budget(spaces, kind, None if budget is None else budget.value, fixed.get(kind))
    stats = stats if stats is not None else capture_input_stats(model, names, calibration)
    if heldout_stats is None:
        heldout_stats = stats if heldout is None else capture_input_stats(model, names, heldout)
    bank = FactorBank(model, names, factorizer, stats, split)
    problem = RankProblem(spaces=spaces, kind=kind, budget=None if budget is None else budget.value,
                          fixed=fixed.get(kind), bank=bank, groups=tuple(groups), snap=snap,
                          scorer=Scorer(bank, names, calibration, labels))
    if selection is None:
        selection = chooser.select(problem, config, progress)
    elif len(selection) != len(spaces):
        raise ConfigError(f"selection has {len(selection)} options for {len(spaces)} layers")
    selection = tuple(selection)
    if not problem.feasible(selection):
        raise ConfigError(f"selector {selector!r} returned an allocation over the budget")
    compressed = bank.apply(dict(zip(names, selection)))
    total = mapped_metrics(extract_layers(compressed, calibration[:1]).layers, table.mapper, chip,
                           cycle_count)
    layers = tuple(_choice(n, s, o, bank, heldout_stats[n])
                   for n, s, o in zip(names, spaces, selection))
    return SearchResult(model=compressed, layers=layers, selection=selection, total=total,
                        dense=dense, budget=budget, problem=problem)
