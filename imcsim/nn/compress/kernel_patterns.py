"""N-tap kernel patterns: every K×K kernel keeps exactly n taps, chosen from a pattern library.

The pruning baselines of the low-rank paper's group (PAIRS, ISLPED 2023; KERNTROL;
GAROS, JSA 2025): a small library of n-tap patterns, and every kernel (or every input
channel, or the whole layer) takes the library pattern that keeps the most weight
energy Σw² (PatDNN's rule: the pattern with the largest L2 norm of the kept weights).

Libraries (``pattern_library``):

* ``patdnn`` — Niu et al., "PatDNN", ASPLOS 2020: each kernel's top-n magnitude taps, the
  centre always kept; the ``size`` most frequent of these patterns over the network
  (PatDNN uses 8 patterns of 4 taps) form the library.
* ``pconv`` — Ma et al., "PConv", AAAI 2020 (4-tap patterns: the centre and three of its
  four edge neighbours, as in the KERNTROL code).  Generalised here (not in the paper) to
  any n on a 3×3 kernel: the centre plus n − 1 of its 4 edge neighbours for n ≤ 5, the
  full cross plus n − 5 of the 4 corners above.
* ``random`` — ``size`` distinct random n-tap patterns from a seeded generator (the
  RANDOM baseline of the GAROS code).

``share`` is the pattern dimension of PAIRS: ``kernel`` (each (filter, channel) kernel
chooses), ``channel`` (all filters of an input channel share one choice) or ``layer``
(one pattern for the whole layer, the default of the GAROS and KERNTROL scripts).
Under an SDK window only rows that every filter leaves empty can be skipped, so per-kernel
patterns skip almost no rows while a layer-wide pattern skips whole pixel rows.

Layers whose kernel has at most n taps (1×1 convs) and Linear layers stay dense.
"""

from __future__ import annotations

import copy
import math
from collections import Counter
from collections.abc import Sequence
from itertools import combinations

import numpy as np
import torch
from torch import nn
from torch.nn.utils import prune as torch_prune

from imcsim.compression import PATTERN_LIBRARIES, PATTERN_SHARES
from imcsim.errors import ConfigError
from imcsim.nn.compress.pruning import LayerPruning, Pruning

__all__ = ["assign_patterns", "kernel_pattern_prune", "pattern_library", "taps_for"]

Kernel = tuple[int, int]
DEFAULT_SIZE = 8
"""Library size: PatDNN's 8 patterns."""


def _centre(kernel: Kernel) -> int | None:
    """Flat index of the centre tap of an odd×odd kernel, else None."""
    kh, kw = kernel
    return (kh // 2) * kw + kw // 2 if kh % 2 and kw % 2 else None


def _masks(index_sets: Sequence[Sequence[int]], kernel: Kernel) -> np.ndarray:
    out = np.zeros((len(index_sets), kernel[0] * kernel[1]), dtype=bool)
    for row, taps in enumerate(index_sets):
        out[row, list(taps)] = True
    return out.reshape(len(index_sets), *kernel)


def _top_taps(kernels: np.ndarray, taps: int, centre: int | None) -> np.ndarray:
    """(N, K²) boolean: each kernel's ``taps`` largest |w|, the centre forced in (PatDNN)."""
    score = np.abs(kernels).astype(np.float64)
    if centre is not None:
        score[:, centre] = np.inf
    order = np.argsort(-score, axis=1, kind="stable")[:, :taps]
    chosen = np.zeros(kernels.shape, dtype=bool)
    np.put_along_axis(chosen, order, True, axis=1)
    return chosen


def patdnn_library(weights: Sequence[np.ndarray], taps: int, size: int) -> np.ndarray:
    """The ``size`` most frequent top-``taps`` patterns of all kernels in ``weights``
    (ties: the smaller pattern code first)."""
    kernel = tuple(weights[0].shape[2:])
    n = kernel[0] * kernel[1]
    if n > 62:
        raise ConfigError(f"pattern library 'patdnn': {kernel[0]}x{kernel[1]} kernels are too large")
    bits = np.left_shift(np.int64(1), np.arange(n, dtype=np.int64))
    counts: Counter[int] = Counter()
    for w in weights:
        counts.update((_top_taps(w.reshape(-1, n), taps, _centre(kernel)) @ bits).tolist())
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:size]
    codes = np.array([code for code, _ in ranked], dtype=np.int64)
    return ((codes[:, None] & bits[None, :]) != 0).reshape(len(codes), *kernel)


def pconv_library(taps: int, kernel: Kernel) -> np.ndarray:
    """Centre-and-arms patterns of a 3×3 kernel (see the module docstring)."""
    if kernel != (3, 3):
        raise ConfigError(f"pattern library 'pconv' is defined for 3x3 kernels (got {kernel[0]}x{kernel[1]})")
    centre, arms, corners = 4, (1, 3, 5, 7), (0, 2, 6, 8)
    if taps <= 5:
        sets = [(centre, *c) for c in combinations(arms, taps - 1)]
    else:
        sets = [(centre, *arms, *c) for c in combinations(corners, taps - 5)]
    return _masks(sets, kernel)


