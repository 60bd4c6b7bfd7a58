"""Feature-based low-rank factorisation with bias compensation (Bolaco, EMNLP 2024).

Project the layer's outputs Y = W X onto the top-r eigenvectors Q_r of their pooled
covariance Σ_Y = E[(y − μ)(y − μ)ᵀ]: the factors are Q_r and Q_rᵀ W, and the part of the
mean the projection loses is added back as a bias, b' = b + μ − Q_r Q_rᵀ μ, so the layer
computes Q_r Q_rᵀ (y − μ) + μ.  Σ_Y and μ follow from the input statistics
(Σ_Y = W (E[x xᵀ] − E[x] E[x]ᵀ) Wᵀ, μ = W E[x]).  On the data it was fitted on this is
the best rank-r affine reconstruction of the outputs (PCA), so its output error is never
above DRONE's or SVD's at the same rank.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from imcsim.errors import ConfigError
from imcsim.nn.compress.calibration import InputStats
from imcsim.nn.compress.factorizations.base import Nested, balance

__all__ = ["Feature"]


@dataclass(frozen=True)
class Feature:
    """``W ≈ Q_r (Q_rᵀ W)`` with Q_r the top output-covariance eigenvectors, plus a bias."""

    name: str = "feature"
    needs_data: bool = True

    def nested(self, weight: torch.Tensor, stats: InputStats | None) -> Nested:
        if stats is None:
            raise ConfigError("factorization 'feature' needs calibration statistics")
        w = weight.double()
        mean_in = stats.mean
        cov_in = stats.second / stats.count - torch.outer(mean_in, mean_in)
        values, q = torch.linalg.eigh(w @ cov_in @ w.T)
        values, q = values.flip(0).clamp_min(0), q.flip(1)
        full = min(w.shape)
        q, values = q[:, :full], values[:full]
        mean_out = w @ mean_in
        left, right, coef = balance(q, q.T @ w, q.T @ mean_out)
        return Nested(left=left, right=right, strengths=values.sqrt(), mean_out=mean_out,
                      coef=coef)
