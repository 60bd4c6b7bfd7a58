"""Per-layer rank rules shared by ``RankRule`` and the rank selectors.

Each maps one layer's size (and, for ``energy``, its spectrum) to a rank per group:
``ratio_rank`` (a fraction of the full rank), ``rank_for_energy`` (the smallest rank
keeping a fraction of Σσ² in every block), ``rank_for_keep`` (the largest rank whose
factors hold at most a fraction of the layer's weights).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from imcsim.nn.compress.group import params_per_rank
from imcsim.nn.compress.modules import Split

__all__ = ["energy_fractions", "rank_for_energy", "rank_for_keep", "ratio_rank"]


def ratio_rank(full: int, ratio: float) -> int:
    """round(ratio·full), at least 1, at most ``full``."""
    return max(1, min(full, round(ratio * full)))


def energy_fractions(strengths: torch.Tensor) -> np.ndarray:
    """Kept fraction of Σσ² at ranks 1..len (index k − 1)."""
    sq = strengths.detach().double() ** 2
    return (torch.cumsum(sq, 0) / sq.sum().clamp_min(1e-300)).cpu().numpy()


def rank_for_energy(blocks: list[torch.Tensor], energy: float) -> int:
    """Smallest rank keeping ``energy`` of Σσ² in every block (values σ per block)."""
    return max(int(np.searchsorted(energy_fractions(s), energy - 1e-12)) + 1 for s in blocks)


def rank_for_keep(shape: tuple[int, ...], groups: int, split: Split, keep: float, top: int) -> int:
    """Largest rank (1..top) whose two factors hold at most ``keep`` of the layer's weights."""
    budget = keep * math.prod(shape)
    return max(1, min(top, int(budget // params_per_rank(shape, groups, split))))
