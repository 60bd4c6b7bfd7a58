"""Factorised layers: a K×K conv ``r`` followed by a 1×1 conv ``l`` (Jeon, Rhe, Ko, DATE 2025).

``LowRankConv2d`` replaces a K×K conv C_in → C_out by

* ``r``: K×K conv C_in → g·k (the original stride, padding and dilation), and
* ``l``: 1×1 conv g·k → C_out carrying the original bias,

so that W ≈ L·R with W reshaped to (C_out, C_in·K²).  ``g = 1`` is plain low-rank.
Group low-rank (``g > 1``) splits W into g blocks, each of rank k:

* ``split="input"`` (default, the paper's Theorem 1): blocks of C_in/g input
  channels; ``r`` is a grouped conv (groups=g, C_in/g → k each) and ``l`` a dense
  1×1 conv g·k → C_out.
* ``split="output"``: blocks of C_out/g filters; ``r`` is a dense K×K conv
  C_in → g·k and ``l`` a grouped 1×1 conv (groups=g, k → C_out/g each): L is
  block-diagonal, i.e. g independent low-rank convs side by side.

``LowRankLinear`` is the same for ``nn.Linear`` (plain low-rank only).  The
extractor tags ``<name>.r`` and ``<name>.l`` with ``factor_of=<name>`` so that a
mapper can place the pair together.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

__all__ = ["FACTORIZED", "LowRankConv2d", "LowRankLinear", "Split"]

Split = Literal["input", "output"]


class LowRankConv2d(nn.Module):
    """``l(r(x))``: K×K conv to g·k channels, then 1×1 conv to C_out."""

    def __init__(
        self, conv: nn.Conv2d, rank: int, groups: int = 1, split: Split = "input"
    ) -> None:
        super().__init__()
        self.rank, self.groups, self.split = rank, groups, split
        r_groups, l_groups = (groups, 1) if split == "input" else (1, groups)
        self.r = nn.Conv2d(
            conv.in_channels, groups * rank, conv.kernel_size, stride=conv.stride,
            padding=conv.padding, dilation=conv.dilation, groups=r_groups, bias=False,
        )
        self.l = nn.Conv2d(
            groups * rank, conv.out_channels, 1, groups=l_groups, bias=conv.bias is not None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.l(self.r(x))

    def reconstructed_weight(self) -> torch.Tensor:
        """W = L·R as a (C_out, C_in, K_h, K_w) weight."""
        k, g = self.rank, self.groups
        l_mat = self.l.weight[:, :, 0, 0]
        c_out, (kh, kw) = l_mat.shape[0], self.r.kernel_size
        r_blocks = [self.r.weight[j * k:(j + 1) * k].reshape(k, -1) for j in range(g)]
        if self.split == "input":
            blocks = [l_mat[:, j * k:(j + 1) * k] @ r_blocks[j] for j in range(g)]
            return torch.cat([b.reshape(c_out, -1, kh, kw) for b in blocks], dim=1)
        og = c_out // g
        blocks = [l_mat[j * og:(j + 1) * og] @ r_blocks[j] for j in range(g)]
        return torch.cat(blocks, dim=0).reshape(c_out, -1, kh, kw)


class LowRankLinear(nn.Module):
    """``l(r(x))``: Linear in → k, then Linear k → out (carrying the original bias)."""

    def __init__(self, fc: nn.Linear, rank: int) -> None:
        super().__init__()
        self.rank, self.groups, self.split = rank, 1, "input"
        self.r = nn.Linear(fc.in_features, rank, bias=False)
        self.l = nn.Linear(rank, fc.out_features, bias=fc.bias is not None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.l(self.r(x))

    def reconstructed_weight(self) -> torch.Tensor:
        return self.l.weight @ self.r.weight


FACTORIZED = (LowRankConv2d, LowRankLinear)
"""Module types whose ``r`` and ``l`` children are the two factors of one layer."""
