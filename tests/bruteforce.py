"""Brute-force placement and execution of a windowed mapping on tiny layers.

Independent of the closed forms in ``imcsim.mappers.geometry``: patches are found by
enumerating every tap of every output in a window, weights are placed on explicit
(row, column) slots, and every tile activation of every window is executed as a set
of multiply-accumulates.  ``count`` checks that each MAC of the convolution happens
exactly once and returns the number of tile activations (computing cycles).
"""

from __future__ import annotations

import itertools
import math

from imcsim.hardware import ArrayConfig
from imcsim.layers import LayerShape


def patch(layer: LayerShape, a_h: int, a_w: int) -> list[tuple[int, int]]:
    (kh, kw), (sh, sw), (dh, dw) = layer.kernel_size, layer.stride, layer.dilation
    pixels = {
        (oy * sh + ty * dh, ox * sw + tx * dw)
        for oy in range(a_h) for ox in range(a_w) for ty in range(kh) for tx in range(kw)
    }
    return sorted(pixels)


def chunks(items: list, size: int) -> list[list]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def tiles_of(layer: LayerShape, array: ArrayConfig, a_h: int, a_w: int, tiling: str):
    """Explicit tiles: list of (rows, cols); rows (c, py, px), cols (oy, ox, f)."""
    pix = patch(layer, a_h, a_w)
    cin, cout, g = layer.in_per_group, layer.out_per_group, layer.groups
    R, C = array.rows, array.effective_cols
    copies = [(oy, ox) for oy in range(a_h) for ox in range(a_w)]

    def rows(gr: int) -> list:
        return [(gr * cin + c, py, px) for c in range(cin) for (py, px) in pix]

    def cols(gr: int) -> list:
        return [(oy, ox, gr * cout + f) for (oy, ox) in copies for f in range(cout)]

    if len(rows(0)) <= R and len(cols(0)) <= C:  # whole groups share arrays block-diagonally
        m = min(R // len(rows(0)), C // len(cols(0)), g)
        sets = chunks(list(range(g)), m)
        return [([r for gr in s for r in rows(gr)], [c for gr in s for c in cols(gr)]) for s in sets]
    out = []
    for gr in range(g):
        if tiling == "element":
            row_chunks, col_chunks = chunks(rows(gr), R), chunks(cols(gr), C)
        else:
            ic, oc = R // len(pix), C // len(copies)
            if ic == 0 or oc == 0:
                return None
            row_chunks = chunks(rows(gr), ic * len(pix))
            col_chunks = [
                [c for c in cols(gr) if (c[2] - gr * cout) // oc == b]
                for b in range(math.ceil(cout / oc))
            ]
        out += [(r, c) for r in row_chunks for c in col_chunks]
    return out


def count(layer: LayerShape, array: ArrayConfig, a_h: int, a_w: int, tiling: str) -> int | None:
    """Computing cycles of window a_h×a_w, after checking every MAC runs exactly once."""
    tiles = tiles_of(layer, array, a_h, a_w, tiling)
    if tiles is None:
        return None
    (kh, kw), (sh, sw), (dh, dw) = layer.kernel_size, layer.stride, layer.dilation
    oh, ow = layer.output_size
    cin = layer.in_per_group
    done: dict[tuple, int] = {}
    cycles = 0
    for wy, wx in itertools.product(range(math.ceil(oh / a_h)), range(math.ceil(ow / a_w))):
        for rows, cols in tiles:
            assert len(rows) <= array.rows and len(cols) <= array.effective_cols
            cycles += 1
            for oy, ox, f in cols:
                y, x = wy * a_h + oy, wx * a_w + ox
                if y >= oh or x >= ow:
                    continue
                for c, py, px in rows:
                    if c // cin != f // layer.out_per_group:
                        continue
                    ty, tx = py - oy * sh, px - ox * sw
                    if ty % dh or tx % dw or not (0 <= ty // dh < kh and 0 <= tx // dw < kw):
                        continue
                    key = (y, x, f, c, ty // dh, tx // dw)
                    done[key] = done.get(key, 0) + 1
    assert len(done) == layer.macs, (len(done), layer.macs)
    assert set(done.values()) == {1}
    return cycles
