"""The mapping contract: ``Mapper.map(layer, array) -> LayerMapping`` and the registry."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from pydantic import Field

from imcsim._config import StrictModel
from imcsim.errors import ConfigError
from imcsim.hardware import ArrayConfig
from imcsim.layers import LayerShape, Pair
from imcsim.mappers.geometry import Candidates, Tiling, patch_extent


class LayerMapping(StrictModel):
    """Where one layer's weights sit and what it costs in computing cycles.

    The single source of truth read by the cost model, the cycle simulator and the
    functional (accuracy) simulation.  A *computing cycle* is one activation of one
    array tile with all input bits applied; ``cycles = windows × tiles``.
    """

    layer: LayerShape
    array: ArrayConfig
    mapper: str
    tiling: Tiling
    """``element``: rows/columns cut every R / C_eff; ``channel``: whole channels per tile."""
    window: Pair
    """Parallel window a_h × a_w: output positions of every filter per cycle."""
    patch: Pair
    """P_h × P_w: bounding box of the input patch of one window."""
    pixels: int
    """Array rows one input channel occupies (patch pixels actually read)."""
    channels_per_tile: int
    """IC_t: input channels per row tile (element tiling: whole channels that fit)."""
    filters_per_tile: int
    """OC_t: filters per column tile (element tiling: whole filters that fit)."""
    windows: int
    """N_PW: parallel windows to cover the output."""
    row_tiles: int
    """Row tiles per group: partial sums of one output added digitally."""
    col_tiles: int
    """Column tiles per group."""
    group_sets: int
    """Arrays-worth of groups (g, or ⌈g/m⌉ when m groups share an array block-diagonally)."""
    groups_per_tile: int
    tiles: int
    """Array tiles activated per window."""
    cycles: int
    """Computing cycles: tile activations over the whole layer (one image)."""
    weight_cells: int
    """Cells holding (nonzero) weights, duplicated copies and bit slices included."""
    driven_rows: int
    """Row slots holding a weight row, summed over the tiles of one window."""
    driven_cols: int
    """Physical column slots holding weights, summed over the tiles of one window."""
    skip_zero_rows: bool = False
    """Rows whose weights are all zero (per column tile) are removed before tiling."""
    skipped_rows: int = Field(default=0, ge=0)
    """Rows removed because every weight on them is zero (pruned row skipping)."""
    index_rows: int = Field(default=0, ge=0)
    """Kept rows whose input must be routed by index/multiplexer logic."""
    overlap_cycles: int = Field(default=0, ge=0)
    """Cycles hidden behind the previous layer when factors run pipelined."""

    @property
    def utilization(self) -> float:
        """Weight cells / cells of the tiles used."""
        return self.weight_cells / (self.tiles * self.array.cells)

    @property
    def row_utilization(self) -> float:
        """Fraction of the array rows driven per cycle (mean over tiles)."""
        return self.driven_rows / (self.tiles * self.array.rows)

    @property
    def col_utilization(self) -> float:
        """Fraction of the array columns read per cycle (mean over tiles)."""
        return self.driven_cols / (self.tiles * self.array.cols)

    @property
    def latency_cycles(self) -> int:
        """Cycles this layer adds to the critical path."""
        return self.cycles - self.overlap_cycles

    def summary(self) -> dict[str, object]:
        """Flat record for tables, CSV and JSON."""
        return {
            "name": self.layer.name,
            "layer": self.layer.describe(),
            "mapper": self.mapper,
            "tiling": self.tiling,
            "window": f"{self.window[0]}x{self.window[1]}",
            "patch": f"{self.patch[0]}x{self.patch[1]}",
            "ic_t": self.channels_per_tile,
            "oc_t": self.filters_per_tile,
            "windows": self.windows,
            "tiles": self.tiles,
            "row_tiles": self.row_tiles,
            "col_tiles": self.col_tiles,
            "cycles": self.cycles,
            "latency_cycles": self.latency_cycles,
            "utilization": self.utilization,
            "row_utilization": self.row_utilization,
            "col_utilization": self.col_utilization,
            "weight_cells": self.weight_cells,
            "skipped_rows": self.skipped_rows,
            "index_rows": self.index_rows,
            "params": self.layer.nonzero_params,
            "macs": self.layer.macs,
        }


def mapping_from(
    layer: LayerShape, array: ArrayConfig, mapper: str, tiling: Tiling, c: Candidates, i: int
) -> LayerMapping:
    """Build the ``LayerMapping`` of candidate ``i``."""
    a_h, a_w = int(c.a_h[i]), int(c.a_w[i])
    (kh, kw), (sh, sw), (dh, dw) = layer.kernel_size, layer.stride, layer.dilation
    tiles = int(c.tiles[i])
    copies = a_h * a_w
    g = layer.groups
    rows_g, cols_g = int(c.pixels[i]) * layer.in_per_group, copies * layer.out_per_group
    cpw = array.cols_per_weight
    per_group_cols = int(c.col_tiles[i]) if int(c.group_sets[i]) == g else 1
    per_group_rows = int(c.row_tiles[i]) if int(c.group_sets[i]) == g else 1
    return LayerMapping(
        layer=layer, array=array, mapper=mapper, tiling=tiling, window=(a_h, a_w),
        patch=(int(patch_extent(a_h, kh, sh, dh)), int(patch_extent(a_w, kw, sw, dw))),
        pixels=int(c.pixels[i]), channels_per_tile=int(c.ic_t[i]),
        filters_per_tile=int(c.oc_t[i]), windows=int(c.windows[i]),
        row_tiles=int(c.row_tiles[i]), col_tiles=int(c.col_tiles[i]),
        group_sets=int(c.group_sets[i]), groups_per_tile=int(c.groups_per_tile[i]),
        tiles=tiles, cycles=int(c.windows[i]) * tiles,
        weight_cells=copies * layer.nonzero_params * cpw,
        driven_rows=g * rows_g * per_group_cols,
        driven_cols=g * cols_g * cpw * per_group_rows,
    )


class Mapper(Protocol):
    """Anything with a name and ``map(layer, array) -> LayerMapping``."""

    name: str

    def map(self, layer: LayerShape, array: ArrayConfig) -> LayerMapping: ...


MapperFactory = Callable[[], Mapper]
_REGISTRY: dict[str, MapperFactory] = {}
DENSE_MAPPERS = ("im2col", "sdk", "sdk-unconstrained", "vw-sdk", "sdk-rect")


def register_mapper(name: str, factory: MapperFactory) -> None:
    """Add a mapper under ``name``; a duplicate name is refused."""
    if name in _REGISTRY:
        raise ConfigError(f"mapper {name!r} is already registered")
    _REGISTRY[name] = factory


def mapper_names() -> list[str]:
    return list(_REGISTRY)


def get_mapper(name: str) -> Mapper:
    """The mapper registered under ``name`` (``im2col``, ``sdk``, ``vw-sdk``, ``best``…)."""
    try:
        return _REGISTRY[name]()
    except KeyError:
        known = ", ".join(_REGISTRY)
        raise ConfigError(f"unknown mapper {name!r} (known: {known})") from None
