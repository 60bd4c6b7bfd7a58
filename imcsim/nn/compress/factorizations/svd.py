"""Truncated SVD of the weights (data-agnostic; Eckart–Young optimal in ‖W − W_k‖_F).

The balanced split L = U_k√S_k, R = √S_k V_kᵀ follows Jeon, Rhe, Ko, "Low-Rank
Compression for IMC Arrays" (DATE 2025); the strengths are the singular values of W.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from imcsim.nn.compress.calibration import InputStats
from imcsim.nn.compress.factorizations.base import Nested

__all__ = ["Svd"]


@dataclass(frozen=True)
class Svd:
    """``W ≈ U_k S_k V_kᵀ``, split evenly between the two factors."""

    name: str = "svd"
    needs_data: bool = False

    def nested(self, weight: torch.Tensor, stats: InputStats | None = None) -> Nested:
        u, s, vh = torch.linalg.svd(weight.double(), full_matrices=False)
        root = s.sqrt()
        return Nested(left=u * root, right=root[:, None] * vh, strengths=s)
