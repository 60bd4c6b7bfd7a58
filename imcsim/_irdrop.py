"""IR drop of a crossbar tile: its effective conductance matrix under wire resistance (private).

Circuit (the usual resistive-crossbar model: Chen et al., "NeuroSim", IEEE TCAD 2018;
Xiao et al., CrossSim parasitics, 2022).  A tile has R word lines (rows) and C bit lines
(columns); cell (i, j) is a linear conductance ``g[i, j]`` between word-line node (i, j)
and bit-line node (i, j).  Word line i is driven by an ideal voltage source V_i at
column 0's side through one wire segment ``r_wl``, then ``r_wl`` between neighbouring
cells; its far end is open.  Bit line j runs from row 0 (open end) down to a sense
amplifier at virtual ground after row R − 1, with ``r_bl`` per segment (the last one into
the amplifier).  Cell (i, j) therefore reaches its driver through j + 1 word-line
segments and the amplifier through R − i bit-line segments.

The network is linear, so the column currents are ``I = G_effᵀ V`` for *every* input V
(superposition): ``G_eff[k, j]`` is the current into amplifier j per volt on row k with
every other driver at 0 V (undriven rows are held at 0 V and sink sneak currents).  One
solve per tile therefore gives the exact IR-drop response to all inputs it will ever see.

* :func:`effective_conductance` — exact, numba.  Eliminates each word line (a tridiagonal
  system) into a dense C×C block on its bit-line nodes, then runs block Gaussian
  elimination down the bit lines; only the bottom block (the amplifier side) is needed,
  so there is no back substitution: O(R·C³ + R²·C²) per tile.
* :func:`effective_conductance_py` — its plain-Python twin: the full nodal (2·R·C
  unknowns) linear system assembled and solved densely; for small tiles and tests.
* :func:`effective_conductance_linear` — the first-order expansion in the wire
  resistance (O(R·C)); its error is second order in ``r·g·N²`` (see the README).
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["effective_conductance", "effective_conductance_linear", "effective_conductance_py"]


@numba.njit(cache=True)
def _word_line_inverse(g_row, gw):
    """Inverse of the word line's tridiagonal nodal matrix (driver side at column 0)."""
    c = g_row.shape[0]
    diag = np.empty(c)
    for j in range(c):
        diag[j] = g_row[j] + gw * (2.0 if j < c - 1 else 1.0)
    # LU of the tridiagonal (no pivoting: the matrix is diagonally dominant)
    piv = np.empty(c)
    piv[0] = diag[0]
    for j in range(1, c):
        piv[j] = diag[j] - gw * gw / piv[j - 1]
    inv = np.zeros((c, c))
    y = np.empty(c)
    for col in range(c):
        y[:col] = 0.0
        y[col] = 1.0
        for j in range(col + 1, c):
            y[j] = gw * y[j - 1] / piv[j - 1]
        inv[c - 1, col] = y[c - 1] / piv[c - 1]
        for j in range(c - 2, -1, -1):
            inv[j, col] = (y[j] + gw * inv[j + 1, col]) / piv[j]
    return inv


@numba.njit(cache=True)
def _spd_inverse(a):
    """Inverse of a symmetric positive definite matrix by in-place Gauss-Jordan elimination
    (no pivoting needed; plain row-major loops: no BLAS/LAPACK, so no thread
    oversubscription on a shared machine and no scipy needed)."""
    n = a.shape[0]
    m = a.copy()
    for k in range(n):
        p = 1.0 / m[k, k]
        row = m[k].copy()
        row[k] = 0.0
        for i in range(n):
            f = m[i, k]
            if i == k or f == 0.0:
                continue
            mi = m[i]
            for j in range(n):
                mi[j] -= f * p * row[j]
            mi[k] = -f * p
        for j in range(n):
            m[k, j] = row[j] * p
        m[k, k] = p
    return m


