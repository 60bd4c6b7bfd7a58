"""Network totals of the cost model; the per-layer model is ``imcsim.pricing``.

``estimate_network`` prices every layer of a ``NetworkReport`` (``imcsim.pricing``) and
its activation products (``imcsim.matmul``), and sums them into ``CostTotals``: per-image
latency (Σ layers), the interval between images (sequential: the latency; pipelined: the
slowest layer), energy by component and by part of the chip, and area.  Chip-level
parts that exist once whatever the network (the SRAM buffers of ``[cost.memory]``) add
their area once.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, get_args

from imcsim.errors import ConfigError
from imcsim.hardware import ChipConfig, load_chip
from imcsim.mappers.base import Schedule
from imcsim.matmul import place_matmuls
from imcsim.pricing import (
    AREA_GROUPS,
    ENERGY_COMPONENTS,
    ENERGY_GROUPS,
    Events,
    LayerCost,
    analytic_events,
    check_chip,
    cost_of,
    data_independent,
    estimate,
    group_area,
    group_energy,
    price,
    stage_ns,
)
from imcsim.report import NetworkReport

__all__ = [
    "AREA_GROUPS", "CostTotals", "ENERGY_COMPONENTS", "ENERGY_GROUPS", "Events", "LayerCost", "SCHEDULES",
    "analytic_events", "chip_area_um2", "check_chip", "cost_of", "data_independent",
    "estimate", "estimate_network", "price", "schedule_totals", "stage_ns", "with_cost",
]

SCHEDULES: tuple[str, ...] = get_args(Schedule)


def with_cost(chip: ChipConfig, preset: str) -> ChipConfig:
    """``chip`` (array, precisions) costed with the ``[cost]`` section of ``preset``."""
    return chip.model_copy(update={"cost": cost_of(load_chip(preset))})


def chip_area_um2(chip: ChipConfig | None) -> dict[str, float]:
    """Area of the chip-level parts that exist once (the SRAM buffers), µm²."""
    memory = None if chip is None or chip.cost is None else chip.cost.memory
    return {"sram_buffers": 0.0 if memory is None else memory.area_um2()}


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
    """Energy by event component (``ENERGY_COMPONENTS``)."""
    area_breakdown_um2: dict[str, float]
    cost_preset: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    """Totals a later stage adds (the cycle simulator's counts)."""

    @property
    def area_um2(self) -> float:
        return sum(self.area_breakdown_um2.values())

    @property
    def energy_groups_pj(self) -> dict[str, float]:
        """Energy by part of the chip (``ENERGY_GROUPS``: adc, array, buffer, interconnect,
        digital, index)."""
        return group_energy(self.energy_breakdown_pj)

    def as_dict(self) -> dict[str, Any]:
        """JSON totals: ``energy_breakdown_pj`` by part of the chip, ``energy_components_pj``
        and the flat ``energy_<component>_pj`` keys by event component; area by component
        (``area_breakdown_um2``) and by part (``area_parts_um2``)."""
        out = {
            "schedule": self.schedule, "latency_ns": self.latency_ns,
            "interval_ns": self.interval_ns, "bottleneck": self.bottleneck,
            "energy_pj": self.energy_pj, "area_um2": self.area_um2, "tops": self.tops,
            "tops_per_w": self.tops_per_w, "energy_breakdown_pj": self.energy_groups_pj,
            "energy_components_pj": dict(self.energy_breakdown_pj),
            "area_breakdown_um2": dict(self.area_breakdown_um2),
            "area_parts_um2": group_area(self.area_breakdown_um2), "cost_preset": self.cost_preset,
        }
        out.update({f"energy_{k}_pj": v for k, v in self.energy_breakdown_pj.items()})
        return {**out, **self.extra}


def schedule_totals(
    costs: list[LayerCost], schedule: Schedule, preset: str = "", chip: ChipConfig | None = None
) -> CostTotals:
    """Network totals: per-image latency (Σ layers), the interval between images
    (Σ sequential; the slowest layer when layers run pipelined on their own arrays),
    energy and area (plus ``chip``'s chip-level parts once), throughput and efficiency."""
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
        area_breakdown_um2={**{k: sum(c.area_breakdown_um2[k] for c in costs)
                               for k in costs[0].area_breakdown_um2}, **chip_area_um2(chip)},
        cost_preset=preset,
    )


def estimate_network(
    report: NetworkReport, chip: ChipConfig | None = None, schedule: Schedule = "sequential"
) -> NetworkReport:
    """``report`` with typed per-layer costs (latency/energy/area) and network totals."""
    chip = report.chip if chip is None else chip
    costs = tuple(estimate(m, chip) for m in report.mappings)
    report = replace(report, matmuls=place_matmuls([m.layer for m in report.matmuls], chip))
    return report.with_costs(costs, schedule_totals(list(costs), schedule, chip.name, chip))
