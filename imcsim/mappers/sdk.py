"""SDK: shift and duplicate kernel (Zhang, He, Wang, Li, IEEE TCAD 2020).

A square parallel window of n×n outputs reads a P×P patch (P = K + (n − 1)s); the
filter bank is duplicated n² times across the columns, each copy shifted to its
window's offset.  Rows P²·C_in and columns n²·C_out are cut element-wise.

* ``sdk`` — the baseline as the VW-SDK paper re-implements it (Rhe et al., DATE
  2022): keep im2col's tile budget A_r × A_c, n feasible while the window fits it,
  CC(n) = ⌈O_h/n⌉·⌈O_w/n⌉·A_r·A_c; n = 1 is im2col.  (A window never needs fewer
  row or column tiles than im2col, so a feasible window uses exactly the budget.)
* ``sdk-unconstrained`` — the tile count grows with the window:
  CC(n) = ⌈O_h/n⌉·⌈O_w/n⌉·⌈P²C_in/R⌉·⌈n²C_out/C_eff⌉.

* ``sdk-rect`` — imcsim's extension (not from a paper): every rectangular window
  a_h × a_w of VW-SDK, tiled element-wise as SDK does.  Cutting a patch at element
  rather than channel granularity wastes no rows, so it can beat VW-SDK (VGG-13
  conv1_2 on 512×512: 18,648 vs 24,642 cycles) and it never loses to ``sdk``.

Square windows are clipped to the output (a non-square output gets min(n, O) per axis).
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

__all__ = ["SdkRectangular", "SdkReference", "SdkUnconstrained", "square_windows"]


def square_windows(layer: LayerShape, array: ArrayConfig) -> Candidates:
    """Element-tiled square windows n = 1..max(O_h, O_w), clipped per axis (vectorised)."""
    oh, ow = layer.output_size
    n = np.arange(1, max(oh, ow) + 1)
    return candidates(layer, array, np.minimum(n, oh), np.minimum(n, ow), "element")


@dataclass(frozen=True)
class _Searched:
    """A dense mapper whose window search is compiled (``mappers.search``)."""

    name: str
    kind: str

    def map(self, layer: LayerShape, array: ArrayConfig) -> LayerMapping:
        c, tiling, _ = search(self.kind, layer, array)
        return grid_mapping(layer, array, self.name, tiling, c)


@dataclass(frozen=True)
class SdkReference(_Searched):
    name: str = "sdk"
    kind: str = "sdk"


@dataclass(frozen=True)
class SdkUnconstrained(_Searched):
    name: str = "sdk-unconstrained"
    kind: str = "sdk-unconstrained"


@dataclass(frozen=True)
class SdkRectangular(_Searched):
    name: str = "sdk-rect"
    kind: str = "sdk-rect"
