"""Analytic latency, energy and area of a ``LayerMapping`` on a costed chip.

The model counts *events* per image and prices them with the chip's ``CostConfig``
(``imcsim.periphery``); the cycle simulator (``imcsim.cyclesim``) counts the same
events on real activations and prices them with the same ``price`` function.

Timing (ISAAC, Shafiee et al., ISCA 2016, §V).  A computing cycle (one tile activation,
``LayerMapping.cycles``) streams its inputs in ``PrecisionConfig.input_slices``
bit-slice stages.  In one stage the DACs drive the rows and the array is read
(``dac.settle_ns + cell.read_ns``); the ADC then converts, in turn, the
``cols_per_adc`` column signals its multiplexer serves (a fixed sequence: each takes
``conversion_at(adc_bits)``).  With sample-and-hold (``overlap_read``) the conversions
of one stage overlap the read of the next, so a stage lasts max(read, conversions),
else read + conversions.  Tiles of a layer are activated one after another, as in
the computing-cycle count of the mapping papers, so

    latency = latency_cycles × input_slices × stage_ns + windows × ⌈log2 row_tiles⌉ × add_ns

where the last term is the adder tree that sums the row tiles' partial sums.

Events per window (analytic = every row driven with a nonzero slice, the data-free
upper bound): DAC activations = driven rows × slices; cell reads = Σ over tiles of
rows × columns in use × slices; conversions = columns in use (or weights in use with
analog weight combining) × slices, each followed by a shift-and-add and preceded by a
sample-and-hold capture; accumulations = partial sums − outputs; input bits = driven
rows × input bits; output bits = outputs × output bits; index routes = routed rows ×
slices; index bit reads = the layer's pattern-index bits (``index_bits``), once per
window.  Every count per window is read from the mapping, whose counts are those of its
placement (``imcsim.mappers.placement``): the model never re-derives a mapper's layout.

Throughput counts 2 operations per MAC of the dense layer: TOPS = 2·MACs / latency,
TOPS/W = 2·MACs / energy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, get_args

from imcsim.errors import ConfigError
from imcsim.hardware import ArrayConfig, ChipConfig, load_chip
from imcsim.mappers.base import Schedule
from imcsim.mappers.mapping import LayerMapping
from imcsim.matmul import place_matmuls
from imcsim.periphery import CostConfig
from imcsim.report import NetworkReport

__all__ = [
    "CostTotals", "ENERGY_COMPONENTS", "Events", "LayerCost", "SCHEDULES", "analytic_events",
    "check_chip", "cost_of", "data_independent", "estimate", "estimate_network", "price",
    "schedule_totals", "with_cost",
]

SCHEDULES: tuple[str, ...] = get_args(Schedule)
ENERGY_COMPONENTS = (
    "adc", "sample_hold", "dac", "cells", "shift_add", "accumulation",
    "input_buffer", "output_buffer", "index", "pattern_index",
)


@dataclass(frozen=True)
class Events:
    """Countable events of one layer for one image (means when averaged over images)."""

    windows: float
    """Parallel windows (each ends with one adder-tree pass over its row tiles)."""
    activations: float
    """Tile activations (computing cycles)."""
    stage_cycles: float
    """Bit-slice stages spent: activations × input slices, fewer when zero slices skip."""
    dac_activations: float
    """Rows driven with a nonzero input slice, summed over stages."""
    cell_reads: float
    """Driven rows × physical columns in use, summed over stages."""
    adc_conversions: float
    """Column signals converted (each with one S+H capture and one shift-and-add)."""
    accumulations: float
    """Digital additions of row-tile partial sums."""
    input_bits: float
    """Bits moved from the buffer into the arrays' input registers."""
    output_bits: float
    """Bits of finished outputs written back to the buffer."""
    index_routes: float
    """Input slices routed to kept rows by the index logic of a row-skipping mapping."""
    index_bit_reads: float
    """Pattern-index bits read (the layer's index, once per window)."""


@dataclass(frozen=True)
class LayerCost:
    """Latency, energy (by component) and area (by component) of one layer, one image."""

    name: str
    macs: int
    latency_ns: float
    energy_breakdown_pj: dict[str, float]
    area_breakdown_um2: dict[str, float]
    events: Events

    @property
    def energy_pj(self) -> float:
        return sum(self.energy_breakdown_pj.values())

    @property
    def area_um2(self) -> float:
        return sum(self.area_breakdown_um2.values())

    @property
    def tops(self) -> float:
        """Tera-operations per second while this layer runs (2 ops per MAC)."""
        return 2 * self.macs / self.latency_ns / 1e3

    @property
    def tops_per_w(self) -> float:
        """Operations per picojoule = TOPS/W."""
        return 2 * self.macs / self.energy_pj

    def row(self) -> dict[str, Any]:
        """Flat per-layer columns for a ``NetworkReport`` stage."""
        row: dict[str, Any] = {
            "latency_ns": self.latency_ns, "energy_pj": self.energy_pj,
            "area_um2": self.area_um2, "tops": self.tops, "tops_per_w": self.tops_per_w,
        }
        row.update({f"energy_{k}_pj": v for k, v in self.energy_breakdown_pj.items()})
        return row


