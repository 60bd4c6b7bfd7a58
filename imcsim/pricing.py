"""Analytic latency, energy and area of one ``LayerMapping`` on a costed chip.

The model counts *events* per image and prices them with the chip's ``CostConfig``
(``imcsim.periphery``, ``imcsim.chipparts``); the cycle simulator (``imcsim.cyclesim``)
counts the same events on real activations and prices them with the same ``price``.
Network totals live in ``imcsim.cost``, which also re-exports these names.

Timing (ISAAC, Shafiee et al., ISCA 2016, §V).  A computing cycle (one tile activation,
``LayerMapping.cycles``) streams its inputs in ``PrecisionConfig.input_slices``
bit-slice stages.  In one stage the DACs drive the rows and the array is read
(``dac.settle_ns + cell.read_ns``); the ADC then converts, in turn, the
``cols_per_adc`` column signals its multiplexer serves (a fixed sequence: each takes
``conversion_at(adc_bits)``).  With sample-and-hold (``overlap_read``) the conversions
of one stage overlap the read of the next, so a stage lasts max(read, conversions),
else read + conversions.  Tiles of a layer are activated one after another, as in
the computing-cycle count of the mapping papers (``tile_schedule = "serial"``; with
``"parallel"``, NeuroSim's convention, a window's tiles run at once and the first term is
divided by the tiles per window), so

    latency = latency_cycles × input_slices × stage_ns + windows × ⌈log2 row_tiles⌉ × add_ns
              + data movement (SRAM buffer, interconnect) + post-processing

where the adder tree sums the row tiles' partial sums, and data movement and
post-processing, when the chip models them, follow the layer's compute (NeuroSim's
layer-by-layer convention: buffer and interconnect latency add to a layer's latency).

Events per window (analytic = every row driven with a nonzero slice, the data-free
upper bound): DAC activations = driven rows × slices; cell reads = Σ over tiles of
rows × columns in use × slices; conversions = columns in use (or weights in use with
analog weight combining) × slices, each followed by a shift-and-add and preceded by a
sample-and-hold capture; accumulations = partial sums − outputs; input bits = driven
rows × input bits; output bits = outputs × output bits; index routes = routed rows ×
slices; index bit reads = the layer's pattern-index bits (``index_bits``), once per
window.  The input bits are read from the SRAM buffer and the output bits written to
it, both cross the interconnect; each output passes the post-processing units.  Every
count per window is read from the mapping, whose counts are those of its placement
(``imcsim.mappers.placement``): the model never re-derives a mapper's layout.

Energy is reported by component (``ENERGY_COMPONENTS``) and by part of the chip
(``ENERGY_GROUPS``: adc, array, buffer, interconnect, digital, index).
Throughput counts 2 operations per MAC of the dense layer: TOPS = 2·MACs / latency,
TOPS/W = 2·MACs / energy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from imcsim.errors import ConfigError
from imcsim.hardware import ArrayConfig, ChipConfig
from imcsim.mappers.mapping import LayerMapping
from imcsim.periphery import CostConfig
from imcsim.techmodels import adc_survey_area_um2, adc_survey_energy_pj

__all__ = [
    "AREA_GROUPS", "ENERGY_COMPONENTS", "ENERGY_GROUPS", "Events", "LayerCost", "adc_area_um2",
    "adc_energy_pj", "analytic_events", "check_chip", "cost_of", "data_independent",
    "estimate", "group_area", "group_energy", "movement_ns", "price", "stage_ns",
]

ENERGY_GROUPS: dict[str, tuple[str, ...]] = {
    "adc": ("adc", "sample_hold"),
    "array": ("dac", "cells"),
    "buffer": ("input_buffer", "output_buffer", "sram_buffer"),
    "interconnect": ("interconnect",),
    "digital": ("shift_add", "accumulation", "postprocess"),
    "index": ("index", "pattern_index"),
}
"""Parts of the chip, each the sum of its event components (a partition of the energy).
``input_buffer``/``output_buffer`` are a preset's per-bit movement constants (registers,
buses); ``sram_buffer`` the capacity-priced SRAM accesses of ``[cost.memory]``."""
ENERGY_COMPONENTS: tuple[str, ...] = tuple(c for g in ENERGY_GROUPS.values() for c in g)
AREA_GROUPS: dict[str, tuple[str, ...]] = {
    "adc": ("adc", "sample_hold"),
    "array": ("arrays", "dac"),
    "buffer": ("registers", "buffers", "sram_buffers"),
    "digital": ("shift_add",),
    "index": ("index", "pattern_index"),
    "other": ("other",),
}
"""Parts of the chip by area (``area_breakdown_um2`` keys; ``sram_buffers`` is the chip-level
CACTI area that ``imcsim.cost`` adds once)."""


def group_energy(components: dict[str, float]) -> dict[str, float]:
    """Energy by part of the chip (``ENERGY_GROUPS``) from energy by component."""
    return {g: sum(components.get(c, 0.0) for c in parts) for g, parts in ENERGY_GROUPS.items()}


def group_area(components: dict[str, float]) -> dict[str, float]:
    """Area by part of the chip (``AREA_GROUPS``) from area by component."""
    return {g: sum(components.get(c, 0.0) for c in parts) for g, parts in AREA_GROUPS.items()}


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
    outputs: float = 0.0
    """Finished outputs (each passes the post-processing units once)."""


@dataclass(frozen=True)
class LayerCost:
    """Latency, energy (by component) and area (by component) of one layer, one image."""

    name: str
    macs: int
    latency_ns: float
    energy_breakdown_pj: dict[str, float]
    """Energy by event component (``ENERGY_COMPONENTS``)."""
    area_breakdown_um2: dict[str, float]
    events: Events

    @property
    def energy_pj(self) -> float:
        return sum(self.energy_breakdown_pj.values())

    @property
    def energy_groups_pj(self) -> dict[str, float]:
        """Energy by part of the chip (``ENERGY_GROUPS``)."""
        return group_energy(self.energy_breakdown_pj)

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
            f"chip {chip.name!r} has no [cost] section; use a costed preset "
            "(isaac, wang2022, neurosim-v1.3)"
        )
    return chip.cost


def adc_energy_pj(cost: CostConfig, bits: int) -> float:
    """Energy of one conversion at ``bits``: the preset's scaled figure or the survey model."""
    if cost.adc.model == "survey":
        assert cost.technology is not None  # checked by CostConfig
        rate_hz = 1e9 / cost.adc.conversion_at(bits)
        return adc_survey_energy_pj(bits, cost.technology.node_nm, rate_hz)
    return cost.adc.energy_at(bits)


