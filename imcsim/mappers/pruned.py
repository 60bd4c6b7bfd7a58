"""Pruned mapping: shrink all-zero filters/channels, then skip all-zero array rows.

PAIRS (ISLPED 2023) and GAROS (JSA 2025): a zero weight saves nothing on a crossbar
unless a whole row of a tile is zero; such rows are left out and the remaining rows
packed, at the price of index/multiplexer logic that routes each kept row's input.

1. **Shrink** (filter / channel pruning): filters and input channels whose weights
   are all zero are left out of the grid (ungrouped layers); the mapping keeps the
   layer itself and says which filters and channels the grid holds
   (``GridLayout.kept_filters`` / ``kept_channels``), so its placement speaks of the
   layer's own indices.
2. **Skip**: columns are laid out as the dense element-tiled mapping does (copy-major,
   cut every C_eff); per column tile a row (input channel, patch pixel) is kept iff
   some tap landing on it, over every copy and filter of that tile, is nonzero.
   Cycles = N_PW · Σ_column tiles ⌈kept rows / R⌉.  With one column tile this is the
   REFERENCES.md formula N_PW·⌈(C_in·P² − S)/R⌉·⌈n²C_out/C_eff⌉.
3. **Window** (``pruned-sdk``): SDK's square windows under SDK's own feasibility rule
   (Zhang et al., TCAD 2020, as re-implemented by VW-SDK), applied to the kept rows:
   a window is feasible while every column tile needs at most A_r row tiles and at
   most A_c column tiles, A_r × A_c being the im2col tile budget of the layer *before*
   shrinking (so pruning never makes a dense-feasible window infeasible); the feasible
   window with the fewest cycles wins (n = 1 is im2col).  A dense layer therefore maps
   exactly as ``sdk``, and a pruned one never costs more.  ``pruned-sdk-unconstrained``
   drops the budget (the tile count grows with the window, KERNTROL ``SDK_a`` / GAROS
   counting: N_PW · Σ_column tiles ⌈(C_in·P² − S)/R⌉); a dense layer never costs more
   than under ``sdk-unconstrained`` (less when a column tile holds only some window
   copies: the patch pixels they do not read are empty rows of that tile).
4. **Index rows**: every kept row of a column tile that skipped at least one row needs
   index/multiplexer logic (its input is no longer the dense patch order).
5. **Index bits** (``index_bits``): the pattern ids a sparse layer stores (PatDNN's
   per-kernel pattern index, Niu et al., ASPLOS 2020; PCNN's sparsity-pattern mask, Tan
   et al., 2020).  With L distinct kernel patterns in the grid (the empty one included),
   each unit stores ⌈log2 L⌉ bits; a unit is an input channel when all its kernels share
   one pattern, else a kernel.  One pattern for the whole layer (or a shrunk channel /
   filter pruned layer, L = 1) needs no index; unstructured sparsity needs a K×K bitmap
   per kernel at most.

``skipped_rows`` and ``index_rows`` are summed over the column tiles of one window.
Grouped layers are mapped densely by the base mapper (no shrink, no skipping).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from imcsim.errors import ConfigError, MappingError
from imcsim.hardware import ArrayConfig
from imcsim.layers import LayerShape
from imcsim.mappers.base import get_mapper
from imcsim.mappers.geometry import Candidates
from imcsim.mappers.grid import grid_mapping, subset_layer
from imcsim.mappers.im2col import im2col_candidate
from imcsim.mappers.mapping import LayerMapping
from imcsim.mappers.placement import patch_pixels
from imcsim.mappers.sdk import square_windows

__all__ = ["Pruned", "SkipCount", "index_bits", "kept_rows", "shrink", "skip_count"]

Base = Literal["im2col", "sdk", "sdk-unconstrained"]
BASES: tuple[str, ...] = ("im2col", "sdk", "sdk-unconstrained")


@dataclass(frozen=True, eq=False)
class Shrunk:
    """An ungrouped layer without its all-zero filters and input channels."""

    layer: LayerShape
    filters: np.ndarray | None
    """Kept filter indices of the original layer (None: nothing left out)."""
    channels: np.ndarray | None


def shrink(layer: LayerShape) -> Shrunk:
    """``layer`` without its all-zero filters and input channels (ungrouped layers)."""
    mask = layer.nonzero_mask()
    if mask is None or layer.groups > 1:
        return Shrunk(layer, None, None)
    filters, channels = mask.any(axis=(1, 2, 3)), mask.any(axis=(0, 2, 3))
    if not filters.any():
        raise MappingError(f"layer {layer.name!r}: every weight is zero; remove the layer")
    if filters.all() and channels.all():
        return Shrunk(layer, None, None)
    kept_f, kept_c = np.flatnonzero(filters), np.flatnonzero(channels)
    return Shrunk(subset_layer(layer, kept_f, kept_c), kept_f, kept_c)


def _occupancy(layer: LayerShape, window: tuple[int, int], pieces: list[tuple[int, np.ndarray]]) -> int:
    """Kept rows of one column tile: pixels of each channel hit by a nonzero tap.

    ``pieces``: (copy, union over the tile's filters of that copy) with the union a
    (C_in, K_h, K_w) boolean array.
    """
    (kh, kw), (sh, sw), (dh, dw) = layer.kernel_size, layer.stride, layer.dilation
    size_h = dh * (kh - 1) + 1 + (window[0] - 1) * sh
    size_w = dw * (kw - 1) + 1 + (window[1] - 1) * sw
    occ = np.zeros((layer.in_channels, size_h, size_w), dtype=bool)
    for copy, union in pieces:
        oy, ox = divmod(copy, window[1])
        y, x = oy * sh, ox * sw
        occ[:, y : y + dh * (kh - 1) + 1 : dh, x : x + dw * (kw - 1) + 1 : dw] |= union
    return int(occ.sum())


def kept_rows(layer: LayerShape, array: ArrayConfig, window: tuple[int, int]) -> np.ndarray:
    """Rows kept in each column tile of the element-tiled window (ungrouped layer)."""
    mask = layer.nonzero_mask()
    if mask is None:
        mask = np.ones(layer.weight_shape, dtype=bool)
    cout, step = layer.out_channels, array.effective_cols
    total = window[0] * window[1] * cout
    full = mask.any(axis=0)
    kept = []
    for start in range(0, total, step):
        stop = min(start + step, total)
        pieces = []
        for copy in range(start // cout, (stop - 1) // cout + 1):
            lo, hi = max(start - copy * cout, 0), min(stop - copy * cout, cout)
            pieces.append((copy, full if (lo, hi) == (0, cout) else mask[lo:hi].any(axis=0)))
        kept.append(_occupancy(layer, window, pieces))
    return np.array(kept, dtype=np.int64)


@dataclass(frozen=True)
class SkipCount:
    """Row skipping of one window: per column tile kept rows, and what they cost."""

    kept: np.ndarray
    rows: int
    """Rows of one column tile before skipping (C_in · patch pixels)."""
    array_rows: int

    @property
    def row_tiles(self) -> np.ndarray:
        return -(-self.kept // self.array_rows)

    @property
    def tiles(self) -> int:
        return int(self.row_tiles.sum())

    @property
    def skipped(self) -> int:
        return int((self.rows - self.kept).sum())

    @property
    def index_rows(self) -> int:
        return int(self.kept[self.kept < self.rows].sum())


def skip_count(layer: LayerShape, array: ArrayConfig, window: tuple[int, int]) -> SkipCount:
    """Kept / skipped rows of ``layer`` (ungrouped) under element tiling with ``window``."""
    rows = len(patch_pixels(layer, window)) * layer.in_channels
    return SkipCount(kept_rows(layer, array, window), rows, array.rows)


def index_bits(layer: LayerShape) -> int:
    """Pattern-index bits of an ungrouped layer's nonzero mask (rule 5 of the module doc)."""
    mask = layer.nonzero_mask()
    if mask is None:
        return 0
    kernels = mask.reshape(layer.out_channels, layer.in_channels, -1)
    codes = np.unique(kernels.reshape(-1, kernels.shape[2]), axis=0)
    if len(codes) <= 1:
        return 0
    per_channel = bool((kernels == kernels[:1]).all())
    units = layer.in_channels if per_channel else layer.out_channels * layer.in_channels
    return units * math.ceil(math.log2(len(codes)))


def _mapping(
    layer: LayerShape, shrunk: Shrunk, array: ArrayConfig, name: str, c: Candidates, i: int,
    skip: SkipCount,
) -> LayerMapping:
    """The mapping of ``layer`` whose grid holds ``shrunk`` with rows skipped per ``skip``."""
    small, cpw = shrunk.layer, array.cols_per_weight
    base = grid_mapping(small, array, name, "element", c.pick(i), scheme=name)
    cols = np.full(len(skip.kept), array.effective_cols)
    cols[-1] = base.outputs - array.effective_cols * (len(cols) - 1)
    layout = replace(base.layout, skip_zero_rows=True, kept_filters=shrunk.filters,
                     kept_channels=shrunk.channels)
    return replace(
        base, layer=layer, layout=layout, skipped_rows=skip.skipped,
        index_rows=skip.index_rows, index_bits=index_bits(small), tiles=skip.tiles,
        row_tiles=int(skip.row_tiles.max()),
        driven_rows=int(skip.kept.sum()), driven_cols=int((skip.row_tiles * cols).sum()) * cpw,
        cell_slots=int((skip.kept * cols).sum()) * cpw,
    )


@dataclass(frozen=True)
class Pruned:
    """Pruned mapper over ``im2col``, ``sdk`` or ``sdk-unconstrained`` windows (module doc)."""

    base: Base = "sdk"
    name: str = "pruned-sdk"

    def __post_init__(self) -> None:
        if self.base not in BASES:
            raise ConfigError(f"pruned mapper base {self.base!r}; expected one of {', '.join(BASES)}")

    def _windows(self, small: LayerShape, array: ArrayConfig, col_budget: int) -> Candidates:
        if self.base == "im2col":
            return im2col_candidate(small, array)
        c = square_windows(small, array)
        if self.base == "sdk-unconstrained":  # every n: skipping breaks the dense shortcut
            return c
        return replace(c, valid=c.col_tiles <= col_budget)

    def map(self, layer: LayerShape, array: ArrayConfig) -> LayerMapping:
        if layer.groups > 1:
            dense = get_mapper(self.base).map(layer, array)
            return replace(dense, mapper=self.name, scheme=f"{self.base} (grouped: dense)")
        budget = im2col_candidate(layer, array)
        shrunk = shrink(layer)
        small = shrunk.layer
        c = self._windows(small, array, int(budget.col_tiles[0]))
        best_key, best_i, best_skip = None, 0, skip_count(small, array, (1, 1))
        for i in np.flatnonzero(c.valid):
            window = (int(c.a_h[i]), int(c.a_w[i]))
            skip = best_skip if window == (1, 1) else skip_count(small, array, window)
            over = int(skip.row_tiles.max()) > int(budget.row_tiles[0])
            if window != (1, 1) and self.base == "sdk" and over:
                continue
            key = (int(c.windows[i]) * skip.tiles, skip.tiles, window[0] * window[1], *window)
            if best_key is None or key < best_key:
                best_key, best_i, best_skip = key, int(i), skip
        return _mapping(layer, shrunk, array, self.name, c, best_i, best_skip)
