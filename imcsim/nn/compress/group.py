"""Group low-rank blocks: split a conv weight into g blocks and put factors back.

Jeon, Rhe, Ko (DATE 2025), Theorem 1: splitting W (C_out × C_in·K²) into g blocks
along its input axis and factorising each block with rank k never loses more than
factorising W with rank k, because every block of the best rank-k approximation of
W is a rank-≤k approximation of that block (Eckart–Young per block).  The same holds
for a split along the output axis, offered as ``split="output"``.
"""

from __future__ import annotations

import torch

from imcsim.errors import ConfigError
from imcsim.nn.compress.modules import LowRankConv2d, LowRankLinear, Split

__all__ = ["SPLITS", "assemble", "check_options", "check_split", "full_rank", "params_per_rank",
           "weight_blocks"]

SPLITS = ("input", "output")


def check_options(groups: int, split: str) -> None:
    """One-line ``ConfigError`` for a bad split axis or group count."""
    if split not in SPLITS:
        raise ConfigError(f"split={split!r}; expected 'input' or 'output'")
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
        raise ConfigError(f"groups must be a positive integer (got {groups!r})")


def check_split(name: str, in_channels: int, out_channels: int, groups: int, split: str) -> None:
    """One-line ``ConfigError`` unless ``groups`` divides the channels of the split axis."""
    check_options(groups, split)
    channels = in_channels if split == "input" else out_channels
    if channels % groups:
        field = "in_channels" if split == "input" else "out_channels"
        raise ConfigError(
            f"layer {name!r}: groups={groups} does not divide {field}={channels} ({split} split)"
        )


def weight_blocks(weight: torch.Tensor, groups: int, split: Split) -> list[torch.Tensor]:
    """The g matrices to factorise: (C_out, C_in/g·K²) or (C_out/g, C_in·K²) each."""
    axis = 1 if split == "input" else 0
    return [b.reshape(b.shape[0], -1) for b in torch.chunk(weight, groups, dim=axis)]


def full_rank(weight_shape: tuple[int, ...], groups: int, split: Split) -> int:
    """Largest useful rank of one block: min of its two dimensions."""
    c_out, c_in = weight_shape[0], weight_shape[1]
    taps = 1
    for k in weight_shape[2:]:
        taps *= k
    if split == "input":
        return min(c_out, c_in // groups * taps)
    return min(c_out // groups, c_in * taps)


def params_per_rank(weight_shape: tuple[int, ...], groups: int, split: Split) -> int:
    """Weights added by one unit of (per-group) rank: k·(this) = params of r and l."""
    c_out, c_in = weight_shape[0], weight_shape[1]
    taps = 1
    for k in weight_shape[2:]:
        taps *= k
    if split == "input":
        return c_in * taps + groups * c_out
    return groups * c_in * taps + c_out


def assemble(
    module: LowRankConv2d | LowRankLinear, factors: list[tuple[torch.Tensor, torch.Tensor]]
) -> None:
    """Write block factors (L_j, R_j) into ``module.r`` / ``module.l`` weights in place."""
    r_w, l_w = module.r.weight, module.l.weight
    r_rows = torch.cat([right for _, right in factors], dim=0)
    left = [f for f, _ in factors]
    l_mat = torch.cat(left, dim=1) if module.split == "input" else torch.cat(left, dim=0)
    with torch.no_grad():
        r_w.copy_(r_rows.reshape(r_w.shape).to(r_w.dtype))
        l_w.copy_(l_mat.reshape(l_w.shape).to(l_w.dtype))
