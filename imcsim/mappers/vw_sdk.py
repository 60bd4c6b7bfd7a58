"""VW-SDK: variable-window SDK with channel tiling (Rhe, Moon, Ko, DATE 2022).

Every rectangular window a_h × a_w (1 ≤ a ≤ O per axis, full width included) is
tried with IC_t = ⌊R/(P_h·P_w)⌋ input channels per row tile and
OC_t = ⌊C_eff/(a_h·a_w)⌋ filters per column tile:
CC = ⌈O_h/a_h⌉·⌈O_w/a_w⌉·⌈C_in/IC_t⌉·⌈C_out/OC_t⌉.  Because im2col tiles single
elements, it can beat every channel-tiled window; the result is the true minimum of
both, as the paper reports.  ``reference_bounds=True`` reproduces the reference
code's search range a ≤ I − K (no full-width window).
"""

from __future__ import annotations

from dataclasses import dataclass

from imcsim.hardware import ArrayConfig
from imcsim.layers import LayerShape
from imcsim.mappers.grid import grid_mapping
from imcsim.mappers.mapping import LayerMapping
from imcsim.mappers.search import search

__all__ = ["VwSdk"]


@dataclass(frozen=True)
class VwSdk:
    name: str = "vw-sdk"
    reference_bounds: bool = False

    def map(self, layer: LayerShape, array: ArrayConfig) -> LayerMapping:
        c, tiling, _ = search("vw-sdk-ref" if self.reference_bounds else "vw-sdk", layer, array)
        scheme = "im2col" if tiling == "element" else self.name
        return grid_mapping(layer, array, self.name, tiling, c, scheme=scheme)
