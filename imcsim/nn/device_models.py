"""Device physics on the non-ideality protocol (``imcsim.nn.nonideal``): conductance drift,
IR drop and ADC deviations.  Importing this module registers them, after the noise and
fault models, in this order: drift, IR drop, ADC deviations.

* **Drift** (PCM): every cell's conductance above the off state decays as
  ``G(t) = G(t₀)·(t/t₀)^(−ν)`` with ν drawn per device as ``|N(ν_mean, ν_std)|`` — the
  model and fit of Nandakumar et al. (ICECS 2019) used by IBM aihwkit's
  ``PCMLikeNoiseModel`` (Joshi et al., Nat. Commun. 2020).  Optional global drift
  compensation (aihwkit's ``GlobalDriftCompensation``): a reference read with all inputs
  at one, at t₀ and at t, gives a per-layer digital gain applied to the column sums.
* **IR drop**: each tile's resistor network (cells at ``G_off + (G_on − G_off)·level/top``,
  wire resistance per cell segment on word and bit lines) is solved for the tile's
  actual conductances, where the mapping placed them (``imcsim._irdrop``); the network is
  linear, so its effective conductance matrix is exact for every input.  The periphery
  is assumed to subtract the ideal off-state current ``G_off·Σx``, so each cell is
  replaced by its effective level ``(G_eff − G_off)·top/(G_on − G_off)``.  Cells that hold
  no weight sit at ``G_off`` and load the lines; their own (second-order) IR residual on
  columns they share is neglected.  Optional global compensation: the same all-ones
  reference read as for drift gives a per-layer digital gain (the mean IR loss).
* **ADC deviations**: each ADC (tile × group of ``cols_per_adc`` columns) draws an offset
  ``N(0, σ_off)`` LSB and code widths ``1 + N(0, σ_dnl)`` LSB (clipped at 0.05 so codes
  stay monotonic), rescaled so the first and last transitions keep their ideal distance
  (end-point INL = 0); the INL is the running sum of the DNL.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from imcsim.nn.nonideal import (
    AdcContext,
    CellContext,
    Converter,
    NonIdeality,
    draw,
    register_nonideality,
)

__all__ = ["AdcDeviation", "Drift", "IRDrop", "adc_transitions", "reference_gain"]


@dataclass(frozen=True)
class Drift(NonIdeality):
    """``level·(t/t₀)^(−ν)``, ν ~ |N(ν_mean, ν_std)| per cell; optional global compensation."""

    time_s: float
    t0_s: float
    nu_mean: float
    nu_std: float
    compensate: bool
    name = "drift"
    time_dependent = True

    def program(self, cells: torch.Tensor, ctx: CellContext) -> torch.Tensor:
        eps = draw("normal", cells.shape, ctx.generator, torch.float64, cells.device)
        nu = (self.nu_mean + self.nu_std * eps).abs()
        return cells * torch.pow(self.time_s / self.t0_s, -nu).to(cells.dtype)

    def gain(self, before: torch.Tensor, after: torch.Tensor, ctx: CellContext) -> float:
        return reference_gain(before, after, ctx) if self.compensate else 1.0


def reference_gain(before: torch.Tensor, after: torch.Tensor, ctx: CellContext) -> float:
    """Global compensation gain (aihwkit's ``GlobalDriftCompensation``): a reference read
    with every input at one, shift-and-added over the weight slices, summed over the
    layer's columns — with the cells as programmed over with the cells as they are."""
    weight = (torch.ones(len(before), dtype=before.dtype, device=before.device)
              if ctx.coef is None
              else ctx.coef.abs().to(before.dtype)).view(-1, *[1] * (before.dim() - 1))
    reference, now = float((before * weight).abs().sum()), float((after * weight).abs().sum())
    return reference / now if now > 0 else 1.0


@dataclass(frozen=True)
class IRDrop(NonIdeality):
    """Every tile's cells replaced by their effective levels under wire resistance."""

    wire_ohm: float
    on_ohm: float
    off_ohm: float
    rows: int
    cols: int
    cols_per_weight: int
    solver: str
    compensate: bool = False
    name = "ir_drop"
    may_exceed_range = True

    def gain(self, before: torch.Tensor, after: torch.Tensor, ctx: CellContext) -> float:
        return reference_gain(before, after, ctx) if self.compensate else 1.0

    def program(self, cells: torch.Tensor, ctx: CellContext) -> torch.Tensor:
        from imcsim import _irdrop

        if ctx.tile is None:
            raise ValueError("IR drop needs every cell's tile (CellContext.tile)")
        slices = cells.shape[0]
        where = (ctx.row >= 0).expand(cells.shape[1:])
        tile, row, col = (t.expand(cells.shape[1:])[where] for t in (ctx.tile, ctx.row, ctx.col))
        tiles = int(tile.max()) + 1 if tile.numel() else 0
        line = col.unsqueeze(0) * self.cols_per_weight + torch.arange(
            slices, device=col.device).unsqueeze(1)
        # the network solvers (imcsim._irdrop) are numpy/scipy code; the cells go to the
        # host and back once per layer (at programming), never per tile.  cpu-only:
        index = ((tile * self.rows + row).unsqueeze(0) * self.cols + line).cpu().numpy()
        levels = np.zeros(tiles * self.rows * self.cols)
        levels[index.ravel()] = cells[:, where].double().cpu().numpy().ravel()  # cpu-only
        g_on, g_off = 1.0 / self.on_ohm, 1.0 / self.off_ohm
        g = np.clip(g_off + (g_on - g_off) * levels / ctx.top, 0.0, None)
        g = g.reshape(tiles, self.rows, self.cols)
        solve = (_irdrop.effective_conductance if self.solver == "exact"
                 else _irdrop.effective_conductance_linear)
        effective = (solve(g, self.wire_ohm, self.wire_ohm) - g_off) * ctx.top / (g_on - g_off)
        out = cells.clone()
        out[:, where] = torch.from_numpy(effective.ravel()[index]).to(cells.device, cells.dtype)
        return out


def adc_transitions(ctx: AdcContext, offset_lsb: float, dnl_lsb: float) -> torch.Tensor:
    """(ADCs, codes − 1) transition levels in LSB: code ``low + #{t ≤ v}`` for input ``v``.

    Ideal: ``low + k − 1/2`` for k = 1 … top − low.  Each ADC gets an offset and code
    widths ``max(1 + σ_dnl·ε, 0.05)`` rescaled to the ideal end-to-end span.
    """
    n, host = ctx.top - ctx.low, ctx.generator.device  # drawn where the generator is
    offset = offset_lsb * torch.randn(ctx.adcs, 1, generator=ctx.generator, dtype=torch.float64,
                                      device=host)
    widths = (1 + dnl_lsb * torch.randn(ctx.adcs, n - 1, generator=ctx.generator,
                                        dtype=torch.float64, device=host)).clamp(min=0.05)
    if n > 1:
        widths = widths * (n - 1) / widths.sum(dim=1, keepdim=True)
    steps = torch.cat([torch.zeros(ctx.adcs, 1, dtype=torch.float64, device=host),
                       widths.cumsum(1)], 1)
    return ctx.low + 0.5 + offset + steps


@dataclass(frozen=True)
class AdcDeviation(NonIdeality):
    """Per-ADC offset and DNL (seeded): the ADC transfer function of the layer."""

    offset_lsb: float
    dnl_lsb: float
    name = "adc_deviation"

    def converter(self, ctx: AdcContext) -> Converter:
        device = ctx.adc[0].device if ctx.adc else ctx.generator.device
        transitions = adc_transitions(ctx, self.offset_lsb, self.dnl_lsb).to(device)
        n = transitions.shape[1]
        # one sorted list for every ADC: ADC a's transitions shifted by a·span
        span = float(transitions.max() - transitions.min()) + 4.0
        shift = torch.arange(ctx.adcs, dtype=torch.float64, device=device) * span
        flat = (transitions + shift[:, None]).reshape(-1).contiguous()
        low, top = ctx.low, ctx.top
        lo_edge = float(transitions.min()) - 1.0
        hi_edge = float(transitions.max()) + 1.0

        def convert(v: torch.Tensor, copy: int) -> torch.Tensor:
            adc = ctx.adc[copy]
            x = v.double().clamp_(lo_edge, hi_edge).add_(shift[adc])
            count = torch.searchsorted(flat, x, right=True) - adc * n
            return count.to(v.dtype).add_(low).clamp_(low, top)

        return convert


def _drift(s) -> Drift | None:
    if s.drift_time_s is None or s.drift_time_s == s.drift_t0_s:
        return None
    return Drift(s.drift_time_s, s.drift_t0_s, s.drift_nu_mean, s.drift_nu_std,
                 s.drift_compensation)


def _ir_drop(s) -> IRDrop | None:
    if s.wire_resistance_ohm <= 0:
        return None
    return IRDrop(s.wire_resistance_ohm, s.cell_on_resistance_ohm, s.cell_off_resistance_ohm,
                  s.rows, s.cols, s.cols_per_weight, s.ir_drop_solver, s.ir_drop_compensation)


def _adc(s) -> AdcDeviation | None:
    if s.adc_offset_lsb <= 0 and s.adc_dnl_lsb <= 0:
        return None
    return AdcDeviation(s.adc_offset_lsb, s.adc_dnl_lsb)


register_nonideality("drift", _drift)
register_nonideality("ir_drop", _ir_drop)
register_nonideality("adc_deviation", _adc)