def adc_area_um2(cost: CostConfig, bits: int) -> float:
    """Area of one ADC at ``bits``: the preset's scaled figure or the survey model."""
    if cost.adc.model == "survey":
        assert cost.technology is not None
        rate_hz = 1e9 / cost.adc.conversion_at(bits)
        return adc_survey_area_um2(bits, cost.technology.node_nm, rate_hz)
    return cost.adc.area_at(bits)


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
        "outputs": float(w * m.outputs),
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
        "adc": tiles * adcs * adc_area_um2(cost, p.adc_bits) / share,
        "sample_hold": tiles * signals * cost.adc.sample_hold_area_um2 / share,
        "dac": tiles * m.array.rows * cost.dac.area_at(p.dac_bits) / share,
        "shift_add": tiles * cost.digital.shift_add_area_um2 / share,
        "registers": tiles * registers / share,
        "buffers": tiles * cost.buffer.shared_area_um2,
        "other": tiles * cost.other_area_um2,
        "index": m.index_rows * cost.index.area_um2,
        "pattern_index": m.index_bits * cost.index.bit_area_um2,
    }


def moved_bits_energy(e: Events, m: LayerMapping, cost: CostConfig) -> dict[str, float]:
    """SRAM buffer accesses, interconnect transfers and post-processing of a layer (pJ)."""
    mem, net, post = cost.memory, cost.interconnect, cost.postprocess
    bits = e.input_bits + e.output_bits
    return {
        "sram_buffer": 0.0 if mem is None else
        e.input_bits * mem.read_pj_per_bit() + e.output_bits * mem.write_pj_per_bit(),
        "interconnect": 0.0 if net is None else
        bits * net.hops(m.tiles) * net.energy_pj_per_bit_hop,
        "postprocess": 0.0 if post is None else e.outputs * post.energy_per_output_pj(),
    }


def energy_breakdown(e: Events, m: LayerMapping, chip: ChipConfig) -> dict[str, float]:
    """Energy of the events by component (pJ), in ``ENERGY_COMPONENTS`` order."""
    cost, p = cost_of(chip), chip.precision
    parts = {
        "adc": e.adc_conversions * adc_energy_pj(cost, p.adc_bits),
        "sample_hold": e.adc_conversions * cost.adc.sample_hold_energy_pj,
        "dac": e.dac_activations * cost.dac.energy_at(p.dac_bits),
        "cells": e.cell_reads * cost.cell.read_energy_pj,
        "shift_add": e.adc_conversions * cost.digital.shift_add_energy_pj,
        "accumulation": e.accumulations * cost.digital.add_energy_pj,
        "input_buffer": e.input_bits * cost.buffer.input_energy_pj_per_bit,
        "output_buffer": e.output_bits * cost.buffer.output_energy_pj_per_bit,
        "index": e.index_routes * cost.index.energy_pj,
        "pattern_index": e.index_bit_reads * cost.index.bit_energy_pj,
        **moved_bits_energy(e, m, cost),
    }
    return {k: parts[k] for k in ENERGY_COMPONENTS}


def movement_ns(e: Events, m: LayerMapping, cost: CostConfig) -> float:
    """Time of a layer's buffer accesses, transfers and post-processing (0 if unmodelled):
    one port access per ``width_bits`` bits, one network cycle per ``width_bits`` plus the
    hops' latency once, and the post-processing's unhidden time per output."""
    mem, net, post = cost.memory, cost.interconnect, cost.postprocess
    time = 0.0
    if mem is not None:
        time += (e.input_bits + e.output_bits) / mem.width_bits * mem.access_ns()
    if net is not None:
        transfers = (e.input_bits + e.output_bits) / net.width_bits
        time += transfers * net.cycle_ns + net.hops(m.tiles) * net.latency_ns_per_hop
    if post is not None:
        time += e.outputs * post.ns_per_output
    return time


def price(events: Events, m: LayerMapping, chip: ChipConfig) -> LayerCost:
    """Latency, energy and area of a layer's events (shared by the analytic model and
    the cycle simulator).  Cycles hidden behind the previous layer (``overlap_cycles``)
    shorten the latency in proportion."""
    cost = cost_of(chip)
    on_path = m.latency_cycles / m.cycles
    tree = math.ceil(math.log2(m.row_tiles)) if m.row_tiles > 1 else 0
    at_once = m.tiles if cost.tile_schedule == "parallel" else 1
    latency = events.stage_cycles / at_once * stage_ns(m, chip) * on_path
    latency += events.windows * tree * cost.digital.add_ns + movement_ns(events, m, cost)
    return LayerCost(
        name=m.layer.name, macs=m.layer.macs, latency_ns=latency,
        energy_breakdown_pj=energy_breakdown(events, m, chip),
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
