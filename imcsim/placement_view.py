"""What a placement puts on each physical cell of a tile: the data behind the mapping pictures.

Read from the placement only (``imcsim.mappers.placement``), so any mapper — a built-in
grid layout or a user's hand-built ``Placement`` — is viewed the same way.  A tile's
word line ``i`` is its row ``i``; its weight column ``j`` covers bit lines
``j·cpw … (j+1)·cpw − 1`` (``cpw = array.cols_per_weight``: weight bit slices and sign
columns).  Every cell of the array is one of:

* ``WEIGHT``: a nonzero weight (filter, window copy, kernel tap known);
* ``PRUNED``: a weight stored as zero (its row is kept for other columns of the tile);
* ``EMPTY``: a used row meets a used column but no kernel tap lands there (the zeros of
  SDK's shifted kernel copies, of block-diagonal groups, of a window's unused pixels);
* ``UNUSED``: a word line or bit line the tile leaves idle.

A *column tile* is the set of tiles that read the same columns (the row tiles that sum
one output's partial sums).  A row is *skipped* by a column tile when some weight of the
tile's columns would sit on it (a kernel tap lands there) but every such weight is zero
and the placement leaves the row out (row skipping, PAIRS, ISLPED 2023); filters and
window copies placed on no tile are *dropped* (all-zero filters of a pruned layer).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from imcsim.errors import ConfigError
from imcsim.mappers.mapping import LayerMapping
from imcsim.mappers.placement import Placement, kernel_taps, patch_pixels

__all__ = [
    "EMPTY", "PRUNED", "UNUSED", "WEIGHT", "TileView", "column_tiles", "dropped_outputs",
    "layer_tiles", "skipped_rows", "tile_split", "tile_view", "tile_views",
]

UNUSED, EMPTY, PRUNED, WEIGHT = 0, 1, 2, 3


@dataclass(frozen=True, eq=False)
class TileView:
    """One tile as the array's grid of physical cells (word lines × bit lines).

    Per-cell arrays have shape (rows, cols) of the array; ``filter``, ``copy`` and ``tap``
    are −1 where no weight column / no kernel tap is.  ``tap = kh·K_w + kw``.
    """

    index: int
    kind: np.ndarray
    filter: np.ndarray
    copy: np.ndarray
    tap: np.ndarray
    channel: np.ndarray
    """Input channel each word line carries (−1: idle word line)."""
    column_copy: np.ndarray
    """Window copy each bit line belongs to (−1: idle bit line)."""
    zero_rows: np.ndarray
    """Used word lines holding no nonzero weight of this tile."""
    zero_cols: np.ndarray
    """Used bit lines holding no nonzero weight of this tile."""
    skipped_before: np.ndarray
    """(rows + 1,) all-zero rows of this column tile left out just before word line ``i``
    (at the number of used word lines: after the last one)."""

    @property
    def used_rows(self) -> int:
        return int((self.channel >= 0).sum())

    @property
    def used_cols(self) -> int:
        return int((self.column_copy >= 0).sum())


def column_tiles(placement: Placement) -> list[list[int]]:
    """Tile indices grouped by the columns they read, in order of first appearance."""
    groups: dict[bytes, list[int]] = {}
    for index, tile in enumerate(placement.tiles):
        groups.setdefault(np.ascontiguousarray(tile.cols).tobytes(), []).append(index)
    return list(groups.values())


def tile_split(mapping: LayerMapping) -> list[int]:
    """Row tiles of each column tile: a layer's tiles are their sum."""
    return [len(group) for group in column_tiles(mapping.placement)]


def layer_tiles(mappings: tuple[LayerMapping, ...] | list[LayerMapping]) -> list[list]:
    """``[name, windows, [row tiles of each column tile]]`` per layer (the tile-cycles chart)."""
    return [[m.layer.name, m.windows, tile_split(m)] for m in mappings]


def dropped_outputs(placement: Placement) -> int:
    """(window copy, filter) columns that sit on no tile (all-zero filters left out)."""
    placed = np.unique(np.concatenate(
        [t.cols[:, 0] * placement.layer.out_channels + t.cols[:, 1] for t in placement.tiles]))
    return placement.copies * placement.layer.out_channels - len(placed)


def _patch(placement: Placement) -> tuple[np.ndarray, int, int]:
    pixels = patch_pixels(placement.layer, placement.window)
    return pixels, int(pixels[:, 0].max()) + 1, int(pixels[:, 1].max()) + 1


def _row_keys(rows: np.ndarray, height: int, width: int) -> np.ndarray:
    """Dense row order: channel-major, then patch pixel row-major."""
    return (rows[:, 0] * height + rows[:, 1]) * width + rows[:, 2]


def _nonzero(placement: Placement, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, ...]:
    """(valid tap, nonzero weight, tap index) for every (row, col) pair."""
    layer = placement.layer
    valid, ty, tx = kernel_taps(layer, placement.window, rows, cols)
    mask = layer.nonzero_mask()
    nonzero = valid
    if mask is not None:
        c_local = (rows[:, 0] % layer.in_per_group)[:, None]
        nonzero = valid & mask[cols[:, 1][None, :], c_local, ty, tx]
    return valid, nonzero, ty * layer.kernel_size[1] + tx


