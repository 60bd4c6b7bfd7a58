"""Periphery and cost configuration of a chip: per-event energies, times and areas.

Every number is per *event* (one ADC conversion, one DAC activation, one cell read,
one bit moved) or per *instance* (one ADC, one DAC, one array), so the cost model in
``imcsim.cost`` and the cycle simulator in ``imcsim.cyclesim`` price the same event
counts.  Presets (``mappings/chips/*.toml``, section ``[cost]``) cite where each value
comes from and mark the ones that are assumptions.

Converter scaling with resolution follows ISAAC's own method (Shafiee et al.,
ISCA 2016, §VII): "we scaled the power/area of the vref buffer, memory, and clock
linearly, and the power/area of the capacitive DAC exponentially".  A value given at
``ref_bits`` is therefore split into a linear and an exponential part::

    value(b) = value(ref) · ((1 − f) · b / ref + f · 2^(b − ref))

with ``f`` the exponential fraction at ``ref_bits``.  ``f = 0`` is linear in bits
(a SAR ADC's conversion time: one comparison per bit), ``f = 1`` doubles per bit.

Every figure is finite and in a physical range: energies in [0, ``MAX_ENERGY_PJ``] per
event, areas in [0, ``MAX_AREA_UM2``] per instance, times in [0, ``MAX_TIME_NS``],
reference resolutions in 1..``MAX_BITS``; a value outside is a unit or typing mistake
(e.g. ``energy_pj = 1.5e3`` meant as fJ), refused with the field named.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from imcsim._config import StrictModel
from imcsim.chipparts import InterconnectConfig, MemoryConfig, PostProcessConfig, TechnologyConfig

__all__ = ["MAX_AREA_UM2", "MAX_BITS", "MAX_ENERGY_PJ", "MAX_TIME_NS", "AdcConfig",
           "BufferConfig", "CellConfig", "CostConfig", "DacConfig", "DigitalConfig",
           "AdcModel", "IndexConfig", "TileSchedule", "WeightCombine", "scale_bits"]

MAX_ENERGY_PJ = 1e6
"""Largest energy per event accepted (1 µJ): ~10⁶× an ISAAC ADC conversion (1.56 pJ) or
a Wang et al. (VLSI 2022) macro activation; a larger figure is a unit mistake."""
MAX_AREA_UM2 = 1e9
"""Largest area per instance accepted (1000 mm², above the ~860 mm² reticle limit)."""
MAX_TIME_NS = 1e9
"""Largest time per event accepted (1 s; ISAAC's stage is 100 ns)."""
MAX_BITS = 16
"""Largest converter reference resolution (published IMC ADCs/DACs: 1–10 bits)."""

WeightCombine = Literal["digital", "analog"]
AdcModel = Literal["scaled", "survey"]
TileSchedule = Literal["serial", "parallel"]
MatmulPlacement = Literal["digital", "crossbar"]


def scale_bits(value: float, bits: int, ref_bits: int, exp_fraction: float) -> float:
    """ISAAC's converter scaling: linear part ∝ bits, exponential part ∝ 2^bits."""
    linear = (1.0 - exp_fraction) * bits / ref_bits
    return value * (linear + exp_fraction * 2.0 ** (bits - ref_bits))


class AdcConfig(StrictModel):
    """Column ADCs: shared by ``cols_per_adc`` column signals through a multiplexer."""

    model: AdcModel = "scaled"
    """How energy and area depend on the resolution: ``scaled`` — the figures at
    ``ref_bits`` with ISAAC's linear+exponential rule (``scale_bits``); ``survey`` — the
    Murmann-survey model of hwcomponents-adc/CiMLoop (``imcsim.techmodels``) at the
    preset's ``technology.node_nm`` and one conversion per ``conversion_at(bits)``
    (``energy_pj``/``area_um2`` are then unused: give 0)."""
    cols_per_adc: int = Field(ge=1, le=65536)
    """Column signals one ADC converts in turn (ISAAC: 128, one ADC per array)."""
    ref_bits: int = Field(ge=1, le=MAX_BITS)
    """Resolution at which ``energy_pj``, ``area_um2`` and ``conversion_ns`` are given."""
    energy_pj: float = Field(ge=0, le=MAX_ENERGY_PJ)
    """Energy of one conversion at ``ref_bits``."""
    energy_exp_fraction: float = Field(default=0.0, ge=0, le=1)
    """Exponential share of the energy at ``ref_bits`` (see ``scale_bits``)."""
    area_um2: float = Field(ge=0, le=MAX_AREA_UM2)
    """Area of one ADC at ``ref_bits``."""
    area_exp_fraction: float = Field(default=0.0, ge=0, le=1)
    """Exponential share of the area at ``ref_bits``."""
    conversion_ns: float = Field(gt=0, le=MAX_TIME_NS)
    """Time of one conversion at ``ref_bits``."""
    time_exp_fraction: float = Field(default=0.0, ge=0, le=1)
    """Exponential share of the conversion time (0: SAR, one comparison per bit)."""
    sample_hold_energy_pj: float = Field(default=0.0, ge=0, le=MAX_ENERGY_PJ)
    """Energy of one sample-and-hold capture (one per conversion)."""
    sample_hold_area_um2: float = Field(default=0.0, ge=0, le=MAX_AREA_UM2)
    """Area of one sample-and-hold circuit (one per column signal)."""
    overlap_read: bool = True
    """Sample-and-hold latches the columns, so conversions overlap the next array read:
    a bit-slice stage takes max(read, conversions) instead of read + conversions."""
    weight_combine: WeightCombine = "digital"
    """``digital``: every physical column is converted and weight slices are shift-added
    (ISAAC); ``analog``: a weight's columns are combined before one conversion
    (C-2C ladder, Wang et al., VLSI 2022)."""

    def energy_at(self, bits: int) -> float:
        return scale_bits(self.energy_pj, bits, self.ref_bits, self.energy_exp_fraction)

    def area_at(self, bits: int) -> float:
        return scale_bits(self.area_um2, bits, self.ref_bits, self.area_exp_fraction)

    def conversion_at(self, bits: int) -> float:
        return scale_bits(self.conversion_ns, bits, self.ref_bits, self.time_exp_fraction)


class DacConfig(StrictModel):
    """Row DACs (one per word line): drive a ``dac_bits`` input slice per stage."""

    ref_bits: int = Field(ge=1, le=MAX_BITS)
    """Resolution at which ``energy_pj`` and ``area_um2`` are given."""
    energy_pj: float = Field(ge=0, le=MAX_ENERGY_PJ)
    """Energy of one row activation (a nonzero input slice driven) at ``ref_bits``."""
    energy_exp_fraction: float = Field(default=1.0, ge=0, le=1)
    """Exponential share of the energy (capacitive DAC: exponential, ISAAC §VII)."""
    area_um2: float = Field(ge=0, le=MAX_AREA_UM2)
    """Area of one DAC at ``ref_bits``."""
    area_exp_fraction: float = Field(default=1.0, ge=0, le=1)
    """Exponential share of the area."""
    settle_ns: float = Field(default=0.0, ge=0, le=MAX_TIME_NS)
    """Time the DAC adds before each array read (0: inside the read time)."""

    def energy_at(self, bits: int) -> float:
        return scale_bits(self.energy_pj, bits, self.ref_bits, self.energy_exp_fraction)

    def area_at(self, bits: int) -> float:
        return scale_bits(self.area_um2, bits, self.ref_bits, self.area_exp_fraction)


class CellConfig(StrictModel):
    """The crossbar itself."""

    read_energy_pj: float = Field(ge=0, le=MAX_ENERGY_PJ)
    """Energy of one cell read: one driven row × one column in use, one input slice."""
    read_ns: float = Field(gt=0, le=MAX_TIME_NS)
    """Time of one array read (one input bit-slice on every row)."""
    array_area_um2: float = Field(ge=0, le=MAX_AREA_UM2)
    """Area of one array (cells and wires)."""


class DigitalConfig(StrictModel):
    """Digital recombination after the ADCs."""

    shift_add_energy_pj: float = Field(ge=0, le=MAX_ENERGY_PJ)
    """One shift-and-add of a converted value into its partial sum (per conversion)."""
    shift_add_area_um2: float = Field(ge=0, le=MAX_AREA_UM2)
    """Shift-and-add units of one array."""
    add_energy_pj: float = Field(ge=0, le=MAX_ENERGY_PJ)
    """One addition of two partial sums across row tiles (digital accumulation)."""
    add_ns: float = Field(ge=0, le=MAX_TIME_NS)
    """Time of one level of the adder tree that sums the row tiles of a window."""
    output_bits: int = Field(ge=1, le=64)
    """Bits of one output written back to the buffer."""


class BufferConfig(StrictModel):
    """Input/output buffers and registers that feed the arrays and collect their outputs."""

    input_energy_pj_per_bit: float = Field(ge=0, le=MAX_ENERGY_PJ)
    """Moving one input bit from the buffer into an array's input register and DAC."""
    output_energy_pj_per_bit: float = Field(ge=0, le=MAX_ENERGY_PJ)
    """Moving one output bit from an array's output register to the buffer."""
    input_register_area_um2: float = Field(ge=0, le=MAX_AREA_UM2)
    """Input register of one array."""
    output_register_area_um2: float = Field(ge=0, le=MAX_AREA_UM2)
    """Output register of one array."""
    shared_area_um2: float = Field(default=0.0, ge=0, le=MAX_AREA_UM2)
    """Share of one array in the buffers and buses that serve many arrays."""


class IndexConfig(StrictModel):
    """Index/multiplexer logic that routes inputs to the kept rows of a pruned layer, and
    the pattern index a pattern-pruned layer stores (``LayerMapping.index_bits``)."""

    energy_pj: float = Field(ge=0, le=MAX_ENERGY_PJ)
    """Routing one input slice to one kept row (per routed row, per bit-slice stage)."""
    area_um2: float = Field(ge=0, le=MAX_AREA_UM2)
    """Index register and multiplexer of one routed row."""
    bit_energy_pj: float = Field(default=0.0, ge=0, le=MAX_ENERGY_PJ)
    """Reading one pattern-index bit (the whole index is read once per parallel window)."""
    bit_area_um2: float = Field(default=0.0, ge=0, le=MAX_AREA_UM2)
    """Storing one pattern-index bit."""


class CostConfig(StrictModel):
    """Everything the cost model needs beyond the array geometry and precisions."""

    source: str = ""
    """Where the numbers come from."""
    adc: AdcConfig
    dac: DacConfig
    cell: CellConfig
    digital: DigitalConfig
    buffer: BufferConfig
    index: IndexConfig
    other_area_um2: float = Field(default=0.0, ge=0, le=MAX_AREA_UM2)
    """Share of one array in other on-chip logic (router, pooling, activation units)."""
    periphery_sharing: int = Field(default=1, ge=1, le=65536)
    """Arrays that take turns on one set of ADCs, DACs, S+H and registers (their area
    is divided by this); Wang et al.'s 512-row macro activates one of 8 row groups."""
    tile_schedule: TileSchedule = "serial"
    """How the array tiles of one parallel window run: ``serial`` — one after another, the
    computing-cycle count of the mapping papers (ISAAC §V); ``parallel`` — all at once,
    as NeuroSim activates every sub-array of a layer (the window then lasts one tile's
    stages)."""
    technology: TechnologyConfig | None = None
    """Node and supply of the figures (needed by the survey ADC and by ``--node``)."""
    memory: MemoryConfig | None = None
    """Global SRAM buffers priced by capacity (CACTI); ``None``: not modelled."""
    interconnect: InterconnectConfig | None = None
    """Buffer-to-tile network (H-tree or mesh); ``None``: not modelled."""
    postprocess: PostProcessConfig | None = None
    """Digital activation/normalization/pooling per output; ``None``: not modelled."""

    @model_validator(mode="after")
    def _check_survey(self) -> CostConfig:
        if self.adc.model == "survey" and self.technology is None:
            raise ValueError("adc.model = 'survey' needs a [cost.technology] section (node_nm)")
        return self


class MatmulConfig(StrictModel):
    """Where activation×activation products (QKᵀ, A·V) run, and what they cost there.

    Section ``[matmul]`` of a chip TOML (optional; these defaults otherwise).  Neither
    operand of such a product is known before the input arrives, so it cannot stay in
    the arrays: either a ``digital`` unit computes it, or the second operand is
    ``crossbar``-written into arrays for every input and the first is streamed through
    them (the approach of ReRAM transformer accelerators such as ReTransformer,
    Yang et al., ICCAD 2020).  ``imcsim.matmul`` prices both.
    """

    placement: MatmulPlacement = "digital"
    """``digital``: a digital MAC unit; ``crossbar``: write the second operand into arrays."""
    digital_mac_energy_pj: float = Field(default=0.23, ge=0)
    """One 8-bit multiply-accumulate in digital logic: 0.2 pJ multiply + 0.03 pJ add at
    45 nm (Horowitz, "Computing's energy problem", ISSCC 2014, Fig. 1.1.9)."""
    digital_macs_per_ns: float = Field(default=76.8, gt=0)
    """Digital unit throughput.  Assumption: 64 MAC lanes at ISAAC's 1.2 GHz clock."""
    write_energy_pj_per_cell: float = Field(default=8.0, ge=0)
    """Programming one cell: one 50 ns, 4 V pulse into R_on = 100 kΩ, V²/R·t = 8 pJ (the
    RRAM defaults of NeuroSim V2.1, ``Training_pytorch/NeuroSIM/Param.cpp``: writeVoltage
    4, writePulseWidth 50e-9, resistanceOn 100e3; an upper bound, a cell set to R_off
    draws 10× less)."""
    write_ns_per_row: float = Field(default=50.0, gt=0)
    """Programming one array row (all its columns in parallel): one write pulse, NeuroSim
    V2.1's writePulseWidth.  Arrays are written in parallel, their rows one by one."""
    endurance_writes: float = Field(default=1e6, gt=0)
    """Writes a cell survives.  Assumption: the low end of the 10⁶–10¹² range of
    metal-oxide RRAM (Wong et al., "Metal–Oxide RRAM", Proc. IEEE 100(6), 2012)."""
