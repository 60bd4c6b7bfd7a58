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
from imcsim.mappers.geometry import argmin_cycles, candidates, window_grid
from imcsim.mappers.grid import grid_mapping
from imcsim.mappers.im2col import im2col_candidate
from imcsim.mappers.mapping import LayerMapping


@dataclass(frozen=True)
class VwSdk:
    name: str = "vw-sdk"
    reference_bounds: bool = False

    def _limits(self, layer: LayerShape) -> tuple[int, int]:
        oh, ow = layer.output_size
        if self.reference_bounds:
            return max(1, oh - 1), max(1, ow - 1)
        return oh, ow

    def map(self, layer: LayerShape, array: ArrayConfig) -> LayerMapping:
        a_h, a_w = window_grid(layer.output_size, self._limits(layer))
        c = candidates(layer, array, a_h, a_w, "channel")
        best = argmin_cycles(c)
        base = im2col_candidate(layer, array)
        if not c.valid[best] or int(base.cycles[0]) < int(c.cycles[best]):
            return grid_mapping(layer, array, self.name, "element", base, 0, scheme="im2col")
        return grid_mapping(layer, array, self.name, "channel", c, best)
