"""Compiled window searches of the dense mappers (private; numba).

The same closed forms as ``geometry.candidates`` (which stays the readable, vectorised
reference and is the plain-Python twin these kernels are tested against), evaluated one
candidate window at a time in compiled loops: a ``map`` call costs a few microseconds,
and ``search_batch`` maps many (layer, array) pairs in one call.

A layer and an array are packed into ``geom`` (int64[13]):
``kh, kw, sh, sw, dh, dw, oh, ow, cin_g, cout_g, groups, rows, cols_eff``.
A result record (int64[13], ``FIELDS``) describes the chosen window.  Searches
(``KINDS``): ``im2col`` (the 1×1 window), ``sdk`` (square windows within im2col's tile
budget), ``sdk-unconstrained`` (square windows), ``sdk-rect`` (rectangular, element
tiling), ``vw-sdk`` and ``vw-sdk-ref`` (rectangular, channel tiling, against im2col; the
reference code's bound a ≤ O − 1), ``best`` (the cheapest of the five dense mappers,
``winner`` naming it).  Ties go to fewer tiles, then the smaller window, as
``geometry.argmin_cycles``.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["FIELDS", "KINDS", "search_batch", "search_one"]

KINDS = ("im2col", "sdk", "sdk-unconstrained", "vw-sdk", "sdk-rect", "vw-sdk-ref", "best")
FIELDS = ("a_h", "a_w", "pixels", "windows", "row_tiles", "col_tiles", "group_sets",
          "groups_per_tile", "ic_t", "oc_t", "channel", "cycles", "winner")
_BIG = np.iinfo(np.int64).max


@numba.njit(cache=True)
def _ceil(x, y):
    return -(-x // y)


@numba.njit(cache=True)
def _gcd(a, b):
    while b:
        a, b = b, a % b
    return a


@numba.njit(cache=True)
def _touched(a, k, s, d):
    """Distinct offsets i·s + j·d (i < a, j < k): ``geometry.touched`` for one window."""
    g = _gcd(s, d)
    s1, d1 = s // g, d // g
    if d1 == 1:
        return (a - 1) * s1 + k if s1 <= k else a * k
    if s1 == 1:
        return (k - 1) * d1 + a if d1 <= a else a * k
    seen = np.zeros((a - 1) * s1 + (k - 1) * d1 + 1, dtype=np.bool_)
    for i in range(a):
        for j in range(k):
            seen[i * s1 + j * d1] = True
    return int(seen.sum())


@numba.njit(cache=True)
def _evaluate(geom, a_h, a_w, channel, out):
    """Fill ``out`` with the record of window (a_h, a_w); return its validity."""
    kh, kw, sh, sw, dh, dw, oh, ow = geom[0], geom[1], geom[2], geom[3], geom[4], geom[5], geom[6], geom[7]
    cin, cout, g, rows, cols = geom[8], geom[9], geom[10], geom[11], geom[12]
    pixels = _touched(a_h, kh, sh, dh) * _touched(a_w, kw, sw, dw)
    outs = a_h * a_w
    ic_t = min(rows // pixels, cin)
    oc_t = min(cols // outs, cout)
    if channel:
        valid = ic_t > 0 and oc_t > 0
        row_tiles = _ceil(cin, max(ic_t, 1))
        col_tiles = _ceil(cout, max(oc_t, 1))
    else:
        valid = True
        row_tiles = _ceil(pixels * cin, rows)
        col_tiles = _ceil(outs * cout, cols)
    share = 1
    group_sets = g
    if pixels * cin <= rows and outs * cout <= cols:
        share = min(max(min(rows // (pixels * cin), cols // max(outs * cout, 1)), 1), g)
        group_sets = _ceil(g, share)
    windows = _ceil(oh, a_h) * _ceil(ow, a_w)
    out[0], out[1], out[2], out[3] = a_h, a_w, pixels, windows
    out[4], out[5], out[6], out[7] = row_tiles, col_tiles, group_sets, share
    out[8], out[9], out[10] = ic_t, oc_t, 1 if channel else 0
    out[11] = windows * row_tiles * col_tiles * group_sets
    return valid


@numba.njit(cache=True)
def _better(rec, best):
    """Is ``rec`` cheaper than ``best`` (cycles, then tiles, area, a_h, a_w)?"""
    if rec[11] != best[11]:
        return rec[11] < best[11]
    tiles, best_tiles = rec[4] * rec[5] * rec[6], best[4] * best[5] * best[6]
    if tiles != best_tiles:
        return tiles < best_tiles
    if rec[0] * rec[1] != best[0] * best[1]:
        return rec[0] * rec[1] < best[0] * best[1]
    if rec[0] != best[0]:
        return rec[0] < best[0]
    return rec[1] < best[1]


@numba.njit(cache=True)
def _useful(out, limit, buf):
    """The smallest window size of every window count ⌈out/a⌉, a ≤ limit (``useful_sizes``)."""
    n, prev = 0, -1
    for a in range(1, limit + 1):
        count = _ceil(out, a)
        if count != prev:
            buf[n] = a
            n += 1
            prev = count
    return n


@numba.njit(cache=True)
def _cost(geom, a_h, a_w, channel):
    """(valid, cycles, tiles) of window (a_h, a_w): the part of ``_evaluate`` a search
    compares, without filling a record."""
    kh, kw, sh, sw, dh, dw, oh, ow = geom[0], geom[1], geom[2], geom[3], geom[4], geom[5], geom[6], geom[7]
    cin, cout, g, rows, cols = geom[8], geom[9], geom[10], geom[11], geom[12]
    pixels = _touched(a_h, kh, sh, dh) * _touched(a_w, kw, sw, dw)
    outs = a_h * a_w
    if channel:
        ic_t, oc_t = min(rows // pixels, cin), min(cols // outs, cout)
        if ic_t == 0 or oc_t == 0:
            return False, 0, 0
        tiles = _ceil(cin, ic_t) * _ceil(cout, oc_t)
    else:
        tiles = _ceil(pixels * cin, rows) * _ceil(outs * cout, cols)
    if pixels * cin <= rows and outs * cout <= cols:
        share = min(max(min(rows // (pixels * cin), cols // max(outs * cout, 1)), 1), g)
        tiles *= _ceil(g, share)
    else:
        tiles *= g
    return True, _ceil(oh, a_h) * _ceil(ow, a_w) * tiles, tiles


@numba.njit(cache=True)
def _consider(geom, a_h, a_w, channel, budget, rec, best):
    """Keep window (a_h, a_w) in ``best`` if it is valid, within budget and cheaper;
    return its validity (a channel-tiled window that does not fit ends a row of the grid)."""
    valid, cycles, tiles = _cost(geom, a_h, a_w, channel)
    if not valid:
        return False
    if best[11] >= 0 and (cycles > best[11] or (cycles == best[11] and tiles > best[4] * best[5] * best[6])):
        return True
    _evaluate(geom, a_h, a_w, channel, rec)
    if budget[0] >= 0 and (rec[4] > budget[0] or rec[5] > budget[1] or rec[6] > budget[2]):
        return True
    if best[11] < 0 or _better(rec, best):
        best[:] = rec
    return True


@numba.njit(cache=True)
def _square(geom, budget, best):
    rec = np.empty(13, np.int64)
    oh, ow = geom[6], geom[7]
    for n in range(1, max(oh, ow) + 1):
        _consider(geom, min(n, oh), min(n, ow), False, budget, rec, best)


@numba.njit(cache=True)
def _rect(geom, limit_h, limit_w, channel, best):
    """Every useful window of the grid; with channel tiling a window that does not fit
    ends its row (pixels and copies only grow with a_w) and, if it is the row's first,
    the search (they also grow with a_h)."""
    rec = np.empty(13, np.int64)
    none = np.full(3, -1, np.int64)
    hs, ws = np.empty(limit_h, np.int64), np.empty(limit_w, np.int64)
    nh, nw = _useful(geom[6], limit_h, hs), _useful(geom[7], limit_w, ws)
    for i in range(nh):
        for j in range(nw):
            if not _consider(geom, hs[i], ws[j], channel, none, rec, best):
                if j == 0:
                    return
                break


@numba.njit(cache=True)
def _search(geom, kind, best):
    """Fill ``best`` with the record ``kind`` (an index of ``KINDS``) chooses."""
    best[11] = -1
    base = np.empty(13, np.int64)
    _evaluate(geom, 1, 1, False, base)
    if kind == 0:
        best[:] = base
    elif kind == 1:
        _square(geom, base[4:7], best)
    elif kind == 2:
        _square(geom, np.full(3, -1, np.int64), best)
    elif kind == 4:
        _rect(geom, geom[6], geom[7], False, best)
    elif kind == 3 or kind == 5:
        limit_h = geom[6] if kind == 3 else max(1, geom[6] - 1)
        limit_w = geom[7] if kind == 3 else max(1, geom[7] - 1)
        _rect(geom, limit_h, limit_w, True, best)
        if best[11] < 0 or base[11] < best[11]:
            best[:] = base
    best[12] = kind


@numba.njit(cache=True)
def search_one(geom, kind):
    """The record of one (layer, array) under search ``kind`` (6 = best of 0…4)."""
    best = np.empty(13, np.int64)
    if kind != 6:
        _search(geom, kind, best)
        return best
    rec = np.empty(13, np.int64)
    best[11] = -1
    for k in range(5):
        _search(geom, k, rec)
        if best[11] < 0 or rec[11] < best[11]:
            best[:] = rec
    return best


@numba.njit(cache=True)
def search_batch(geoms, kind):
    """Records of many (layer, array) pairs: (N, 13) geoms → (N, 13) records."""
    out = np.empty((geoms.shape[0], 13), np.int64)
    for i in range(geoms.shape[0]):
        out[i] = search_one(geoms[i], kind)
    return out
