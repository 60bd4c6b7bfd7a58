"""The search space of a rank search: per layer, the (groups, rank) options worth trying.

An ``Option`` is a group count and a rank per group, or the dense layer.  A layer's
candidates are every rank 1..full rank for every allowed group count, minus

* options that cost at least as much as the dense layer in the budget's metric (the
  dense layer is exact, so they are dominated — ALDS keeps such layers dense too), and
* with ``snap``, ranks that are not at a tile boundary of the mapping: rank k stays only
  if every higher rank costs more computing cycles.  Snapping a rank up to the top of
  its cycle step (``snap_up``) never adds a cycle and never lowers the rank.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from imcsim.layers import LayerShape
from imcsim.nn.compress.group import full_rank
from imcsim.nn.compress.hwcost import CostTable, Metrics, weight_shape
from imcsim.nn.compress.modules import Split

__all__ = ["LayerSpace", "Option", "build_spaces", "group_counts", "snap_up", "tile_tops"]


@dataclass(frozen=True, order=True)
class Option:
    """How one layer is compressed: ``groups`` × rank ``rank`` per group, or dense."""

    groups: int
    rank: int
    dense: bool = False


@dataclass(frozen=True)
class LayerSpace:
    """One layer's candidate options (cheapest first in the budget metric) and costs."""

    name: str
    layer: LayerShape
    options: tuple[Option, ...]
    metrics: dict[Option, Metrics] = field(repr=False)
    full_ranks: dict[int, int]
    """Full rank per group count."""
    curves: dict[int, np.ndarray] = field(repr=False)
    """Computing cycles at ranks 1..full (index k − 1), per group count."""
    dense: Option
    """The uncompressed layer (rank = its full rank, one group)."""

    def cost(self, option: Option, kind: str) -> float:
        return self.metrics[option].get(kind)


def group_counts(layer: LayerShape, groups: Sequence[int], split: Split) -> list[int]:
    """The allowed group counts that divide the split axis (a Linear takes 1 only)."""
    if layer.kind == "linear":
        return [1]
    channels = layer.in_channels if split == "input" else layer.out_channels
    return [g for g in dict.fromkeys(groups) if channels % g == 0] or [1]


def tile_tops(curve: np.ndarray) -> np.ndarray:
    """Ranks (1-based) at a tile boundary: every higher rank costs more cycles."""
    later_min = np.minimum.accumulate(curve[::-1])[::-1]
    higher = np.append(later_min[1:], np.inf)
    return np.flatnonzero(curve < higher) + 1


def snap_up(curve: np.ndarray, rank: int) -> int:
    """The largest rank ≥ ``rank`` whose cycles do not exceed those of ``rank``."""
    ok = np.flatnonzero(curve[rank - 1:] <= curve[rank - 1])
    return int(rank + ok[-1])


def _space(layer: LayerShape, table: CostTable, groups: list[int], kind: str, snap: bool,
           allow_dense: bool) -> LayerSpace:
    dense = Option(1, full_rank(weight_shape(layer), 1, table.split), dense=True)
    metrics = {dense: table.dense(layer)}
    options, fulls, curves = [], {}, {}
    for g in groups:
        fulls[g] = full_rank(weight_shape(layer), g, table.split)
        curves[g] = table.curve(layer, g)
        ranks = tile_tops(curves[g]) if snap else range(1, fulls[g] + 1)
        for k in ranks:
            option = Option(g, int(k))
            metrics[option] = table.factored(layer, g, int(k))
            if not allow_dense or metrics[option].get(kind) < metrics[dense].get(kind):
                options.append(option)
    if allow_dense or not options:
        options.append(dense)
    options.sort(key=lambda o: (metrics[o].get(kind), -o.rank))
    return LayerSpace(layer.name, layer, tuple(options), metrics, fulls, curves, dense)


def build_spaces(
    layers: Sequence[LayerShape], table: CostTable, groups: Sequence[int] = (1,),
    kind: str = "params", snap: bool = False, allow_dense: bool = True,
) -> tuple[LayerSpace, ...]:
    """Candidate options of every layer (see the module docstring)."""
    return tuple(
        _space(layer, table, group_counts(layer, groups, table.split), kind, snap, allow_dense)
        for layer in layers
    )
