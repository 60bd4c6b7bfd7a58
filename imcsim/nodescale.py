"""Move a chip's cost figures to another CMOS node and supply (``--node``, ``--supply``).

Rule: Stillmaker & Baas, "Scaling equations for the accurate prediction of CMOS device
performance from 180 nm to 7 nm", Integration 58 (2017) — energy by the per-node
quadratic in the supply, area by the node-to-node table, delay in proportion to the node
(``imcsim.techmodels``).  What scales: every CMOS periphery figure (ADC, S+H, DAC,
digital units, buffers and registers, index logic, SRAM, interconnect, post-processing).
What does not: the cell's read energy and time and the array area — device properties
(RRAM conductance, read pulse) that CMOS scaling does not describe; a survey-model ADC
is re-evaluated at the new node instead of scaled.  The preset must state its node and
supply (``[cost.technology]``).
"""

from __future__ import annotations

from typing import Any

from imcsim.errors import ConfigError
from imcsim.hardware import ChipConfig
from imcsim.periphery import CostConfig
from imcsim.techmodels import area_scale, delay_scale, energy_scale

__all__ = ["ENERGY_FIELDS", "rescale_chip", "rescale_cost"]

ENERGY_FIELDS: dict[str, tuple[str, ...]] = {
    "adc": ("energy_pj", "sample_hold_energy_pj"),
    "dac": ("energy_pj",),
    "digital": ("shift_add_energy_pj", "add_energy_pj"),
    "buffer": ("input_energy_pj_per_bit", "output_energy_pj_per_bit"),
    "index": ("energy_pj", "bit_energy_pj"),
    "interconnect": ("energy_pj_per_bit_hop",),
    "postprocess": ("activation_energy_pj", "normalization_energy_pj", "pooling_energy_pj"),
    "memory": ("energy_scale",),
}
"""Energy fields scaled, by section of ``[cost]``."""
_AREA_FIELDS: dict[str, tuple[str, ...]] = {
    "adc": ("area_um2", "sample_hold_area_um2"),
    "dac": ("area_um2",),
    "digital": ("shift_add_area_um2",),
    "buffer": ("input_register_area_um2", "output_register_area_um2", "shared_area_um2"),
    "index": ("area_um2", "bit_area_um2"),
    "memory": ("area_scale",),
}
_TIME_FIELDS: dict[str, tuple[str, ...]] = {
    "adc": ("conversion_ns",),
    "dac": ("settle_ns",),
    "digital": ("add_ns",),
    "interconnect": ("latency_ns_per_hop", "cycle_ns"),
    "postprocess": ("ns_per_output",),
}


def _scale(data: dict[str, Any], fields: dict[str, tuple[str, ...]], factor: float) -> None:
    for section, names in fields.items():
        part = data.get(section)
        if part is None:
            continue
        for name in names:
            part[name] = part[name] * factor


def rescale_cost(cost: CostConfig, node_nm: float | None, supply_v: float | None = None) -> CostConfig:
    """``cost`` with its CMOS figures moved to ``node_nm`` and ``supply_v`` (``None``: keep)."""
    tech = cost.technology
    if tech is None:
        raise ConfigError("--node/--supply: the cost preset states no [cost.technology] "
                          "(node_nm, supply_v) to scale from")
    to_nm = tech.node_nm if node_nm is None else node_nm
    to_v = tech.supply_v if supply_v is None else supply_v
    data = cost.model_dump()
    data["other_area_um2"] *= area_scale(to_nm, tech.node_nm)
    _scale(data, ENERGY_FIELDS, energy_scale(to_nm, tech.node_nm, to_v, tech.supply_v))
    _scale(data, _AREA_FIELDS, area_scale(to_nm, tech.node_nm))
    _scale(data, _TIME_FIELDS, delay_scale(to_nm, tech.node_nm))
    data["technology"] = {**data["technology"], "node_nm": to_nm, "supply_v": to_v,
                          "source": f"{tech.source} (rescaled from {tech.node_nm:g} nm, "
                                    f"{tech.supply_v:g} V: Stillmaker & Baas 2017)"}
    return CostConfig.parse(data, "rescaled cost")  # type: ignore[return-value]


def rescale_chip(chip: ChipConfig, node_nm: float | None, supply_v: float | None = None) -> ChipConfig:
    """``chip`` with its ``[cost]`` rescaled (unchanged when both are ``None``)."""
    if (node_nm is None and supply_v is None) or chip.cost is None:
        if chip.cost is None and (node_nm is not None or supply_v is not None):
            raise ConfigError(f"--node/--supply: chip {chip.name!r} has no [cost] section")
        return chip
    return chip.model_copy(update={"cost": rescale_cost(chip.cost, node_nm, supply_v)})
