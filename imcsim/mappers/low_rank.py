"""Low-rank and group low-rank mapping: R with a dense windowed mapper, L per window.

Jeon, Rhe, Ko, "Low-Rank Compression for IMC Arrays" (DATE 2025), Theorem 2:
𝒟(SDK(W)) = (I_N ⊗ L)·SDK(R).  A factorised conv is a K×K conv R (C_in → k, or a
grouped conv g groups → g·k) followed by a 1×1 conv L (k → C_out).  R maps with a
dense mapper (``base``, the ``r_mapper`` option: ``sdk`` by default, or ``vw-sdk``,
``sdk-unconstrained``, any registered mapper that is not itself a pair mapper) and its window computes N = a_h·a_w outputs per cycle; L then acts on each
of the N window outputs (``l_mode``):

* ``block-diagonal`` (default, the paper's layout): one array block I_N ⊗ L, N·k
  rows × N·C_out columns, i.e. L mapped with R's window a_h×a_w under element
  tiling (``geometry.candidates(l, array, a_h, a_w, "element")``);
* ``im2col``: N separate MVMs per window, i.e. L mapped by im2col;
* ``independent``: L mapped by ``base`` with its own window (SDK of a 1×1 conv is a
  block-diagonal I_N' ⊗ L with its own N').

No count is computed twice: every factor's cycles are those of an existing dense
mapper on the factor's shape.  ``schedule``: ``sequential`` (R then L on the same
arrays, cycles add) or ``pipelined`` (R and L on separate arrays, the slower one
sets the pace: L gets ``overlap_cycles = min(R, L)`` so the pair's
``latency_cycles`` is max(R, L) while ``cycles`` stays the physical activations).
Layers that are not factor pairs map with ``base``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from imcsim.errors import ConfigError, MappingError
from imcsim.hardware import ArrayConfig
from imcsim.layers import LayerShape, Pair
from imcsim.mappers.base import LMode, Mapper, MapperOptions, PairMapper, Schedule, get_mapper
from imcsim.mappers.geometry import candidates
from imcsim.mappers.grid import grid_mapping
from imcsim.mappers.mapping import LayerMapping

__all__ = ["L_MODES", "LowRank", "block_diagonal", "check_pair"]

L_MODES: tuple[LMode, ...] = ("block-diagonal", "im2col", "independent")


def block_diagonal(l_layer: LayerShape, array: ArrayConfig, window: Pair, mapper: str) -> LayerMapping:
    """I_N ⊗ L: the 1×1 conv L with window a_h×a_w, element-tiled (N·k × N·C_out)."""
    c = candidates(l_layer, array, np.array([window[0]]), np.array([window[1]]), "element")
    return grid_mapping(l_layer, array, mapper, "element", c.pick(0), scheme="block-diagonal",
                        role="L")


def check_pair(r: LayerShape, l_layer: LayerShape) -> None:
    """``MappingError`` unless L is a 1×1, stride-1 layer reading exactly R's output."""
    ok = (
        l_layer.kernel_size == (1, 1) and l_layer.stride == (1, 1) and l_layer.padding == (0, 0)
        and l_layer.in_channels == r.out_channels and l_layer.input_size == r.output_size
    )
    if not ok:
        raise MappingError(
            f"factor pair {r.name!r} ({r.describe()}) -> {l_layer.name!r} ({l_layer.describe()}): "
            "L must be a 1x1 stride-1 layer on R's output"
        )


@dataclass(frozen=True)
class LowRank:
    """Maps factor pairs (R, L) together (``PairMapper``); every other layer with ``base``."""

    base: str = "sdk"
    l_mode: LMode = "block-diagonal"
    schedule: Schedule = "sequential"
    name: str = "low-rank-sdk"

    def __post_init__(self) -> None:
        if isinstance(get_mapper(self.base), PairMapper):  # unknown names fail here too
            raise ConfigError(f"low-rank mapper {self.name!r}: r_mapper={self.base!r} maps "
                              "factor pairs itself; give a dense mapper (sdk, vw-sdk, ...)")
        if self.l_mode not in L_MODES:
            raise ConfigError(f"l_mode={self.l_mode!r}; expected one of {', '.join(L_MODES)}")
        if self.schedule not in ("sequential", "pipelined"):
            raise ConfigError(f"schedule={self.schedule!r}; expected sequential or pipelined")

    def with_options(self, options: MapperOptions) -> LowRank:
        return replace(self, base=options.r_mapper or self.base, l_mode=options.l_mode,
                       schedule=options.schedule)

    def _dense(self, name: str | None = None) -> Mapper:
        return get_mapper(name or self.base)

    def map(self, layer: LayerShape, array: ArrayConfig) -> LayerMapping:
        return replace(self._dense().map(layer, array), mapper=self.name)

    def _map_l(self, l_layer: LayerShape, array: ArrayConfig, window: Pair) -> LayerMapping:
        if self.l_mode == "block-diagonal":
            return block_diagonal(l_layer, array, window, self.name)
        dense = self._dense("im2col" if self.l_mode == "im2col" else None).map(l_layer, array)
        return replace(dense, mapper=self.name, role="L")

    def map_pair(
        self, r: LayerShape, l_layer: LayerShape, array: ArrayConfig
    ) -> tuple[LayerMapping, LayerMapping]:
        """(R's mapping, L's mapping); L's ``overlap_cycles`` encodes the schedule."""
        check_pair(r, l_layer)
        r_map = replace(self._dense().map(r, array), mapper=self.name, role="R")
        l_map = self._map_l(l_layer, array, r_map.window)
        if self.schedule == "pipelined":
            l_map = replace(l_map, overlap_cycles=min(r_map.cycles, l_map.cycles))
        return r_map, l_map
