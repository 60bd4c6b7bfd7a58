"""Truncated-SVD low-rank factorisation of conv and linear layers, and rank rules.

Each layer's weight W, reshaped to (C_out, C_in·K²) (or split into g blocks, see
``group``), is factorised by truncated SVD W ≈ U_k S_k V_kᵀ with the balanced split
L = U_k·√S_k, R = √S_k·V_kᵀ (Jeon, Rhe, Ko, "Low-Rank Compression for IMC Arrays",
DATE 2025).  The relative Frobenius error ‖W − L·R‖/‖W‖ is reported per layer.

Rank rules (``RankRule``, exactly one field): an explicit ``rank``; a ``ratio`` of the
full rank; an ``energy`` threshold (smallest k keeping that fraction of Σσ² in every
block); or a parameter ``keep`` fraction: every layer gets the largest rank whose
factors hold at most ``keep`` of its weights (rank ≥ 1), so the whole model keeps
about ``keep`` of its conv/linear weights — a uniform per-layer budget.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from pydantic import Field, model_validator
from torch import nn

from imcsim._config import StrictModel
from imcsim.errors import ConfigError
from imcsim.nn.compress.group import (
    assemble,
    check_split,
    full_rank,
    weight_blocks,
)
from imcsim.nn.compress.modules import LowRankConv2d, LowRankLinear, Split
from imcsim.nn.compress.rankrules import rank_for_energy, rank_for_keep, ratio_rank

__all__ = ["LayerFactor", "RankRule", "balanced_factors", "choose_rank", "factorize_conv",
           "factorize_linear"]


class RankRule(StrictModel):
    """How the rank (per group) of every factorised layer is chosen: set exactly one field."""

    rank: int | None = Field(default=None, ge=1)
    """Explicit rank per group; above a layer's full rank is an error."""
    ratio: float | None = Field(default=None, gt=0, le=1)
    """Fraction of the full rank, rounded (at least 1)."""
    energy: float | None = Field(default=None, gt=0, le=1)
    """Kept fraction of the squared singular values Σσ² (every block reaches it)."""
    keep: float | None = Field(default=None, gt=0, le=1)
    """Fraction of the layer's weights the two factors may hold (uniform per layer)."""

    @model_validator(mode="after")
    def _exactly_one(self) -> RankRule:
        given = [k for k in ("rank", "ratio", "energy", "keep") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of rank, ratio, energy, keep (got {given or 'none'})")
        return self


@dataclass(frozen=True)
class LayerFactor:
    """What factorising one layer did."""

    name: str
    groups: int
    split: str
    rank: int
    """Rank per group (R has groups·rank output channels)."""
    full_rank: int
    params: int
    """Weights of the original layer."""
    factored_params: int
    """Weights of r and l together."""
    error: float
    """Relative Frobenius error ‖W − L·R‖ / ‖W‖."""


def balanced_factors(matrix: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Truncated SVD with the balanced split: L = U_k√S_k (m×k), R = √S_k V_kᵀ (k×n)."""
    u, s, vh = torch.linalg.svd(matrix.detach().double(), full_matrices=False)
    root = s[:rank].sqrt()
    return u[:, :rank] * root, root[:, None] * vh[:rank]


def choose_rank(
    name: str, rule: RankRule, weight: torch.Tensor, groups: int, split: Split
) -> int:
    """The rank per group that ``rule`` gives this layer (``ConfigError`` if infeasible)."""
    shape = tuple(weight.shape)
    top = full_rank(shape, groups, split)
    if rule.rank is not None:
        if rule.rank > top:
            raise ConfigError(
                f"layer {name!r}: rank {rule.rank} exceeds the full rank {top} "
                f"({groups} group(s), {split} split)"
            )
        return rule.rank
    if rule.ratio is not None:
        return ratio_rank(top, rule.ratio)
    if rule.energy is not None:
        blocks = weight_blocks(weight.detach(), groups, split)
        return rank_for_energy([torch.linalg.svdvals(b.double()) for b in blocks], rule.energy)
    return rank_for_keep(shape, groups, split, rule.keep, top)  # type: ignore[arg-type]


def _rel_error(weight: torch.Tensor, approx: torch.Tensor) -> float:
    norm = torch.linalg.norm(weight.double()).clamp_min(1e-300)
    return float(torch.linalg.norm(weight.double() - approx.double()) / norm)


def _factor(
    name: str, module: nn.Conv2d | nn.Linear, rule: RankRule, groups: int, split: Split
) -> tuple[LowRankConv2d | LowRankLinear, LayerFactor]:
    """Build the factorised module of ``module`` and its record (SVD-initialised)."""
    weight = module.weight.detach()
    shape = tuple(weight.shape) if weight.dim() == 4 else (*weight.shape, 1, 1)
    w4 = weight.reshape(shape)
    rank = choose_rank(name, rule, w4, groups, split)
    new: LowRankConv2d | LowRankLinear
    if isinstance(module, nn.Conv2d):
        new = LowRankConv2d(module, rank, groups, split)
    else:
        new = LowRankLinear(module, rank)
    new = new.to(dtype=weight.dtype, device=weight.device)
    assemble(new, [balanced_factors(b, rank) for b in weight_blocks(w4, groups, split)])
    if module.bias is not None:
        with torch.no_grad():
            new.l.bias.copy_(module.bias)
    record = LayerFactor(
        name=name, groups=groups, split=split, rank=rank, full_rank=full_rank(shape, groups, split),
        params=weight.numel(), factored_params=new.r.weight.numel() + new.l.weight.numel(),
        error=_rel_error(w4, new.reconstructed_weight().detach().reshape(shape)),
    )
    return new, record


def factorize_conv(
    conv: nn.Conv2d, rule: RankRule | int, *, groups: int = 1, split: Split = "input",
    name: str = "conv",
) -> tuple[LowRankConv2d, LayerFactor]:
    """Factorise one ungrouped ``nn.Conv2d`` (plain, or group low-rank with ``groups``)."""
    rule = RankRule(rank=rule) if isinstance(rule, int) else rule
    if conv.groups != 1:
        raise ConfigError(f"layer {name!r}: grouped conv (groups={conv.groups}) cannot be factorised")
    check_split(name, conv.in_channels, conv.out_channels, groups, split)
    return _factor(name, conv, rule, groups, split)  # type: ignore[return-value]


def factorize_linear(
    fc: nn.Linear, rule: RankRule | int, *, name: str = "fc"
) -> tuple[LowRankLinear, LayerFactor]:
    """Factorise one ``nn.Linear`` into Linear in → k and Linear k → out."""
    rule = RankRule(rank=rule) if isinstance(rule, int) else rule
    return _factor(name, fc, rule, 1, "input")  # type: ignore[return-value]