def random_library(taps: int, kernel: Kernel, size: int, seed: int) -> np.ndarray:
    """``size`` distinct random ``taps``-subsets of the kernel (all of them if fewer exist)."""
    n = kernel[0] * kernel[1]
    if math.comb(n, taps) <= size:
        return _masks(list(combinations(range(n), taps)), kernel)
    rng = np.random.default_rng(seed)
    found: list[tuple[int, ...]] = []
    while len(found) < size:
        pick = tuple(sorted(rng.choice(n, size=taps, replace=False).tolist()))
        if pick not in found:
            found.append(pick)
    return _masks(found, kernel)


def pattern_library(
    name: str, taps: int, kernel: Kernel, *, weights: Sequence[np.ndarray] = (),
    size: int = DEFAULT_SIZE, seed: int = 0,
) -> np.ndarray:
    """(L, K_h, K_w) boolean patterns, each with exactly ``taps`` taps."""
    n = kernel[0] * kernel[1]
    if isinstance(taps, bool) or not isinstance(taps, int) or not 1 <= taps <= n:
        raise ConfigError(f"taps must be an integer in 1..{n} for {kernel[0]}x{kernel[1]} kernels (got {taps!r})")
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ConfigError(f"pattern library size must be a positive integer (got {size!r})")
    if name == "patdnn":
        if not weights:
            raise ConfigError("pattern library 'patdnn' is built from weights; none given")
        return patdnn_library(weights, taps, size)
    if name == "pconv":
        return pconv_library(taps, kernel)
    if name == "random":
        return random_library(taps, kernel, size, seed)
    raise ConfigError(f"unknown pattern library {name!r} (known: {', '.join(PATTERN_LIBRARIES)})")


def assign_patterns(weight: np.ndarray, library: np.ndarray, share: str = "kernel") -> np.ndarray:
    """Boolean mask of ``weight`` (C_out, C_in/g, K_h, K_w): each unit (kernel, input
    channel or layer, by ``share``) takes the library pattern keeping the most Σw²."""
    if share not in PATTERN_SHARES:
        raise ConfigError(f"pattern share {share!r} unknown (known: {', '.join(PATTERN_SHARES)})")
    c_out, c_in = weight.shape[:2]
    power = np.asarray(weight, dtype=np.float64) ** 2
    flat = library.reshape(len(library), -1).astype(np.float64)
    if share == "kernel":
        choice = np.argmax(power.reshape(c_out * c_in, -1) @ flat.T, axis=1)
        return library[choice].reshape(weight.shape)
    if share == "channel":
        choice = np.argmax(power.sum(axis=0).reshape(c_in, -1) @ flat.T, axis=1)
        return np.broadcast_to(library[choice][None], weight.shape).copy()
    choice = int(np.argmax(flat @ power.sum(axis=(0, 1)).ravel()))
    return np.broadcast_to(library[choice], weight.shape).copy()


def taps_for(kernel: Kernel, taps: int | None, keep: float | None) -> int:
    """Taps a K×K kernel keeps: ``taps`` (capped at K²), or ⌊keep·K²⌋ (at least 1)."""
    n = kernel[0] * kernel[1]
    if (taps is None) == (keep is None):
        raise ConfigError("kernel patterns: give exactly one of taps and keep")
    if taps is not None:
        if isinstance(taps, bool) or not isinstance(taps, int) or taps < 1:
            raise ConfigError(f"taps must be a positive integer (got {taps!r})")
        return min(taps, n)
    return max(1, math.floor(keep * n + 1e-9))  # type: ignore[operator]


def _targets(model: nn.Module, exclude: Sequence[str]) -> list[tuple[str, nn.Conv2d]]:
    unknown = set(exclude) - {n for n, _ in model.named_modules()}
    if unknown:
        raise ConfigError(f"exclude: no module named {sorted(unknown)[0]!r} in the model")
    return [(n, m) for n, m in model.named_modules()
            if isinstance(m, nn.Conv2d) and n not in exclude]


def kernel_pattern_prune(
    model: nn.Module, taps: int | None = None, *, keep: float | None = None,
    library: str = "patdnn", share: str = "kernel", size: int = DEFAULT_SIZE, seed: int = 0,
    exclude: Sequence[str] = (),
) -> Pruning:
    """A copy of ``model`` whose conv kernels keep n taps each (torch prune masks).

    Give ``taps`` (the same n for every kernel size, capped at K²) or ``keep`` (n =
    ⌊keep·K²⌋ per kernel size).  Kernels with K² ≤ n stay dense.  Returns a
    ``Pruning`` whose records list the pattern-pruned layers.
    """
    model = copy.deepcopy(model)
    by_kernel: dict[Kernel, list[tuple[str, nn.Conv2d]]] = {}
    for name, module in _targets(model, exclude):
        kernel = tuple(module.kernel_size)
        if taps_for(kernel, taps, keep) < kernel[0] * kernel[1]:  # type: ignore[arg-type]
            by_kernel.setdefault(kernel, []).append((name, module))  # type: ignore[arg-type]
    records = []
    for kernel, modules in by_kernel.items():
        n = taps_for(kernel, taps, keep)
        weights = [m.weight.detach().cpu().double().numpy() for _, m in modules]
        lib = pattern_library(library, n, kernel, weights=weights, size=size, seed=seed)
        for (name, module), weight in zip(modules, weights):
            mask = torch.from_numpy(assign_patterns(weight, lib, share)).to(module.weight.device)
            torch_prune.custom_from_mask(module, "weight", mask)
            records.append(LayerPruning(name, "kernel-pattern", mask.numel(), int(mask.sum())))
    return Pruning(model=model, layers=tuple(records))
