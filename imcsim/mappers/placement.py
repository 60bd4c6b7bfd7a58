"""The placement contract: which weight sits on which row and column of which tile.

A mapping's placement is the single description the cost model, the cycle simulator
and the functional (accuracy) simulation read.  Its vocabulary:

* a **row** ``(channel, dy, dx)``: an input channel (global index) and a pixel of the
  parallel window's input patch, relative to the window's origin;
* a **column** ``(copy, filter)``: the window copy ``copy = oy·a_w + ox`` (the output
  position inside the a_h × a_w window) and the global filter index.  It occupies
  ``array.cols_per_weight`` adjacent physical columns (weight bit slices, sign pairs).

A :class:`Tile` lists its rows and columns in physical order: row ``i`` of the arrays
sits on word line ``i``, column ``j`` on bit lines ``j·cpw … (j+1)·cpw − 1``.  Row
``(c, dy, dx)`` meets column ``(copy, f)`` at kernel tap ((dy − oy·s)/d, (dx − ox·s)/d)
when both divide, the tap lies in the kernel and c is in f's group; the cell there holds
that weight, every other cell of the tile is empty.  Every window activates every tile
once, so a layer costs ``windows × tiles`` computing cycles.

``Placement.from_tiles`` checks that a hand-built placement is valid: tiles fit the
array, indices are in range, and every nonzero weight of every window copy sits on
exactly one tile.  ``Placement.to_mapping`` derives a ``LayerMapping``'s counts from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from imcsim.errors import MappingError
from imcsim.hardware import ArrayConfig
from imcsim.layers import LayerShape, Pair
from imcsim.mappers.mapping import LayerMapping, Role

__all__ = [
    "Placement", "PlacementCounts", "Tile", "axis_pixels", "check_mapping", "kernel_taps",
    "patch_pixels", "tile_weights",
]


@dataclass(frozen=True, eq=False)
class Tile:
    """One array tile, activated once per parallel window.

    ``rows``: (n, 3) ints ``(channel, dy, dx)``; ``cols``: (m, 2) ints ``(copy, filter)``;
    both in physical order.
    """

    rows: np.ndarray
    cols: np.ndarray

    def __post_init__(self) -> None:
        for name, width in (("rows", 3), ("cols", 2)):
            value = np.asarray(getattr(self, name))
            if value.ndim != 2 or value.shape[1] != width or not np.issubdtype(value.dtype, np.integer):
                raise MappingError(f"Tile.{name}: expected an int array of shape (n, {width}), "
                                   f"got {value.dtype} {value.shape}")
            object.__setattr__(self, name, value.astype(np.int64, copy=False))


def axis_pixels(a: int, k: int, s: int, d: int) -> np.ndarray:
    """Sorted distinct offsets ``i·s + j·d`` read along one axis by a window of ``a`` outputs."""
    return np.unique((np.arange(a)[:, None] * s + np.arange(k)[None, :] * d).ravel())


def patch_pixels(layer: LayerShape, window: Pair) -> np.ndarray:
    """(T, 2) array of the (dy, dx) pixels a window reads, row-major."""
    ys = axis_pixels(window[0], layer.kernel_size[0], layer.stride[0], layer.dilation[0])
    xs = axis_pixels(window[1], layer.kernel_size[1], layer.stride[1], layer.dilation[1])
    yy, xx = np.meshgrid(ys, xs, indexing="ij")
    return np.stack([yy.ravel(), xx.ravel()], axis=1)


def kernel_taps(
    layer: LayerShape, window: Pair, rows: np.ndarray, cols: np.ndarray
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


def tile_weights(layer: LayerShape, window: Pair, tile: Tile, weight: np.ndarray) -> np.ndarray:
    """The tile's (n_rows, n_cols) weight matrix drawn from ``weight`` (C_out, C_in/g, K_h, K_w)."""
    valid, ty, tx = kernel_taps(layer, window, tile.rows, tile.cols)
    c_local = (tile.rows[:, 0] % layer.in_per_group)[:, None]
    values = weight[tile.cols[:, 1][None, :], c_local, ty, tx]
    return np.where(valid, values, 0)


