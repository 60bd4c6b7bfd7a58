"""numba kernel of the crossbar simulation's shift-and-add (private), with its torch twin.

``accumulate_(acc, codes, x_coef, w_coef)`` adds ``Σ_s x_coef[s] · Σ_k w_coef[k] ·
codes[s, m, j, k]`` to ``acc[m, j]``: the shift-and-add over the input slices ``s`` and
the weight slices ``k`` of one group of ADC codes, in one pass over the codes (the
torch twin, a block-diagonal GEMM then a GEMV, reads them twice and runs an n=4 GEMM
far below the machine's speed).  ADC codes and slice coefficients are integers, so
every partial sum is an integer and the result does not depend on the summation order
as long as it stays below 2^24 (float32) — the bound the crossbar layers guarantee.
"""

from __future__ import annotations

import numba
import numpy as np
import torch

__all__ = ["accumulate_", "accumulate_torch_"]


@numba.njit(cache=True)
def _accumulate(acc, codes, x_coef, w_coef):  # pragma: no cover - compiled
    n_x, m_total, j_total, n_w = codes.shape
    for s in range(n_x):
        cx = x_coef[s]
        for m in range(m_total):
            for j in range(j_total):
                a = codes[s, m, j, 0] * w_coef[0]
                for k in range(1, n_w):
                    a += codes[s, m, j, k] * w_coef[k]
                acc[m, j] += cx * a


def accumulate_(acc: torch.Tensor, codes: torch.Tensor, x_coef: torch.Tensor,
                w_coef: torch.Tensor) -> torch.Tensor:
    """In place on ``acc`` (M, J): add the shift-and-add of ``codes`` (S_x, M, J, S_w)."""
    dtype = acc.dtype
    _accumulate(acc.numpy(), np.ascontiguousarray(codes.numpy()),
                x_coef.to(dtype).numpy(), w_coef.to(dtype).numpy())
    return acc


def accumulate_torch_(acc: torch.Tensor, codes: torch.Tensor, x_coef: torch.Tensor,
                      w_coef: torch.Tensor) -> torch.Tensor:
    """The twin of :func:`accumulate_` in torch (weight slices, then input slices)."""
    dtype = acc.dtype
    y = torch.matmul(codes, w_coef.to(dtype))
    return acc.add_(torch.tensordot(x_coef.to(dtype), y, dims=1))