def cost_of(chip: ChipConfig) -> CostConfig:
    """The chip's cost section, or a one-line error naming the chip."""
    if chip.cost is None:
        raise ConfigError(
            f"chip {chip.name!r} has no [cost] section; use a costed preset (isaac, wang2022)"
        )
    return chip.cost


def with_cost(chip: ChipConfig, preset: str) -> ChipConfig:
    """``chip`` (array, precisions) costed with the ``[cost]`` section of ``preset``."""
    return chip.model_copy(update={"cost": cost_of(load_chip(preset))})


def column_signals(mapping: LayerMapping, cost: CostConfig) -> int:
    """Signals one array presents to its ADCs: columns, or weights if combined in analog."""
    array = mapping.array
    return array.effective_cols if cost.adc.weight_combine == "analog" else array.cols


def stage_ns(mapping: LayerMapping, chip: ChipConfig) -> float:
    """Duration of one bit-slice stage: array read and the ADC's multiplexed conversions."""
    cost = cost_of(chip)
    read = cost.dac.settle_ns + cost.cell.read_ns
    per_adc = min(cost.adc.cols_per_adc, column_signals(mapping, cost))
    convert = per_adc * cost.adc.conversion_at(chip.precision.adc_bits)
    return max(read, convert) if cost.adc.overlap_read else read + convert


def conversions_per_window(m: LayerMapping, cost: CostConfig) -> float:
    """Column signals converted per window and slice (all tiles)."""
    if cost.adc.weight_combine == "analog":
        return m.driven_cols / m.array.cols_per_weight
    return float(m.driven_cols)


def data_independent(m: LayerMapping, chip: ChipConfig) -> dict[str, float]:
    """Events that do not depend on the input values (per image)."""
    cost = cost_of(chip)
    w, slices = m.windows, chip.precision.input_slices
    partial_sums = m.driven_cols / m.array.cols_per_weight
    return {
        "windows": float(w),
        "activations": float(m.cycles),
        "accumulations": w * (partial_sums - m.outputs),
        "input_bits": float(w * m.driven_rows * chip.precision.input_bits),
        "output_bits": float(w * m.outputs * cost.digital.output_bits),
        "index_routes": float(w * m.index_rows * slices),
        "index_bit_reads": float(w * m.index_bits),
    }


def analytic_events(m: LayerMapping, chip: ChipConfig) -> Events:
    """Events of one image when every driven row carries a nonzero slice (upper bound)."""
    cost = cost_of(chip)
    w, slices = m.windows, chip.precision.input_slices
    return Events(
        stage_cycles=float(m.cycles * slices),
        dac_activations=float(w * m.driven_rows * slices),
        cell_reads=float(w * m.cell_slots * slices),
        adc_conversions=w * conversions_per_window(m, cost) * slices,
        **data_independent(m, chip),
    )


def area_breakdown(m: LayerMapping, chip: ChipConfig) -> dict[str, float]:
    """Area of the arrays a layer occupies and of their periphery (µm²)."""
    cost, p = cost_of(chip), chip.precision
    tiles, share = m.tiles, cost.periphery_sharing
    signals = column_signals(m, cost)
    adcs = math.ceil(signals / min(cost.adc.cols_per_adc, signals))
    registers = cost.buffer.input_register_area_um2 + cost.buffer.output_register_area_um2
    return {
        "arrays": tiles * cost.cell.array_area_um2,
        "adc": tiles * adcs * cost.adc.area_at(p.adc_bits) / share,
        "sample_hold": tiles * signals * cost.adc.sample_hold_area_um2 / share,
        "dac": tiles * m.array.rows * cost.dac.area_at(p.dac_bits) / share,
        "shift_add": tiles * cost.digital.shift_add_area_um2 / share,
        "registers": tiles * registers / share,
        "buffers": tiles * cost.buffer.shared_area_um2,
        "other": tiles * cost.other_area_um2,
        "index": m.index_rows * cost.index.area_um2,
        "pattern_index": m.index_bits * cost.index.bit_area_um2,
    }


def energy_breakdown(e: Events, chip: ChipConfig) -> dict[str, float]:
    """Energy of the events by component (pJ)."""
    cost, p = cost_of(chip), chip.precision
    return {
        "adc": e.adc_conversions * cost.adc.energy_at(p.adc_bits),
        "sample_hold": e.adc_conversions * cost.adc.sample_hold_energy_pj,
        "dac": e.dac_activations * cost.dac.energy_at(p.dac_bits),
        "cells": e.cell_reads * cost.cell.read_energy_pj,
        "shift_add": e.adc_conversions * cost.digital.shift_add_energy_pj,
        "accumulation": e.accumulations * cost.digital.add_energy_pj,
        "input_buffer": e.input_bits * cost.buffer.input_energy_pj_per_bit,
        "output_buffer": e.output_bits * cost.buffer.output_energy_pj_per_bit,
        "index": e.index_routes * cost.index.energy_pj,
        "pattern_index": e.index_bit_reads * cost.index.bit_energy_pj,
    }


