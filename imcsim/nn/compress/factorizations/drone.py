"""DRONE: data-aware low-rank factorisation (Chen, Yu, Dhillon, Hsieh, NeurIPS 2021).

Minimise ‖W X − M X‖_F over rank-k M, X the layer's real inputs (im2col patches of
calibration images for a conv).  With X = U_X S_X V_Xᵀ the optimum is

    M* = [W U_X S_X]_k S_X⁺ U_Xᵀ

([·]_k the truncated SVD, S_X⁺ the pseudo-inverse on X's numerical range).  Only
X Xᵀ = U_X S_X² U_Xᵀ is needed, so the inputs are never stored.  On the activations it
was fitted on, M* is never worse than truncated SVD of W at the same rank (the SVD
factor is one feasible M); ``tests/test_rank_search.py`` checks it.

Directions of the input space that the calibration data never excites (for example the
differences between the three identical channels of a gray image copied to RGB) carry
no error on that data; once the data's range is exhausted, further components
approximate W on the rest of the space by plain SVD of W (I − U_X U_Xᵀ), so that
inputs outside the calibration range are not silently zeroed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from imcsim.errors import ConfigError
from imcsim.nn.compress.calibration import InputStats
from imcsim.nn.compress.factorizations.base import Nested, balance

__all__ = ["Drone"]


def input_range(stats: InputStats, rcond: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(U_X, S_X) of the inputs: eigenvectors of X Xᵀ with eigenvalue > rcond·max, and
    the square roots of those eigenvalues, descending."""
    values, vectors = torch.linalg.eigh(stats.second)
    values, vectors = values.flip(0), vectors.flip(1)
    keep = values > rcond * values[0].clamp_min(1e-300)
    return vectors[:, keep], values[keep].sqrt()


@dataclass(frozen=True)
class Drone:
    """``M* = [W U_X S_X]_k S_X⁺ U_Xᵀ``; strengths are the singular values of W X."""

    name: str = "drone"
    needs_data: bool = True
    rcond: float = 1e-10
    """Eigenvalues of X Xᵀ below ``rcond`` × the largest are outside X's numerical range."""

    def nested(self, weight: torch.Tensor, stats: InputStats | None) -> Nested:
        if stats is None:
            raise ConfigError("factorization 'drone' needs calibration statistics")
        w = weight.double()
        m, n = w.shape
        basis, scale = input_range(stats, self.rcond)
        p, sigma, qh = torch.linalg.svd(w @ (basis * scale), full_matrices=False)
        left, right = p * sigma, qh / scale @ basis.T
        full = min(m, n)
        if left.shape[1] < full:  # approximate W off the data's range with what is left
            rest = w - (w @ basis) @ basis.T
            u, s, vh = torch.linalg.svd(rest, full_matrices=False)
            extra = full - left.shape[1]
            left = torch.cat([left, u[:, :extra] * s[:extra]], dim=1)
            right = torch.cat([right, vh[:extra]], dim=0)
            sigma = torch.cat([sigma, torch.zeros(extra, dtype=sigma.dtype)])
        left, right, _ = balance(left[:, :full], right[:full])
        return Nested(left=left, right=right,
                      strengths=sigma[:full] / max(stats.count, 1.0) ** 0.5)
