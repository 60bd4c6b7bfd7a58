"""``best``: the cheapest of several mappers, layer by layer."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from imcsim.hardware import ArrayConfig
from imcsim.layers import LayerShape
from imcsim.mappers.base import DENSE_MAPPERS, Mapper
from imcsim.mappers.grid import grid_mapping
from imcsim.mappers.mapping import LayerMapping
from imcsim.mappers.search import search

__all__ = ["Best"]


@dataclass(frozen=True)
class Best:
    """Keeps the candidate with the fewest cycles (ties: the earlier candidate); the
    result's ``scheme`` names the winning mapper."""

    candidates: tuple[Mapper, ...] = field(default_factory=tuple)
    name: str = "best"

    def map(self, layer: LayerShape, array: ArrayConfig) -> LayerMapping:
        if tuple(m.name for m in self.candidates) == DENSE_MAPPERS:  # one compiled search
            c, tiling, winner = search("best", layer, array)
            return grid_mapping(layer, array, self.name, tiling, c, scheme=winner)
        results = [m.map(layer, array) for m in self.candidates]
        chosen = min(results, key=lambda r: r.cycles)
        return replace(chosen, mapper=self.name, scheme=chosen.mapper)