def price(events: Events, m: LayerMapping, chip: ChipConfig) -> LayerCost:
    """Latency, energy and area of a layer's events (shared by the analytic model and
    the cycle simulator).  Cycles hidden behind the previous layer (``overlap_cycles``)
    shorten the latency in proportion."""
    cost = cost_of(chip)
    on_path = m.latency_cycles / m.cycles
    tree = math.ceil(math.log2(m.row_tiles)) if m.row_tiles > 1 else 0
    latency = events.stage_cycles * stage_ns(m, chip) * on_path
    latency += events.windows * tree * cost.digital.add_ns
    return LayerCost(
        name=m.layer.name, macs=m.layer.macs, latency_ns=latency,
        energy_breakdown_pj=energy_breakdown(events, chip),
        area_breakdown_um2=area_breakdown(m, chip), events=events,
    )


def _describe(array: ArrayConfig) -> str:
    return f"{array.label} ({array.cell_bits}-bit cells, {array.weight_bits}-bit {array.sign} weights)"


def check_chip(m: LayerMapping, chip: ChipConfig) -> None:
    """The chip must be costed and hold the arrays the layer was mapped on."""
    cost_of(chip)
    if m.array != chip.array:
        raise ConfigError(
            f"layer {m.layer.name!r}: mapped on {_describe(m.array)}, chip {chip.name!r} "
            f"has {_describe(chip.array)}"
        )


def estimate(mapping: LayerMapping, chip: ChipConfig) -> LayerCost:
    """Analytic latency, energy and area of one layer for one image."""
    check_chip(mapping, chip)
    return price(analytic_events(mapping, chip), mapping, chip)


@dataclass(frozen=True)
class CostTotals:
    """Network totals of the cost model for one image."""

    schedule: Schedule
    latency_ns: float
    """Per-image latency: the sum of the layers'."""
    interval_ns: float
    """Time between images: the latency (sequential) or the slowest layer (pipelined)."""
    bottleneck: str
    """The slowest layer when layers are pipelined ("" when sequential)."""
    energy_pj: float
    tops: float
    tops_per_w: float
    energy_breakdown_pj: dict[str, float]
    area_breakdown_um2: dict[str, float]
    cost_preset: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    """Totals a later stage adds (the cycle simulator's counts)."""

    @property
    def area_um2(self) -> float:
        return sum(self.area_breakdown_um2.values())

    def as_dict(self) -> dict[str, Any]:
        out = {
            "schedule": self.schedule, "latency_ns": self.latency_ns,
            "interval_ns": self.interval_ns, "bottleneck": self.bottleneck,
            "energy_pj": self.energy_pj, "area_um2": self.area_um2, "tops": self.tops,
            "tops_per_w": self.tops_per_w, "energy_breakdown_pj": dict(self.energy_breakdown_pj),
            "area_breakdown_um2": dict(self.area_breakdown_um2), "cost_preset": self.cost_preset,
        }
        out.update({f"energy_{k}_pj": v for k, v in self.energy_breakdown_pj.items()})
        return {**out, **self.extra}


def schedule_totals(costs: list[LayerCost], schedule: Schedule, preset: str = "") -> CostTotals:
    """Network totals: per-image latency (Σ layers), the interval between images
    (Σ sequential; the slowest layer when layers run pipelined on their own arrays),
    energy and area, throughput and efficiency."""
    if schedule not in SCHEDULES:
        raise ConfigError(f"schedule={schedule!r} (expected sequential or pipelined)")
    latency = sum(c.latency_ns for c in costs)
    slowest = max(costs, key=lambda c: c.latency_ns)
    interval = latency if schedule == "sequential" else slowest.latency_ns
    energy, ops = sum(c.energy_pj for c in costs), 2 * sum(c.macs for c in costs)
    return CostTotals(
        schedule=schedule, latency_ns=latency, interval_ns=interval,
        bottleneck=slowest.name if schedule == "pipelined" else "", energy_pj=energy,
        tops=ops / interval / 1e3, tops_per_w=ops / energy,
        energy_breakdown_pj={k: sum(c.energy_breakdown_pj[k] for c in costs)
                             for k in ENERGY_COMPONENTS},
        area_breakdown_um2={k: sum(c.area_breakdown_um2[k] for c in costs)
                            for k in costs[0].area_breakdown_um2},
        cost_preset=preset,
    )


def estimate_network(
    report: NetworkReport, chip: ChipConfig | None = None, schedule: Schedule = "sequential"
) -> NetworkReport:
    """``report`` with typed per-layer costs (latency/energy/area) and network totals."""
    chip = report.chip if chip is None else chip
    costs = tuple(estimate(m, chip) for m in report.mappings)
    report = replace(report, matmuls=place_matmuls([m.layer for m in report.matmuls], chip))
    return report.with_costs(costs, schedule_totals(list(costs), schedule, chip.name))
