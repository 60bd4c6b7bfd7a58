"""Explicit placement of a ``LayerMapping``: which weight sits on which row and column.

The analytic mappers count tiles in closed form; this module lays the same tiles
out explicitly so that the cycle simulator (which inputs drive each tile's rows) and
the functional simulation (which weights share a column, hence which partial sums
an ADC sees) follow exactly the mapping the cycle counts came from.

A row is ``(channel, dy, dx)``: an input channel (global index) and a pixel of the
window's patch.  A column is ``(copy, filter)``: the window offset ``copy = oy·a_w +
ox`` and the global filter index; it occupies ``cols_per_weight`` physical columns.
Element tiling orders rows channel-major and columns copy-major, then cuts them
every R rows / C_eff columns; channel tiling cuts whole channels / filters.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from imcsim.layers import LayerShape
from imcsim.mappers.base import LayerMapping


@dataclass(frozen=True)
class Tile:
    """One array tile activated once per window."""

    rows: np.ndarray  # (n_rows, 3): channel, dy, dx
    cols: np.ndarray  # (n_cols, 2): copy, filter
    row_tile: int
    col_tile: int


def axis_pixels(a: int, k: int, s: int, d: int) -> np.ndarray:
    """Sorted distinct offsets ``i·s + j·d`` read along one axis by a window of ``a`` outputs."""
    return np.unique((np.arange(a)[:, None] * s + np.arange(k)[None, :] * d).ravel())


def patch_pixels(layer: LayerShape, window: tuple[int, int]) -> np.ndarray:
    """(T, 2) array of the (dy, dx) pixels a window reads, row-major."""
    ys = axis_pixels(window[0], layer.kernel_size[0], layer.stride[0], layer.dilation[0])
    xs = axis_pixels(window[1], layer.kernel_size[1], layer.stride[1], layer.dilation[1])
    yy, xx = np.meshgrid(ys, xs, indexing="ij")
    return np.stack([yy.ravel(), xx.ravel()], axis=1)


def kernel_taps(
    layer: LayerShape, window: tuple[int, int], rows: np.ndarray, cols: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For every (row, col) pair: is a weight there, and at which kernel tap (kh, kw)?

    Row (c, dy, dx) meets column (copy, f) at tap ((dy − oy·s)/d, (dx − ox·s)/d) when
    both divide exactly, the tap lies in the kernel and c belongs to f's group.
    """
    (sh, sw), (dh, dw), (kh, kw) = layer.stride, layer.dilation, layer.kernel_size
    oy, ox = np.divmod(cols[:, 0], window[1])
    ry = rows[:, 1][:, None] - oy[None, :] * sh
    rx = rows[:, 2][:, None] - ox[None, :] * sw
    ty, tx = ry // dh, rx // dw
    same_group = (rows[:, 0][:, None] // layer.in_per_group) == (
        cols[:, 1][None, :] // layer.out_per_group
    )
    valid = (
        (ry % dh == 0) & (rx % dw == 0) & (ty >= 0) & (ty < kh) & (tx >= 0) & (tx < kw)
        & same_group
    )
    return valid, np.where(valid, ty, 0), np.where(valid, tx, 0)


def tile_weights(layer: LayerShape, window: tuple[int, int], tile: Tile, weight: np.ndarray) -> np.ndarray:
    """The tile's (n_rows, n_cols) weight matrix drawn from ``weight`` (C_out, C_in/g, K_h, K_w)."""
    valid, ty, tx = kernel_taps(layer, window, tile.rows, tile.cols)
    c_local = (tile.rows[:, 0] % layer.in_per_group)[:, None]
    values = weight[tile.cols[:, 1][None, :], c_local, ty, tx]
    return np.where(valid, values, 0)


