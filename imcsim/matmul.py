"""Activation×activation products (``LayerShape.kind == "matmul"``): where they run, what they cost.

A product A·B of two activations (QKᵀ and A·V in attention) has no weight that could
stay in the arrays.  The chip's ``[matmul]`` section (``imcsim.periphery.MatmulConfig``)
puts it in one of two places:

* ``digital`` — a digital MAC unit: latency = MACs / ``digital_macs_per_ns``, energy =
  MACs × ``digital_mac_energy_pj``; no array cycles.
* ``crossbar`` — for every input, B (``in_channels/groups`` × ``out_channels/groups`` per
  product) is *written* into arrays, then the rows of A stream through them like the
  tokens of a Linear layer (ReTransformer, Yang et al., ICCAD 2020, writes Kᵀ this way).
  Compute = the im2col mapping of the layer (one row of A per cycle per tile), costed
  by ``imcsim.cost`` when the chip has a ``[cost]`` section.  Write = every cell of B
  programmed once (``write_energy_pj_per_cell``), the arrays in parallel and each
  array row by row (``write_ns_per_row`` per row), so ``write_cycles`` = rows of the
  fullest tile.  Every inference rewrites these cells once per product, so a cell of
  a pool of arrays reused by all products lasts ``endurance_writes`` / (writes per cell
  per inference) inferences.

``cycles`` of a crossbar-placed product = computing cycles + write cycles (row-write
pulses); the two are also reported apart.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from imcsim.errors import ConfigError
from imcsim.hardware import ChipConfig
from imcsim.layers import LayerShape
from imcsim.mappers.im2col import Im2col
from imcsim.pricing import estimate

__all__ = ["MatmulResult", "matmul_totals", "place_matmul", "place_matmuls", "with_placement"]


@dataclass(frozen=True)
class MatmulResult:
    """One activation×activation product placed on a chip (one example)."""

    layer: LayerShape
    placement: str
    compute_cycles: int = 0
    """Computing cycles of the written operand's arrays (crossbar placement)."""
    write_cycles: int = 0
    """Row-write pulses on the critical path (crossbar placement)."""
    tiles: int = 0
    cells_written: int = 0
    latency_ns: float | None = None
    """``None``: crossbar placement on a chip without a ``[cost]`` section."""
    energy_pj: float | None = None

    @property
    def macs(self) -> int:
        return self.layer.macs

    @property
    def cycles(self) -> int:
        return self.compute_cycles + self.write_cycles

    def row(self) -> dict[str, Any]:
        """Flat record for tables, CSV and JSON."""
        return {
            "name": self.layer.name, "layer": self.layer.describe(), "kind": "matmul",
            "placement": self.placement, "macs": self.macs, "cycles": self.cycles,
            "compute_cycles": self.compute_cycles, "write_cycles": self.write_cycles,
            "tiles": self.tiles, "cells_written": self.cells_written,
            "latency_ns": self.latency_ns, "energy_pj": self.energy_pj,
        }


def with_placement(chip: ChipConfig, placement: str | None) -> ChipConfig:
    """``chip`` with its ``[matmul]`` placement overridden (``None``: unchanged)."""
    if placement is None:
        return chip
    data = chip.model_dump()
    data["matmul"] = {**data["matmul"], "placement": placement}
    return ChipConfig.parse(data)  # type: ignore[return-value]


def _check(layer: LayerShape) -> None:
    if layer.kind != "matmul":
        raise ConfigError(f"layer {layer.name!r}: kind {layer.kind!r} is not an activation product")


def _digital(layer: LayerShape, chip: ChipConfig) -> MatmulResult:
    cfg = chip.matmul
    return MatmulResult(layer=layer, placement="digital",
                        latency_ns=layer.macs / cfg.digital_macs_per_ns,
                        energy_pj=layer.macs * cfg.digital_mac_energy_pj)


def _rows_per_array(layer: LayerShape, chip: ChipConfig) -> int:
    """Rows written into the fullest array: whole products (heads) that fit share one array
    block-diagonally, as grouped layers do (``imcsim.mappers.geometry``)."""
    k, m, rows = layer.in_per_group, layer.out_per_group, chip.array.rows
    if k <= rows and m <= chip.array.effective_cols:
        return min(rows // k, chip.array.effective_cols // m, layer.groups) * k
    return min(k, rows)


def _crossbar(layer: LayerShape, chip: ChipConfig) -> MatmulResult:
    cfg = chip.matmul
    mapping = Im2col().map(layer, chip.array)
    cells = layer.params * chip.array.cols_per_weight
    rows = _rows_per_array(layer, chip)
    latency = energy = None
    if chip.cost is not None:
        compute = estimate(mapping, chip)
        latency = compute.latency_ns + rows * cfg.write_ns_per_row
        energy = compute.energy_pj + cells * cfg.write_energy_pj_per_cell
    return MatmulResult(layer=layer, placement="crossbar", compute_cycles=mapping.cycles,
                        write_cycles=rows, tiles=mapping.tiles, cells_written=cells,
                        latency_ns=latency, energy_pj=energy)


def place_matmul(layer: LayerShape, chip: ChipConfig) -> MatmulResult:
    """Cycles, latency and energy of one activation product where ``chip`` puts it."""
    _check(layer)
    return _digital(layer, chip) if chip.matmul.placement == "digital" else _crossbar(layer, chip)


def place_matmuls(layers: Sequence[LayerShape], chip: ChipConfig) -> tuple[MatmulResult, ...]:
    return tuple(place_matmul(layer, chip) for layer in layers)


def _sum(values: list[float | None]) -> float | None:
    return None if any(v is None for v in values) else float(sum(values))  # type: ignore[arg-type]


def matmul_totals(results: Sequence[MatmulResult], chip: ChipConfig) -> dict[str, Any]:
    """Network totals of the activation products (``matmul_macs`` is 0 without any)."""
    total: dict[str, Any] = {"matmul_macs": sum(r.macs for r in results)}
    if not results:
        return total
    total.update(
        matmul_placement=chip.matmul.placement,
        matmul_cycles=sum(r.cycles for r in results),
        matmul_write_cycles=sum(r.write_cycles for r in results),
        matmul_latency_ns=_sum([r.latency_ns for r in results]),
        matmul_energy_pj=_sum([r.energy_pj for r in results]),
    )
    if chip.matmul.placement == "crossbar":
        pool = max(r.tiles for r in results)
        writes_per_cell = sum(r.tiles for r in results) / pool
        total.update(
            matmul_cells_written=sum(r.cells_written for r in results),
            matmul_arrays=pool,
            endurance_inferences=math.floor(chip.matmul.endurance_writes / writes_per_cell),
        )
    return total
