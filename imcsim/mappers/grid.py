"""The closed-form layout of the window mappers (im2col, SDK, VW-SDK, pruned, low-rank).

A window's rows are its patch pixels of every input channel, channel-major; its columns
are its copies of every filter, copy-major.  Per group they are cut on a grid:

* ``element`` tiling: every R rows / C_eff columns (im2col, SDK: Zhang et al., TCAD 2020);
* ``channel`` tiling: IC_t whole channels / OC_t whole filters per tile (VW-SDK: Rhe,
  Moon, Ko, DATE 2022).

When a whole group fits on one array, ``groups_per_tile`` groups share it
block-diagonally.  Row skipping (PAIRS, ISLPED 2023) drops, per column tile, the rows
whose weights are all zero before the rows are cut.  A pruned mapping may also have
left out all-zero filters and channels: ``kept_filters`` / ``kept_channels`` say which
of the layer's filters and channels the grid was built on, so the placement speaks of
the layer's own indices.

``grid_mapping`` builds the ``LayerMapping`` of one candidate window in closed form;
its counts equal those of the placement ``GridLayout.placement`` builds
(``placement.check_mapping``, tested on every mapper).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from imcsim.hardware import ArrayConfig
from imcsim.layers import LayerShape, Pair
from imcsim.mappers.geometry import Candidate, Tiling
from imcsim.mappers.mapping import LayerMapping, Role
from imcsim.mappers.placement import Placement, Tile, kernel_taps, patch_pixels

__all__ = ["GridLayout", "grid_mapping", "subset_layer"]


def subset_layer(layer: LayerShape, filters: np.ndarray, channels: np.ndarray) -> LayerShape:
    """``layer`` restricted to some filters and input channels (an ungrouped layer)."""
    mask = layer.nonzero_mask()
    fields = layer.model_dump(exclude={"nonzero"})
    fields.update(out_channels=len(filters), in_channels=len(channels))
    small = LayerShape(**fields)
    return small if mask is None else small.with_mask(mask[np.ix_(filters, channels)])


@dataclass(frozen=True, eq=False)
class GridLayout:
    """A window's rows × copy columns cut on a grid (see the module docstring)."""

    tiling: Tiling
    window: Pair
    channels_per_tile: int
    """IC_t: input channels per row tile (element tiling: whole channels that fit)."""
    filters_per_tile: int
    """OC_t: filters per column tile (element tiling: whole filters that fit)."""
    groups_per_tile: int = 1
    skip_zero_rows: bool = False
    kept_filters: np.ndarray | None = None
    kept_channels: np.ndarray | None = None

    def describe(self) -> dict[str, Any]:
        return {"tiling": self.tiling, "ic_t": self.channels_per_tile,
                "oc_t": self.filters_per_tile}

    def placement(self, layer: LayerShape, array: ArrayConfig) -> Placement:
        grid = layer
        if self.kept_filters is not None:
            grid = subset_layer(layer, self.kept_filters, self.kept_channels)
        tiles = _GridBuilder(self, grid, array).tiles()
        if self.kept_filters is not None:
            tiles = [Tile(rows=_reindex(t.rows, 0, self.kept_channels),
                          cols=_reindex(t.cols, 1, self.kept_filters)) for t in tiles]
        return Placement(layer=layer, array=array, window=self.window, tiles=tuple(tiles))


def _reindex(part: np.ndarray, column: int, ids: np.ndarray) -> np.ndarray:
    out = part.copy()
    out[:, column] = ids[part[:, column]]
    return out