def skipped_rows(placement: Placement, group: list[int]) -> np.ndarray:
    """Sorted dense-order keys of the rows the column tile ``group`` skips (see module doc)."""
    pixels, height, width = _patch(placement)
    cols = placement.tiles[group[0]].cols
    channels = np.arange(placement.layer.in_channels)
    rows = np.column_stack([np.repeat(channels, len(pixels)), np.tile(pixels, (len(channels), 1))])
    valid, nonzero, _ = _nonzero(placement, rows, cols)
    placed = np.concatenate([_row_keys(placement.tiles[i].rows, height, width) for i in group])
    keys = _row_keys(rows, height, width)
    skip = valid.any(axis=1) & ~nonzero.any(axis=1) & ~np.isin(keys, placed)
    return np.sort(keys[skip])


def _skipped_before(placement: Placement, index: int, group: list[int],
                    skipped: np.ndarray) -> np.ndarray:
    """Skipped rows of ``index``'s column tile falling just before each of its word lines."""
    keys_of = _keys_of(placement)
    keys = keys_of(index)
    out = np.zeros(len(keys) + 1, dtype=np.int64)
    if not len(skipped):
        return out
    at = group.index(index)
    before = -1 if at == 0 else int(keys_of(group[at - 1])[-1])
    bounds = np.concatenate([[before], keys])
    lower = np.searchsorted(skipped, bounds[:-1], side="right")
    upper = np.searchsorted(skipped, bounds[1:], side="left")
    out[:-1] = np.maximum(upper - lower, 0)
    if at == len(group) - 1:
        out[-1] = len(skipped) - np.searchsorted(skipped, keys[-1], side="right")
    return out


def _keys_of(placement: Placement) -> Callable[[int], np.ndarray]:
    """Dense-order keys of a tile's rows, by tile index."""
    _, height, width = _patch(placement)
    return lambda i: _row_keys(placement.tiles[i].rows, height, width)


def tile_views(placement: Placement, indices: list[int] | None = None) -> Iterator[TileView]:
    """Views of the tiles ``indices`` (default: every tile), in that order, one at a time."""
    count = len(placement.tiles)
    indices = list(range(count)) if indices is None else list(indices)
    for index in indices:
        if not 0 <= index < count:
            raise ConfigError(f"layer {placement.layer.name!r}: tile {index} out of range "
                              f"(it has {count} tile(s): 0..{count - 1})")
    wanted, group_of, skipped = set(indices), {}, {}
    for number, group in enumerate(column_tiles(placement)):
        if wanted.intersection(group):
            skipped[number] = skipped_rows(placement, group)
            group_of.update({i: (number, group) for i in group})
    for index in indices:
        number, group = group_of[index]
        yield _view(placement, index, _skipped_before(placement, index, group, skipped[number]))


def tile_view(placement: Placement, index: int) -> TileView:
    """The physical cells of tile ``index`` (``ConfigError`` if there is no such tile)."""
    return next(tile_views(placement, [index]))


def _view(placement: Placement, index: int, before: np.ndarray) -> TileView:
    tile, array = placement.tiles[index], placement.array
    cpw, (n, m) = array.cols_per_weight, (len(tile.rows), len(tile.cols))
    valid, nonzero, tap = _nonzero(placement, tile.rows, tile.cols)
    kind = np.full((array.rows, array.cols), UNUSED, dtype=np.int8)
    used = np.where(nonzero, WEIGHT, np.where(valid, PRUNED, EMPTY)).astype(np.int8)
    kind[:n, : m * cpw] = np.repeat(used, cpw, axis=1)
    filters, copies, taps = (np.full((array.rows, array.cols), -1, dtype=np.int32)
                             for _ in range(3))
    filters[:n, : m * cpw] = np.repeat(np.broadcast_to(tile.cols[:, 1], (n, m)), cpw, axis=1)
    copies[:n, : m * cpw] = np.repeat(np.broadcast_to(tile.cols[:, 0], (n, m)), cpw, axis=1)
    taps[:n, : m * cpw] = np.repeat(np.where(valid, tap, -1), cpw, axis=1)
    channel = np.full(array.rows, -1, dtype=np.int64)
    channel[:n] = tile.rows[:, 0]
    column_copy = np.full(array.cols, -1, dtype=np.int64)
    column_copy[: m * cpw] = np.repeat(tile.cols[:, 0], cpw)
    zero_rows = np.zeros(array.rows, dtype=bool)
    zero_rows[:n] = ~nonzero.any(axis=1)
    zero_cols = np.zeros(array.cols, dtype=bool)
    zero_cols[: m * cpw] = np.repeat(~nonzero.any(axis=0), cpw)
    skipped = np.zeros(array.rows + 1, dtype=np.int64)
    skipped[: n + 1] = before
    return TileView(index=index, kind=kind, filter=filters, copy=copies, tap=taps,
                    channel=channel, column_copy=column_copy, zero_rows=zero_rows,
                    zero_cols=zero_cols, skipped_before=skipped)
