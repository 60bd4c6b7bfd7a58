"""Stable-rank regulariser: train weights to be compression-friendly before a rank search.

The stable rank of a matrix, srank(W) = ‖W‖_F² / ‖W‖₂² = Σσ_i² / σ_1², is a smooth
lower bound of its rank.  BSR (Eo, Kang, Rhee, 2021) trains with a regulariser derived
from it so that the energy of every weight moves into its top singular values and a
later truncation loses less; here the penalty is the mean over layers of srank(W_l)
divided by the layer's full rank, times ``weight``.  (The paper's exact "modified stable
rank" was not available to us; this is the plain stable rank it modifies.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from imcsim.errors import ConfigError

__all__ = ["stable_rank", "stable_rank_penalty"]


def stable_rank(weight: torch.Tensor) -> torch.Tensor:
    """Σσ² / σ_1² of ``weight`` folded to (C_out, everything else); differentiable."""
    matrix = weight.reshape(weight.shape[0], -1)
    top = torch.linalg.matrix_norm(matrix, ord=2)
    return matrix.pow(2).sum() / top.pow(2).clamp_min(1e-12)


def stable_rank_penalty(names: Sequence[str], weight: float) -> Callable[[nn.Module], torch.Tensor]:
    """``penalty(model)``: ``weight`` × mean over ``names`` of srank(W)/full rank."""
    if weight < 0:
        raise ConfigError(f"stable-rank weight must be >= 0 (got {weight})")
    if not names:
        raise ConfigError("stable-rank penalty: no layers")

    def penalty(model: nn.Module) -> torch.Tensor:
        terms = []
        for name in names:
            w = model.get_submodule(name).weight
            terms.append(stable_rank(w) / min(w.shape[0], w[0].numel()))
        return weight * torch.stack(terms).mean()

    return penalty
