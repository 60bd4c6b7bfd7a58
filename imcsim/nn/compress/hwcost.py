"""What a factorised layer costs on the chip, and the budgets a rank search meets.

A layer L factorised at rank k per group with g groups becomes two layers (Jeon, Rhe,
Ko, DATE 2025): R, a K×K conv C_in → g·k (groups g under the input split) with L's
stride and padding, and L, a 1×1 conv g·k → C_out on R's output (grouped under the
output split).  Its cost is whatever the chip's mapper and cost model say about that
pair: ``mapped_metrics`` is the one function that asks them (``map_network`` and, on a
costed chip, ``estimate_network``); ``CostTable`` caches its answers per layer geometry,
group count and rank.  Computing cycles are a step function of the rank — one column
too many adds a whole column tile — which is what ``CostTable.curve`` exposes and
``imcsim.nn.compress.space`` snaps to.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import Field

from imcsim._config import StrictModel
from imcsim.conventions import CycleCount
from imcsim.cost import estimate_network
from imcsim.errors import ConfigError
from imcsim.hardware import ChipConfig
from imcsim.layers import LayerShape
from imcsim.mappers import LowRank, Mapper, PairMapper, get_mapper
from imcsim.network import map_network
from imcsim.nn.compress.group import full_rank
from imcsim.nn.compress.modules import Split

__all__ = [
    "BUDGET_KINDS", "ZERO", "Budget", "BudgetKind", "CostTable", "Metrics", "factor_shapes",
    "mapped_metrics", "pair_mapper", "weight_shape",
]

BudgetKind = Literal["params", "macs", "cycles", "energy"]
BUDGET_KINDS: tuple[str, ...] = ("params", "macs", "cycles", "energy")


class Budget(StrictModel):
    """The most a compressed model may cost, in one metric (the whole model)."""

    kind: BudgetKind
    """params (weights), macs (per image), cycles (computing cycles per image on the
    chip) or energy (pJ per image on a costed chip)."""
    value: float = Field(gt=0)


@dataclass(frozen=True)
class Metrics:
    """Cost of one layer (or of several, summed) for one image."""

    params: int
    macs: int
    cycles: int
    energy_pj: float | None = None
    """``None`` on a chip without a cost model."""

    def get(self, kind: str) -> float:
        """The metric a budget of ``kind`` counts."""
        value = getattr(self, "energy_pj" if kind == "energy" else kind)
        if value is None:
            raise ConfigError("an energy budget needs a costed chip (e.g. --chip isaac)")
        return float(value)

    def __add__(self, other: Metrics) -> Metrics:
        energy = (None if self.energy_pj is None or other.energy_pj is None
                  else self.energy_pj + other.energy_pj)
        return Metrics(self.params + other.params, self.macs + other.macs,
                       self.cycles + other.cycles, energy)


ZERO = Metrics(0, 0, 0, 0.0)
"""The cost of nothing (the start of a sum)."""


def factor_shapes(
    layer: LayerShape, rank: int, groups: int = 1, split: Split = "input"
) -> tuple[LayerShape, LayerShape]:
    """(R, L) of ``layer`` factorised at ``rank`` per group, tagged as the extractor tags a
    ``LowRankConv2d`` (``factor_of`` the layer, ``factor_role`` R / L)."""
    name, width = layer.name, groups * rank
    r_tag, l_tag = ({"factor_of": name, "factor_role": role} for role in ("R", "L"))
    if layer.kind == "linear":
        positions = layer.input_size[1]
        r = LayerShape.linear(layer.in_channels, width, positions, name=f"{name}.r")
        l_layer = LayerShape.linear(width, layer.out_channels, positions, name=f"{name}.l")
        return r.model_copy(update=r_tag), l_layer.model_copy(update=l_tag)
    r_groups, l_groups = (groups, 1) if split == "input" else (1, groups)
    r = LayerShape.conv2d(
        layer.in_channels, width, layer.kernel_size, layer.input_size, stride=layer.stride,
        padding=layer.padding, dilation=layer.dilation, groups=r_groups, name=f"{name}.r",
    )
    l_layer = LayerShape.conv2d(width, layer.out_channels, 1, r.output_size, groups=l_groups,
                                name=f"{name}.l")
    return r.model_copy(update=r_tag), l_layer.model_copy(update=l_tag)


def pair_mapper(mapper: str | Mapper) -> Mapper:
    """The mapper that places factor pairs: a low-rank mapper as is, any other registered
    mapper as the base of ``LowRank`` (R with it, L block-diagonal on R's window)."""
    chosen = get_mapper(mapper) if isinstance(mapper, str) else mapper
    if isinstance(chosen, PairMapper):
        return chosen
    return LowRank(base=chosen.name, name=f"low-rank-{chosen.name}")


def mapped_metrics(layers: Sequence[LayerShape], mapper: Mapper, chip: ChipConfig,
                   count: CycleCount = "activations") -> Metrics:
    """Params, MACs, computing cycles and (costed chip) energy of ``layers`` as mapped.

    The only place that asks the mappers and the cost model about a candidate layer.
    ``count``: cycles are every tile activation, or the critical path (pipelined low-rank
    factors overlap; ``imcsim.conventions.Conventions.cycles``).
    """
    report = map_network(layers, mapper, chip)
    energy = None
    if chip.cost is not None:
        energy = float(estimate_network(report, chip).total()["energy_pj"])
    return Metrics(params=sum(x.params for x in layers), macs=sum(x.macs for x in layers),
                   cycles=report.latency_cycles if count == "critical-path" else report.cycles,
                   energy_pj=energy)


def _key(layer: LayerShape) -> tuple:
    return (layer.kind, layer.in_channels, layer.out_channels, layer.kernel_size,
            layer.input_size, layer.stride, layer.padding, layer.dilation, layer.groups)


class CostTable:
    """Cached per-layer cost of every (groups, rank), and of the dense layer."""

    def __init__(self, mapper: str | Mapper, chip: ChipConfig, split: Split = "input",
                 count: CycleCount = "activations") -> None:
        self.mapper, self.chip, self.split, self.count = pair_mapper(mapper), chip, split, count
        self._cache: dict[tuple, Metrics] = {}

    def dense(self, layer: LayerShape) -> Metrics:
        key = (_key(layer), 0, 0)
        if key not in self._cache:
            self._cache[key] = mapped_metrics([layer], self.mapper, self.chip, self.count)
        return self._cache[key]

    def factored(self, layer: LayerShape, groups: int, rank: int) -> Metrics:
        top = full_rank(weight_shape(layer), groups, self.split)
        if not 1 <= rank <= top:
            raise ConfigError(
                f"layer {layer.name!r}: rank {rank} outside 1..{top} (full rank with "
                f"{groups} group(s), {self.split} split)"
            )
        key = (_key(layer), groups, rank)
        if key not in self._cache:
            pair = factor_shapes(layer, rank, groups, self.split)
            self._cache[key] = mapped_metrics(pair, self.mapper, self.chip, self.count)
        return self._cache[key]

    def curve(self, layer: LayerShape, groups: int, kind: str = "cycles") -> np.ndarray:
        """``kind`` at ranks 1..full rank (index k − 1)."""
        top = full_rank(weight_shape(layer), groups, self.split)
        return np.array([self.factored(layer, groups, k).get(kind) for k in range(1, top + 1)])


def weight_shape(layer: LayerShape) -> tuple[int, int, int, int]:
    """(C_out, C_in, K_h, K_w) of an ungrouped layer (a Linear is 1×1)."""
    return (layer.out_channels, layer.in_channels, *layer.kernel_size)