@numba.njit(cache=True)
def _tile(g, r_wl, r_bl):
    rows, cols = g.shape
    gw, gb = 1.0 / r_wl, 1.0 / r_bl
    schur = np.empty((cols, cols))
    # rhs[k]: bit-line currents injected by row k's unit input, carried down the rows
    rhs = np.zeros((rows, cols))
    for i in range(rows):
        inv = _word_line_inverse(g[i], gw)
        # block of row i: diag(n_i·gb + g_i) − diag(g_i)·A_i⁻¹·diag(g_i)
        block = np.empty((cols, cols))
        for a in range(cols):
            for b in range(cols):
                block[a, b] = -g[i, a] * inv[a, b] * g[i, b]
        neighbours = 2.0 if i > 0 else 1.0  # the node above (if any), the one below / amplifier
        for a in range(cols):
            block[a, a] += neighbours * gb + g[i, a]
        if i > 0:
            prev = _spd_inverse(schur)  # the Schur complement of an SPD matrix is SPD
            block -= (gb * gb) * prev
            carried = np.zeros((i, cols))
            for k in range(i):
                for a in range(cols):
                    s = rhs[k, a] * gb
                    if s != 0.0:
                        for b in range(cols):
                            carried[k, b] += s * prev[a, b]
            rhs[:i] = carried
        for a in range(cols):
            rhs[i, a] = gw * g[i, a] * inv[a, 0]
        schur = block
    last = _spd_inverse(schur)
    out = np.zeros((rows, cols))
    for k in range(rows):
        for a in range(cols):
            s = rhs[k, a] * gb
            for b in range(cols):
                out[k, b] += s * last[a, b]
    return out


@numba.njit(cache=True)
def effective_conductance(g, r_wl, r_bl):
    """(T, R, C) cell conductances [S] → (T, R, C) effective conductances ``G_eff`` (numba).

    ``r_wl``/``r_bl`` [Ω] per cell segment, both > 0.
    """
    out = np.empty_like(g)
    for t in range(g.shape[0]):
        out[t] = _tile(np.ascontiguousarray(g[t]), r_wl, r_bl)
    return out


def _stamp(y: np.ndarray, a: int, b: int | None, conductance: float) -> None:
    """Add a conductance between nodes ``a`` and ``b`` (``None``: ground) to ``y``."""
    y[a, a] += conductance
    if b is not None:
        y[b, b] += conductance
        y[a, b] -= conductance
        y[b, a] -= conductance


def effective_conductance_py(g: np.ndarray, r_wl: float, r_bl: float) -> np.ndarray:
    """Plain-Python twin of :func:`effective_conductance`: the dense nodal system of every
    tile, one right-hand side per driven row.  Unknowns: word-line nodes then bit-line
    nodes, node (i, j) at index i·C + j."""
    out = np.empty_like(g, dtype=float)
    for t, tile in enumerate(np.asarray(g, dtype=float)):
        rows, cols = tile.shape
        n = rows * cols
        y = np.zeros((2 * n, 2 * n))
        rhs = np.zeros((2 * n, rows))
        for i in range(rows):
            for j in range(cols):
                u, w = i * cols + j, n + i * cols + j
                _stamp(y, u, w, tile[i, j])
                if j + 1 < cols:
                    _stamp(y, u, u + 1, 1 / r_wl)
                _stamp(y, w, w + cols if i + 1 < rows else None, 1 / r_bl)  # None: amplifier
            _stamp(y, i * cols, None, 1 / r_wl)  # driver segment; V_i enters the right side
            rhs[i * cols, i] = 1 / r_wl
        volts = np.linalg.solve(y, rhs)
        out[t] = (volts[n + (rows - 1) * cols : n + rows * cols] / r_bl).T
    return out


def effective_conductance_linear(g: np.ndarray, r_wl: float, r_bl: float) -> np.ndarray:
    """First-order expansion of ``G_eff`` in the wire resistances (fast approximation).

    With only row k driven at 1 V, the zeroth-order cell currents are ``g[k, j]``; word
    line k then drops ``r_wl·Σ_{m≤j} Σ_{j'≥m} g[k, j']`` at column j, and bit line j rises
    to ``r_bl·g[k, j]·(R − max(i, k))`` at row i, where every cell (i, j) returns
    ``g[i, j]`` times that voltage to its grounded driver.  Hence
    ``G_eff[k, j] ≈ g[k, j]·(1 − r_wl·W[k, j] − r_bl·Σ_i g[i, j]·(R − max(i, k)))``.
    """
    g = np.asarray(g, dtype=float)
    rows = g.shape[-2]
    suffix = np.flip(np.cumsum(np.flip(g, -1), -1), -1)         # Σ_{j'≥m} g[k, j']
    word = np.cumsum(suffix, -1)                                  # Σ_{m≤j} suffix
    distance = rows - np.arange(rows, dtype=float)                # R − i
    # Σ_i g[i, j]·(R − max(i, k)) = (R − k)·Σ_{i<k} g[i, j] + Σ_{i≥k} g[i, j]·(R − i)
    below = np.cumsum(g, -2) - g                                  # Σ_{i<k}
    weighted = np.flip(np.cumsum(np.flip(g * distance[:, None], -2), -2), -2)
    bit = distance[:, None] * below + weighted
    return g * (1.0 - r_wl * word - r_bl * bit)
