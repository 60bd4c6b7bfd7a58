"""Closed-form window and tile counts shared by every mapper (vectorised over windows).

One formula serves all dense schemes.  A *parallel window* (PW) computes
``a_h × a_w`` output positions of every filter in one computing cycle from one input
patch (Rhe, Moon, Ko, "VW-SDK", DATE 2022; Zhang et al., "SDK", IEEE TCAD 2020);
im2col is the 1×1 window.  The patch's input pixels, one array row per pixel and
channel, are tiled onto the R×C array either

* ``element``-wise: the unrolled rows and columns are cut every R rows / C_eff
  columns (im2col, SDK), or
* ``channel``-wise: whole channels, IC_t = ⌊R/T⌋ input channels per row tile and
  OC_t = ⌊C_eff/(a_h·a_w)⌋ filters per column tile (VW-SDK).

Grouped convolutions map group by group.  When a whole group fits on one array,
m groups share it block-diagonally (each group drives its own rows and its own
columns); otherwise every group is tiled on its own.  A depthwise conv therefore
costs ⌈C/m⌉ tiles per window, never the dense C·K² × C matrix full of zeros.

A ``sequential`` layer (a recurrent layer's time steps) admits only 1×1 windows:
window copies would compute several time steps at once, which the recurrence forbids.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np

from imcsim.hardware import ArrayConfig
from imcsim.layers import LayerShape

__all__ = ["Candidate", "Candidates", "Tiling", "argmin_cycles", "candidates", "patch_extent",
           "touched", "useful_sizes", "window_grid"]

Tiling = Literal["element", "channel"]


def _touched_brute(a: int, k: int, s: int, d: int) -> int:
    return len({i * s + j * d for i in range(a) for j in range(k)})


def touched(a: np.ndarray, k: int, s: int, d: int) -> np.ndarray:
    """Distinct input pixels along one axis read by ``a`` consecutive outputs.

    Positions are ``i·s + j·d`` (i < a outputs, j < k taps).  Equals the patch
    extent P = d(K−1) + 1 + (a−1)s whenever taps of neighbouring outputs overlap
    (every stride-1 or s ≤ K layer); fewer when a stride skips pixels (1×1 stride-2
    shortcuts), whose unread pixels need no array row.
    """
    a = np.asarray(a, dtype=np.int64)
    g = math.gcd(s, d)
    s1, d1 = s // g, d // g
    if d1 == 1:
        return np.where(s1 <= k, (a - 1) * s1 + k, a * k)
    if s1 == 1:
        return np.where(d1 <= a, (k - 1) * d1 + a, a * k)
    return np.array([_touched_brute(int(x), k, s1, d1) for x in a.ravel()]).reshape(a.shape)


def patch_extent(a: np.ndarray, k: int, s: int, d: int) -> np.ndarray:
    """Bounding box of the patch: P = d(K − 1) + 1 + (a − 1)s."""
    return d * (k - 1) + 1 + (np.asarray(a) - 1) * s


def _ceil(x: np.ndarray | int, y: np.ndarray | int) -> np.ndarray:
    return -(-x // y)


class Candidate(NamedTuple):
    """One candidate window of one tiling: the closed-form counts a mapping is built from."""

    a_h: int
    a_w: int
    pixels: int
    windows: int
    row_tiles: int
    col_tiles: int
    group_sets: int
    groups_per_tile: int
    ic_t: int
    oc_t: int

    @property
    def tiles(self) -> int:
        return self.row_tiles * self.col_tiles * self.group_sets

    @property
    def cycles(self) -> int:
        return self.windows * self.tiles


@dataclass(frozen=True)
class Candidates:
    """Struct of arrays: one entry per candidate window (a_h, a_w) of one tiling."""

    a_h: np.ndarray
    a_w: np.ndarray
    pixels: np.ndarray  # T: rows one input channel occupies in the patch
    windows: np.ndarray  # N_PW = ⌈O_h/a_h⌉·⌈O_w/a_w⌉
    row_tiles: np.ndarray  # per group
    col_tiles: np.ndarray  # per group
    group_sets: np.ndarray  # arrays-worth of groups: g, or ⌈g/m⌉ when m groups share one
    groups_per_tile: np.ndarray  # m
    ic_t: np.ndarray  # input channels per row tile (channel tiling; element: all that fit)
    oc_t: np.ndarray  # filters per column tile
    valid: np.ndarray

    @property
    def tiles(self) -> np.ndarray:
        return self.row_tiles * self.col_tiles * self.group_sets

    @property
    def cycles(self) -> np.ndarray:
        return self.windows * self.tiles

    def pick(self, i: int) -> Candidate:
        """Candidate ``i`` as plain ints."""
        return Candidate(*(int(getattr(self, f)[i]) for f in Candidate._fields))


def candidates(
    layer: LayerShape, array: ArrayConfig, a_h: np.ndarray, a_w: np.ndarray, tiling: Tiling
) -> Candidates:
    """Tile counts of every window (a_h[i], a_w[i]) under one tiling scheme."""
    a_h = np.asarray(a_h, dtype=np.int64)
    a_w = np.asarray(a_w, dtype=np.int64)
    (kh, kw), (sh, sw), (dh, dw) = layer.kernel_size, layer.stride, layer.dilation
    oh, ow = layer.output_size
    rows_n, cols_n = array.rows, array.effective_cols
    cin, cout, g = layer.in_per_group, layer.out_per_group, layer.groups
    pixels = touched(a_h, kh, sh, dh) * touched(a_w, kw, sw, dw)
    outs = a_h * a_w
    windows = _ceil(oh, a_h) * _ceil(ow, a_w)
    if tiling == "element":
        row_tiles = _ceil(pixels * cin, rows_n)
        col_tiles = _ceil(outs * cout, cols_n)
        ic_t = np.minimum(rows_n // pixels, cin)
        oc_t = np.minimum(cols_n // outs, cout)
        valid = np.ones_like(a_h, dtype=bool)
    else:
        ic_t = np.minimum(rows_n // pixels, cin)
        oc_t = np.minimum(cols_n // outs, cout)
        valid = (ic_t > 0) & (oc_t > 0)
        row_tiles = _ceil(cin, np.maximum(ic_t, 1))
        col_tiles = _ceil(cout, np.maximum(oc_t, 1))
    if layer.sequential:  # a recurrence: each time step needs the previous one's output
        valid = valid & (outs == 1)
    fits = (pixels * cin <= rows_n) & (outs * cout <= cols_n)
    share = np.where(
        fits, np.minimum((rows_n // (pixels * cin)), cols_n // np.maximum(outs * cout, 1)), 1
    )
    share = np.minimum(np.maximum(share, 1), g)
    group_sets = np.where(fits, _ceil(g, share), g)
    return Candidates(
        a_h=a_h, a_w=a_w, pixels=pixels, windows=windows, row_tiles=row_tiles,
        col_tiles=col_tiles, group_sets=group_sets, groups_per_tile=share,
        ic_t=ic_t, oc_t=oc_t, valid=valid,
    )


def useful_sizes(out: int, limit: int) -> np.ndarray:
    """Window sizes a ≤ limit that are the smallest giving their window count ⌈out/a⌉.

    Rows (patch pixels) and columns (a_h·a_w copies) grow with a, so a larger window
    with the same count never needs fewer tiles: skipping it keeps the true minimum
    (and the tie-break towards smaller windows) while the search shrinks from O to
    about 2√O sizes per axis.
    """
    counts = _ceil(out, np.arange(1, limit + 1))
    return np.unique(_ceil(out, counts))


def window_grid(
    out: tuple[int, int], limit: tuple[int, int] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Every useful window a_h × a_w up to ``limit`` (default: the output size), flattened."""
    limit = out if limit is None else limit
    hh, ww = np.meshgrid(
        useful_sizes(out[0], limit[0]), useful_sizes(out[1], limit[1]), indexing="ij"
    )
    return hh.ravel(), ww.ravel()


def argmin_cycles(c: Candidates, cycles: np.ndarray | None = None) -> int:
    """Index of the cheapest valid candidate; ties → fewer tiles, then smaller window."""
    cycles = c.cycles if cycles is None else cycles
    big = np.iinfo(np.int64).max
    keyed = np.where(c.valid, cycles, big)
    order = np.lexsort((c.a_w, c.a_h, c.a_h * c.a_w, c.tiles, keyed))
    return int(order[0])
