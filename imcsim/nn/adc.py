"""The column ADCs of a crossbar layer: which tile and ADC converts each column, the ADC
step from a full scale, and the conversion itself (rounding or a non-ideal transfer
function, clipping, clipped-conversion counts).

Column order is the one of the tiled MVM (``imcsim.nn.mvm``): per window copy, the output
channels of its grouped convolution, (class, row tile, member, weight slice) with the
weight slice innermost.  A column's tile and weight column come from the mapping's
placement (``TilePlan.tile_position``/``col_position``); its bit line is
``weight column · columns per weight + slice`` and its ADC
``tile · ⌈cols / cols_per_adc⌉ + bit line // cols_per_adc`` (ISAAC: one ADC per array).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch

from imcsim.errors import ConfigError
from imcsim.nn import functional as xf
from imcsim.nn.nonideal import AdcContext, Converter, NonIdeality, mixed_seed
from imcsim.nn.tileplan import TilePlan

__all__ = ["AdcCounts", "ColumnMap", "adc_step", "build_column_map", "convert",
           "transfer_function"]


@dataclass(frozen=True)
class ColumnMap:
    """Per window copy: the tile and the ADC of every output column (−1 / 0: padding)."""

    tile: tuple[torch.Tensor, ...]
    adc: tuple[torch.Tensor, ...]
    tiles: int
    adcs: int

    def to(self, device: torch.device) -> ColumnMap:
        """This map with its index tensors on ``device`` (moved once, with the layer)."""
        return replace(self, tile=tuple(t.to(device) for t in self.tile),
                       adc=tuple(a.to(device) for a in self.adc))


def build_column_map(plan: TilePlan, weight_slices: int, cols_per_weight: int, cols: int,
                     cols_per_adc: int) -> ColumnMap:
    """The ``ColumnMap`` of a layer whose columns carry ``weight_slices`` slices each."""
    tile = plan.tile_position.max(axis=-1)                          # (A, K, R, F)
    col = plan.col_position.max(axis=-1)
    tiles = int(plan.tile_position.max()) + 1 if plan.tile_position.size else 0
    per_tile = math.ceil(cols / cols_per_adc)
    line = col[..., None] * cols_per_weight + np.arange(weight_slices)
    adc = np.where(tile[..., None] >= 0, tile[..., None] * per_tile + line // cols_per_adc, 0)
    tile = np.broadcast_to(tile[..., None], line.shape)
    return ColumnMap(tile=tuple(torch.from_numpy(t.reshape(-1).copy()) for t in tile),
                     adc=tuple(torch.from_numpy(a.reshape(-1).copy()) for a in adc),
                     tiles=max(tiles, 1), adcs=max(tiles, 1) * per_tile)


def adc_step(full_scale: torch.Tensor, bits: int, signed: bool, unit: bool) -> torch.Tensor:
    """ADC step(s) for full scale(s): ``full_scale / top`` (``exact``) or, ``unit``, the
    smallest step commensurate with the unit current (one input level × one conductance
    level) — a whole multiple m or a whole fraction 1/m of it — whose ``top`` steps cover
    the full scale.  Ideal column sums are whole numbers of units, so a commensurate step
    quantizes them without bias; a step of 1.46 units, say, merges every other pair of
    sums into one code: a systematic error the offset correction then amplifies."""
    top = _top(bits, signed)
    step = full_scale.double() / top
    if unit:
        coarse = torch.ceil(step - 1e-9)
        fine = 1.0 / torch.floor(1.0 / step.clamp(min=1e-12) + 1e-9)
        step = torch.where(step > 1.0, coarse, fine)
    return torch.where(step > 0, step, torch.ones_like(step))


def _top(bits: int, signed: bool) -> int:
    return xf.qmax(bits, True) if signed and bits > 1 else 2**bits - 1


@dataclass
class AdcCounts:
    """Conversions and clipped conversions of one layer since the last reset."""

    conversions: int = 0
    clipped: int = 0

    @property
    def fraction(self) -> float:
        return self.clipped / self.conversions if self.conversions else 0.0


def convert(v: torch.Tensor, step: torch.Tensor, bits: int, signed: bool, clip: bool,
            counts: AdcCounts, transfer: Callable[[torch.Tensor], torch.Tensor] | None = None,
            ) -> torch.Tensor:
    """In place: analog sums → integer codes with step ``step`` (a scalar or one per column),
    clipping (and counting clipped conversions) when ``clip``; ``transfer`` replaces the
    ideal rounding (codes of the sums in LSB units)."""
    top = _top(bits, signed)
    low = -top if signed else 0
    v = v.div_(step.to(v.dtype))
    v = transfer(v) if transfer is not None else v.round_()
    counts.conversions += v.numel()
    if not clip:
        return v
    if float(v.max()) > top:
        counts.clipped += int((v > top).sum())
    if float(v.min()) < low:
        counts.clipped += int((v < low).sum())
    return v.clamp_(low, top)


def transfer_function(effects: tuple[NonIdeality, ...], columns: ColumnMap, settings,
                      layer_id: int, name: str) -> Converter | None:
    """The ADC transfer function one of ``effects`` provides for this layer (its ADCs and
    their draws seeded from (seed, layer)), or None for ideal rounding."""
    top = _top(settings.adc_bits, not settings.sliced)
    # cpu-only: the ADCs' deviations are drawn on the CPU (the same on every device)
    generator = torch.Generator(device="cpu").manual_seed(mixed_seed(settings.seed, layer_id, 2))
    ctx = AdcContext(adc=columns.adc, adcs=columns.adcs, low=0 if settings.sliced else -top,
                     top=top, generator=generator)
    made = [c for c in (n.converter(ctx) for n in effects) if c is not None]
    if len(made) > 1:
        raise ConfigError(f"layer {name!r}: two non-idealities define the ADC transfer function")
    return made[0] if made else None