@dataclass(frozen=True)
class PlacementCounts:
    """The counts of a ``LayerMapping`` as the placement defines them (see its fields)."""

    tiles: int
    outputs: int
    row_tiles: int
    driven_rows: int
    driven_cols: int
    cell_slots: int
    weight_cells: int


@dataclass(frozen=True, eq=False)
class Placement:
    """Every tile of one layer's mapping, explicitly (see the module docstring)."""

    layer: LayerShape
    array: ArrayConfig
    window: Pair
    tiles: tuple[Tile, ...]

    @classmethod
    def from_tiles(
        cls, layer: LayerShape, array: ArrayConfig, window: Pair, tiles: Any
    ) -> Placement:
        """A validated placement of ``layer`` from hand-built tiles (``MappingError`` if not)."""
        window = (int(window[0]), int(window[1]))
        placed = tuple(t if isinstance(t, Tile) else Tile(rows=t[0], cols=t[1]) for t in tiles)
        placement = cls(layer=layer, array=array, window=window, tiles=placed)
        placement.validate()
        return placement

    # -- the Layout protocol (a placement is its own layout) --------------------------
    def placement(self, layer: LayerShape, array: ArrayConfig) -> Placement:
        return self

    def describe(self) -> dict[str, Any]:
        return {"layout": "explicit"}

    # -- validation --------------------------------------------------------------------
    @property
    def copies(self) -> int:
        return self.window[0] * self.window[1]

    def _nonzero(self, shape: tuple[int, ...]) -> np.ndarray:
        """Which weights must be placed, broadcast over window copies."""
        mask = self.layer.nonzero_mask()
        return np.ones(shape, dtype=bool) if mask is None else np.broadcast_to(mask, shape)

    def _fail(self, text: str) -> MappingError:
        return MappingError(f"layer {self.layer.name!r}: placement {text}")

    def _check_tile(self, index: int, tile: Tile, patch: tuple[int, int]) -> None:
        n, m = len(tile.rows), len(tile.cols)
        if not 0 < n <= self.array.rows or not 0 < m <= self.array.effective_cols:
            raise self._fail(f"tile {index} has {n} rows x {m} columns; the array takes "
                             f"1..{self.array.rows} rows x 1..{self.array.effective_cols} weights")
        bounds = ((tile.rows[:, 0], self.layer.in_channels, "channel"),
                  (tile.rows[:, 1], patch[0], "dy"), (tile.rows[:, 2], patch[1], "dx"),
                  (tile.cols[:, 0], self.copies, "copy"),
                  (tile.cols[:, 1], self.layer.out_channels, "filter"))
        for values, top, what in bounds:
            if values.min() < 0 or values.max() >= top:
                raise self._fail(f"tile {index}: {what} outside 0..{top - 1}")
        for part, what in ((tile.rows, "row"), (tile.cols, "column")):
            if len(np.unique(part, axis=0)) != len(part):
                raise self._fail(f"tile {index} lists a {what} twice")

    def validate(self) -> None:
        """``MappingError`` unless every nonzero weight of every copy sits on exactly one tile."""
        if not self.tiles:
            raise self._fail("has no tiles")
        if min(self.window) < 1:
            raise self._fail(f"window {self.window} must be positive")
        pixels = patch_pixels(self.layer, self.window)
        patch = (int(pixels[:, 0].max()) + 1, int(pixels[:, 1].max()) + 1)
        count = np.zeros((self.copies, *self.layer.weight_shape), dtype=np.int64)
        for index, tile in enumerate(self.tiles):
            self._check_tile(index, tile, patch)
            valid, ty, tx = kernel_taps(self.layer, self.window, tile.rows, tile.cols)
            r, k = np.nonzero(valid)
            c_local = tile.rows[r, 0] % self.layer.in_per_group
            np.add.at(count, (tile.cols[k, 0], tile.cols[k, 1], c_local, ty[r, k], tx[r, k]), 1)
        need = self._nonzero(count.shape)
        if (count[need] != 1).any() or (count > 1).any():
            missing, twice = int((count[need] == 0).sum()), int((count > 1).sum())
            raise self._fail(f"misses {missing} weight(s) and places {twice} more than once "
                             f"(window copies x filters x taps)")

    # -- what the consumers read ------------------------------------------------------
    @cached_property
    def counts(self) -> PlacementCounts:
        """The mapping counts this placement defines."""
        cpw, c_out = self.array.cols_per_weight, self.layer.out_channels
        rows = np.array([len(t.rows) for t in self.tiles], dtype=np.int64)
        cols = np.array([len(t.cols) for t in self.tiles], dtype=np.int64)
        keys = np.concatenate([t.cols[:, 0] * c_out + t.cols[:, 1] for t in self.tiles])
        sharing = np.bincount(keys)
        return PlacementCounts(
            tiles=len(self.tiles), outputs=int((sharing > 0).sum()),
            row_tiles=int(sharing.max()), driven_rows=int(rows.sum()),
            driven_cols=int(cols.sum()) * cpw, cell_slots=int((rows * cols).sum()) * cpw,
            weight_cells=int(((self.reduction_partition() >= 0)
                              & self._nonzero((self.copies, *self.layer.weight_shape))).sum()) * cpw,
        )

    def locate(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Where every weight of every window copy sits: (tile, row position, column position).

        Each array has shape (a_h·a_w, C_out, C_in/g, K_h, K_w); −1 where the weight sits on
        no array row (a zero weight left out by row skipping).  Positions are physical: word
        line and weight column (bit lines ``col·cpw …``) inside the tile.
        """
        shape = (self.copies, *self.layer.weight_shape)
        tile_of, row_of, col_of = (np.full(shape, -1, dtype=np.int64) for _ in range(3))
        for index, tile in enumerate(self.tiles):
            valid, ty, tx = kernel_taps(self.layer, self.window, tile.rows, tile.cols)
            r, k = np.nonzero(valid)
            at = (tile.cols[k, 0], tile.cols[k, 1], tile.rows[r, 0] % self.layer.in_per_group,
                  ty[r, k], tx[r, k])
            tile_of[at], row_of[at], col_of[at] = index, r, k
        return tile_of, row_of, col_of

    def reduction_partition(self) -> np.ndarray:
        """Tile index of every weight for every window copy (see :meth:`locate`).

        Weights with the same index and the same (copy, filter) share one column and one
        ADC read-out.
        """
        return self.locate()[0]

    def to_mapping(
        self, mapper: str, *, scheme: str | None = None, role: Role = "layer",
        skipped_rows: int = 0, index_rows: int = 0,
    ) -> LayerMapping:
        """The ``LayerMapping`` of this placement, every count derived from the tiles."""
        c = self.counts
        (o_h, o_w), (a_h, a_w) = self.layer.output_size, self.window
        return LayerMapping(
            layer=self.layer, array=self.array, mapper=mapper, scheme=scheme or mapper,
            window=self.window, windows=-(-o_h // a_h) * -(-o_w // a_w), tiles=c.tiles,
            outputs=c.outputs, row_tiles=c.row_tiles, driven_rows=c.driven_rows,
            driven_cols=c.driven_cols, cell_slots=c.cell_slots, weight_cells=c.weight_cells,
            layout=self, skipped_rows=skipped_rows, index_rows=index_rows, role=role,
        )


_CHECKED = ("tiles", "outputs", "row_tiles", "driven_rows", "driven_cols", "cell_slots",
            "weight_cells")


def check_mapping(mapping: LayerMapping) -> Placement:
    """The mapping's placement, after checking every closed-form count against it."""
    placement = mapping.placement
    counts = placement.counts
    wrong = [f"{k} {getattr(mapping, k)} (placement: {getattr(counts, k)})"
             for k in _CHECKED if getattr(mapping, k) != getattr(counts, k)]
    if wrong or placement.window != mapping.window:
        raise MappingError(f"layer {mapping.layer.name!r}, mapper {mapping.mapper!r}: counts "
                           f"disagree with the placement: {', '.join(wrong) or 'window'}")
    return placement
