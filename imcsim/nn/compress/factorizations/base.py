"""What a factorisation gives: rank-ordered ("nested") factors of one weight block.

Every factorisation here — truncated SVD, DRONE, feature-based — truncates one SVD or
eigendecomposition, so its rank-k approximation is the first k components of its
full-rank one.  ``Nested`` stores those components once; any rank is a slice, which
is what lets a rank search try thousands of rank assignments without refactorising.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch

from imcsim.nn.compress.calibration import InputStats

__all__ = ["Factorizer", "Nested", "balance"]


@dataclass(frozen=True)
class Nested:
    """Rank-ordered factors of one block W (m × n): W_k = left[:, :k] @ right[:k].

    ``strengths`` are the singular values of the matrix the method truncates (W for SVD,
    W·X for DRONE, the centred outputs for feature-based), descending, one per component:
    the error of rank k is governed by ``strengths[k:]``.  Feature-based factors add an
    output offset: rank k adds ``mean_out − left[:, :k] @ coef[:k]`` to the bias.
    """

    left: torch.Tensor
    right: torch.Tensor
    strengths: torch.Tensor
    mean_out: torch.Tensor | None = None
    coef: torch.Tensor | None = None

    @property
    def full_rank(self) -> int:
        return int(self.left.shape[1])

    def weight(self, rank: int) -> torch.Tensor:
        """The rank-``rank`` approximation of the block (m × n)."""
        return self.left[:, :rank] @ self.right[:rank]

    def offset(self, rank: int) -> torch.Tensor | None:
        """What rank ``rank`` adds to the output bias (``None``: nothing)."""
        if self.mean_out is None or self.coef is None:
            return None
        return self.mean_out - self.left[:, :rank] @ self.coef[:rank]


def balance(left: torch.Tensor, right: torch.Tensor, coef: torch.Tensor | None = None
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Rescale every component so its column of L and row of R have equal norms.

    The product is unchanged; both factors get the same dynamic range, as the balanced
    SVD split L = U√S, R = √S Vᵀ of Jeon, Rhe, Ko (DATE 2025) does — what a crossbar
    storing each factor with the same weight precision wants.
    """
    ln, rn = left.norm(dim=0), right.norm(dim=1)
    scale = torch.where((ln > 0) & (rn > 0), (rn / ln.clamp_min(1e-300)).sqrt(),
                        torch.ones_like(ln))
    return left * scale, right / scale[:, None], None if coef is None else coef / scale


class Factorizer(Protocol):
    """One factorisation method (see ``imcsim.nn.compress.factorizations``)."""

    name: str
    needs_data: bool
    """Whether ``nested`` reads the block's input statistics."""

    def nested(self, weight: torch.Tensor, stats: InputStats | None) -> Nested:
        """Rank-ordered factors of ``weight`` (m × n, float64) given its inputs' statistics."""
        ...
