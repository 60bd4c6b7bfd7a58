"""Pattern pruning: every kernel keeps one of a small set of K×K patterns (PatDNN-style).

Niu et al., "PatDNN", ASPLOS 2020, prune each kernel to one pattern of a small set
plus whole kernels ("connectivity pruning", here the empty pattern).  On a crossbar
a zero only saves cycles when a whole row is zero (PAIRS, ISLPED 2023; GAROS, JSA
2025), so by default one pattern is *shared by all filters of an input channel*
(``shared="channel"``): under an SDK window the pixel rows that the pattern never
touches are then skippable.  ``shared="kernel"`` picks a pattern per kernel (PatDNN).

``edge_patterns`` zeroes every subset of the four kernel edges (for 3×3: full, one
edge, two adjacent or opposite edges, three edges, centre only) — the patterns of the
row-skip table in REFERENCES.md.  As in PatDNN, the default set holds patterns of one
size: ``default_patterns`` keeps the edge patterns with the fewest taps that still
hold the kept fraction of a kernel (3×3 at keep 0.5: the four one-edge patterns, 6
taps), and the empty pattern prunes whole units to meet the budget.  Patterns are
assigned with the least pruned energy Σw² by a Lagrangian relaxation: for a price λ
per kept weight each unit takes argmax_p (E_p − λ·|p|); λ is bisected so that the
kept weights just fit ``(1 − sparsity)`` of the layer.  (With patterns of many sizes
and untrained, i.i.d. weights every tap carries about the same energy and the
assignment degenerates to all-or-nothing, i.e. channel pruning; one size avoids it.)
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import product
from typing import Literal

import numpy as np

from imcsim.errors import ConfigError

__all__ = ["Shared", "check_patterns", "default_patterns", "edge_patterns", "pattern_mask"]

Shared = Literal["channel", "kernel"]


def edge_patterns(kh: int, kw: int) -> np.ndarray:
    """(n, kh, kw) distinct masks zeroing each subset of the top/bottom/left/right edges."""
    found = []
    for top, bottom, left, right in product((0, 1), repeat=4):
        mask = np.ones((kh, kw), dtype=bool)
        mask[: top, :] = False
        mask[kh - bottom :, :] = False
        mask[:, : left] = False
        mask[:, kw - right :] = False
        found.append(mask)
    return _unique(found)


def default_patterns(kh: int, kw: int, keep: float) -> np.ndarray:
    """Edge patterns of the smallest size holding ``keep`` of the kernel, plus empty."""
    edges = edge_patterns(kh, kw)
    sizes = edges.reshape(len(edges), -1).sum(axis=1)
    size = sizes[sizes >= keep * kh * kw - 1e-9].min()
    return _unique(list(edges[sizes == size]))


def _unique(masks: Sequence[np.ndarray]) -> np.ndarray:
    """Distinct masks plus the empty one, largest first (ties in first-seen order)."""
    out: list[np.ndarray] = []
    for mask in [*masks, np.zeros_like(masks[0], dtype=bool)]:
        if not any(np.array_equal(mask, m) for m in out):
            out.append(mask)
    order = sorted(range(len(out)), key=lambda i: -int(out[i].sum()))
    return np.stack([out[i] for i in order])


def check_patterns(patterns: Sequence[np.ndarray] | np.ndarray, kernel: tuple[int, int], name: str) -> np.ndarray:
    """Validated (n, kh, kw) boolean pattern set with the empty pattern added."""
    arrays = [np.asarray(p) for p in patterns]
    if not arrays:
        raise ConfigError(f"layer {name!r}: empty pattern set")
    for i, p in enumerate(arrays):
        if p.shape != tuple(kernel):
            raise ConfigError(
                f"layer {name!r}: pattern {i} has shape {p.shape}, kernel is {kernel[0]}x{kernel[1]}"
            )
    return _unique([p.astype(bool) for p in arrays])


def _choose(energy: np.ndarray, cost: np.ndarray, budget: float) -> np.ndarray:
    """Pattern index per unit maximising kept energy with Σ cost ≤ budget (Lagrangian)."""

    def pick(price: float) -> np.ndarray:
        return np.argmax(energy - price * cost[None, :], axis=1)

    def spent(choice: np.ndarray) -> float:
        return float(cost[choice].sum())

    if spent(pick(0.0)) <= budget:
        return pick(0.0)
    low, high = 0.0, float(energy.max()) / float(cost[cost > 0].min()) + 1.0
    for _ in range(60):
        mid = 0.5 * (low + high)
        low, high = (low, mid) if spent(pick(mid)) <= budget else (mid, high)
    choice = pick(high)
    if spent(choice) == 0:  # keep at least the strongest unit's smallest pattern
        nonempty = np.flatnonzero(cost > 0)
        unit = int(np.argmax(energy.max(axis=1)))
        choice[unit] = nonempty[np.argmin(cost[nonempty])]
    return choice


def pattern_mask(
    weight: np.ndarray, sparsity: float, patterns: np.ndarray, shared: Shared = "channel"
) -> np.ndarray:
    """Boolean mask of ``weight`` (C_out, C_in, kh, kw): one pattern per unit, budget met."""
    if shared not in ("channel", "kernel"):
        raise ConfigError(f"shared={shared!r}; expected 'channel' or 'kernel'")
    c_out, c_in = weight.shape[:2]
    power = np.asarray(weight, dtype=np.float64) ** 2
    flat = patterns.reshape(len(patterns), -1).astype(np.float64)
    sizes = flat.sum(axis=1)
    budget = weight.size - round(sparsity * weight.size)
    if shared == "channel":
        energy = power.sum(axis=0).reshape(c_in, -1) @ flat.T
        choice = _choose(energy, sizes * c_out, budget)
        return np.broadcast_to(patterns[choice][None], weight.shape).copy()
    energy = power.reshape(c_out * c_in, -1) @ flat.T
    choice = _choose(energy, sizes, budget)
    return patterns[choice].reshape(weight.shape)