class Placement:
    """Every tile of a mapping, laid out explicitly (built lazily, for the simulators)."""

    def __init__(self, mapping: LayerMapping) -> None:
        self.mapping = mapping
        self.layer = mapping.layer

    @cached_property
    def pixels(self) -> np.ndarray:
        return patch_pixels(self.layer, self.mapping.window)

    def group_rows(self, group: int) -> np.ndarray:
        """(C_in/g · T, 3) rows of one group, channel-major."""
        cin, t = self.layer.in_per_group, len(self.pixels)
        channels = np.repeat(np.arange(cin) + group * cin, t)
        pix = np.tile(self.pixels, (cin, 1))
        return np.column_stack([channels, pix])

    def group_cols(self, group: int) -> np.ndarray:
        """(a_h·a_w · C_out/g, 2) columns of one group, copy-major."""
        cout, copies = self.layer.out_per_group, self.mapping.window[0] * self.mapping.window[1]
        return np.column_stack(
            [np.repeat(np.arange(copies), cout), np.tile(np.arange(cout) + group * cout, copies)]
        )

    def _row_chunks(self, rows: np.ndarray) -> list[np.ndarray]:
        if self.mapping.tiling == "channel":
            step = self.mapping.channels_per_tile * len(self.pixels)
        else:
            step = self.mapping.array.rows
        return [rows[i : i + step] for i in range(0, len(rows), step)]

    def _col_chunks(self, cols: np.ndarray) -> list[np.ndarray]:
        if self.mapping.tiling == "channel":
            oc = self.mapping.filters_per_tile
            block = (cols[:, 1] % self.layer.out_per_group) // oc
            return [cols[block == b] for b in range(int(block.max()) + 1)]
        step = self.mapping.array.effective_cols
        return [cols[i : i + step] for i in range(0, len(cols), step)]

    def _kept_rows(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Rows carrying at least one nonzero weight on these columns (row skipping)."""
        valid, ty, tx = kernel_taps(self.layer, self.mapping.window, rows, cols)
        mask = self.layer.nonzero_mask()
        if mask is not None:
            c_local = (rows[:, 0] % self.layer.in_per_group)[:, None]
            valid &= mask[cols[:, 1][None, :], c_local, ty, tx]
        return rows[valid.any(axis=1)]

    def _group_set_tiles(self, groups: range) -> list[Tile]:
        rows = np.concatenate([self.group_rows(g) for g in groups])
        cols = np.concatenate([self.group_cols(g) for g in groups])
        if self.mapping.groups_per_tile > 1:  # whole groups share one array block-diagonally
            return [Tile(rows=rows, cols=cols, row_tile=0, col_tile=0)]
        tiles = []
        for ct, col_chunk in enumerate(self._col_chunks(cols)):
            kept = self._kept_rows(rows, col_chunk) if self.mapping.skip_zero_rows else rows
            for rt, row_chunk in enumerate(self._row_chunks(kept)):
                tiles.append(Tile(rows=row_chunk, cols=col_chunk, row_tile=rt, col_tile=ct))
        return tiles

    @cached_property
    def tiles(self) -> list[Tile]:
        """All tiles activated per window, group sets in order."""
        g, m = self.layer.groups, self.mapping.groups_per_tile
        sets = [range(s, min(s + m, g)) for s in range(0, g, m)]
        return [tile for groups in sets for tile in self._group_set_tiles(groups)]

    def reduction_partition(self) -> np.ndarray:
        """Row-tile index of every weight for every window copy.

        Shape (a_h·a_w, C_out, C_in/g, K_h, K_w); −1 where the weight sits on no
        array row (a skipped, all-zero row).  Weights with the same index and the
        same (copy, filter) share one column and one ADC read-out.
        """
        a = self.mapping.window[0] * self.mapping.window[1]
        part = np.full((a, *self.layer.weight_shape), -1, dtype=np.int64)
        for index, tile in enumerate(self.tiles):
            valid, ty, tx = kernel_taps(self.layer, self.mapping.window, tile.rows, tile.cols)
            r, k = np.nonzero(valid)
            c_local = tile.rows[r, 0] % self.layer.in_per_group
            part[tile.cols[k, 0], tile.cols[k, 1], c_local, ty[r, k], tx[r, k]] = index
        return part
