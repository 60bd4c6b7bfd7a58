"""im2col: one output position per cycle (Yanai et al., ACM MM 2016).

Each filter's C_in/g·K_h·K_w weights are unrolled down the rows and cut every R rows;
the filters spread over columns cut every C_eff columns:
CC = O_h·O_w · ⌈K_h·K_w·C_in/R⌉ · ⌈C_out/C_eff⌉ for a dense layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from imcsim.hardware import ArrayConfig
from imcsim.layers import LayerShape
from imcsim.mappers.geometry import Candidates, candidates
from imcsim.mappers.grid import grid_mapping
from imcsim.mappers.mapping import LayerMapping
from imcsim.mappers.search import search

__all__ = ["Im2col", "im2col_candidate"]

ONE = np.array([1])


def im2col_candidate(layer: LayerShape, array: ArrayConfig) -> Candidates:
    """The single 1×1-window, element-tiled candidate (vectorised form)."""
    return candidates(layer, array, ONE, ONE, "element")


@dataclass(frozen=True)
class Im2col:
    name: str = "im2col"

    def map(self, layer: LayerShape, array: ArrayConfig) -> LayerMapping:
        c, tiling, _ = search("im2col", layer, array)
        return grid_mapping(layer, array, self.name, tiling, c)