class _GridBuilder:
    """Lays the grid out tile by tile (numpy; once per layer, when a consumer asks)."""

    def __init__(self, grid: GridLayout, layer: LayerShape, array: ArrayConfig) -> None:
        self.grid, self.layer, self.array = grid, layer, array
        self.pixels = patch_pixels(layer, grid.window)

    def group_rows(self, group: int) -> np.ndarray:
        """(C_in/g · T, 3) rows of one group, channel-major."""
        cin, t = self.layer.in_per_group, len(self.pixels)
        channels = np.repeat(np.arange(cin) + group * cin, t)
        return np.column_stack([channels, np.tile(self.pixels, (cin, 1))])

    def group_cols(self, group: int) -> np.ndarray:
        """(a_h·a_w · C_out/g, 2) columns of one group, copy-major."""
        cout, copies = self.layer.out_per_group, self.grid.window[0] * self.grid.window[1]
        return np.column_stack(
            [np.repeat(np.arange(copies), cout), np.tile(np.arange(cout) + group * cout, copies)]
        )

    def row_chunks(self, rows: np.ndarray) -> list[np.ndarray]:
        if self.grid.tiling == "channel":
            step = self.grid.channels_per_tile * len(self.pixels)
        else:
            step = self.array.rows
        return [rows[i : i + step] for i in range(0, len(rows), step)]

    def col_chunks(self, cols: np.ndarray) -> list[np.ndarray]:
        if self.grid.tiling == "channel":
            block = (cols[:, 1] % self.layer.out_per_group) // self.grid.filters_per_tile
            return [cols[block == b] for b in range(int(block.max()) + 1)]
        step = self.array.effective_cols
        return [cols[i : i + step] for i in range(0, len(cols), step)]

    def kept_rows(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Rows carrying at least one nonzero weight on these columns (row skipping)."""
        valid, ty, tx = kernel_taps(self.layer, self.grid.window, rows, cols)
        mask = self.layer.nonzero_mask()
        if mask is not None:
            c_local = (rows[:, 0] % self.layer.in_per_group)[:, None]
            valid &= mask[cols[:, 1][None, :], c_local, ty, tx]
        return rows[valid.any(axis=1)]

    def group_set_tiles(self, groups: range) -> list[Tile]:
        rows = np.concatenate([self.group_rows(g) for g in groups])
        cols = np.concatenate([self.group_cols(g) for g in groups])
        if self.grid.groups_per_tile > 1:  # whole groups share one array block-diagonally
            return [Tile(rows=rows, cols=cols)]
        tiles = []
        for col_chunk in self.col_chunks(cols):
            kept = self.kept_rows(rows, col_chunk) if self.grid.skip_zero_rows else rows
            tiles += [Tile(rows=chunk, cols=col_chunk) for chunk in self.row_chunks(kept)]
        return tiles

    def tiles(self) -> list[Tile]:
        """All tiles activated per window, group sets in order."""
        g, m = self.layer.groups, self.grid.groups_per_tile
        sets = [range(s, min(s + m, g)) for s in range(0, g, m)]
        return [tile for groups in sets for tile in self.group_set_tiles(groups)]


def grid_mapping(
    layer: LayerShape, array: ArrayConfig, mapper: str, tiling: Tiling, c: Candidate,
    *, scheme: str | None = None, role: Role = "layer",
) -> LayerMapping:
    """The ``LayerMapping`` of candidate window ``c``, counted in closed form."""
    g, m = layer.groups, c.groups_per_tile
    copies, cpw = c.a_h * c.a_w, array.cols_per_weight
    rows_g, cols_g = c.pixels * layer.in_per_group, copies * layer.out_per_group
    shared = c.group_sets != g
    row_tiles, col_tiles = (1, 1) if shared else (c.row_tiles, c.col_tiles)
    full, rest = divmod(g, m)
    slots_per_group = (full * m * m + rest * rest) if shared else g
    layout = GridLayout(tiling=tiling, window=(c.a_h, c.a_w), channels_per_tile=c.ic_t,
                        filters_per_tile=c.oc_t, groups_per_tile=m)
    return LayerMapping(
        layer=layer, array=array, mapper=mapper, scheme=scheme or mapper, window=(c.a_h, c.a_w),
        windows=c.windows, tiles=c.tiles, outputs=copies * layer.out_channels,
        row_tiles=row_tiles, driven_rows=g * rows_g * col_tiles,
        driven_cols=g * cols_g * cpw * row_tiles,
        cell_slots=slots_per_group * rows_g * cols_g * cpw,
        weight_cells=copies * layer.nonzero_params * cpw, layout=layout, role=role,
    )
