"""Settings of the functional crossbar simulation (``to_crossbar``) and their resolution.

Precisions come from the report's chip (``ArrayConfig.weight_bits/cell_bits/sign``,
``PrecisionConfig.input_bits/dac_bits/adc_bits``); any field set here overrides the
chip's value.  The mapping itself (which weights share a column) is never redone: it is
the report's ``LayerMapping``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from pydantic import Field, field_validator, model_validator

from imcsim._config import StrictModel
from imcsim.errors import ConfigError
from imcsim.hardware import ChipConfig, SignEncoding, override_chip

__all__ = ["CrossbarConfig", "LayerSettings", "parse_calibration", "resolve_settings"]


_NON_IDEAL = ("programming_noise", "read_noise", "stuck_on_rate", "stuck_off_rate",
              "weight_bits", "cell_bits", "input_bits", "dac_bits", "adc_bits",
              "wire_resistance_ohm", "drift_time_s", "adc_offset_lsb", "adc_dnl_lsb")
"""Fields that have no meaning on an ideal chip (a value given there is a contradiction)."""


class CrossbarConfig(StrictModel):
    """How the chip computes: quantization, slicing, ADC range, non-idealities, seed."""

    ideal: bool = False
    """Turn every quantization and every noise source off (reproduces the float model)."""
    slicing: Literal["full", "none"] = "full"
    """``full``: bit-serial inputs (``dac_bits`` per cycle) × bit-sliced weights
    (``cell_bits`` per cell), one ADC read per input slice, weight slice, tile and column,
    then shift-and-add.  ``none``: quantized weights and inputs applied whole, one ADC read
    per tile and column (cheaper; the ADC sees the whole partial sum)."""
    adc_range: Literal["fixed", "calibrated"] = "fixed"
    """``fixed``: full scale = the worst case of a column (all array rows at the largest
    input slice and conductance).  ``calibrated``: set from the partial sums the
    calibration images produce, by ``adc_calibration``."""
    adc_calibration: str = "percentile"
    """How a calibrated ADC range is chosen (``imcsim.nn.calibration``): ``max`` (the
    largest partial sum seen), ``percentile[:P]`` (the P-th percentile of |partial sum|,
    P = 99.9 by default; a fraction ≤ 1 − P/100 of the calibration conversions clip) or
    ``analytic[:K]`` (mean + K·σ of every column's sum, K = 4 by default, from the cells
    and the per-channel input bit statistics: one float pass, no sliced MVM)."""
    adc_scope: Literal["layer", "tile"] = "layer"
    """One calibrated range per layer, or one per array tile (each tile's ADCs)."""
    adc_step: Literal["unit", "exact"] = "unit"
    """``unit``: the ADC step is commensurate with the unit current (one input level × one
    conductance level): the smallest whole multiple (an ADC that drops LSBs of the exact
    column sum) or whole fraction of it that covers the range; ``exact``: step = range /
    levels, any real number (see ``imcsim.nn.adc.adc_step``)."""
    input_range: Literal["dynamic", "calibrated"] = "dynamic"
    """``dynamic``: each image's inputs to a layer are scaled by their own maximum.
    ``calibrated``: one scale per layer, the maximum over the calibration images."""
    calibration_images: int = Field(default=32, ge=1)
    """Images (at most) used when a range is calibrated."""
    batch_size: int = Field(default=64, ge=1)
    """Images per forward pass during calibration."""
    programming_noise: float = Field(default=0.0, ge=0)
    """Relative σ of each cell's programmed conductance (drawn once, static)."""
    read_noise: float = Field(default=0.0, ge=0)
    """Relative σ of each cell's conductance per read (fresh at every MVM)."""
    stuck_on_rate: float = Field(default=0.0, ge=0, le=1)
    """Fraction of cells stuck at the highest conductance."""
    stuck_off_rate: float = Field(default=0.0, ge=0, le=1)
    """Fraction of cells stuck at zero conductance."""
    wire_resistance_ohm: float | None = Field(default=None, ge=0)
    """Override of the chip's ``device.wire_resistance_ohm`` (IR drop; 0 = ideal wires)."""
    ir_drop_solver: Literal["exact", "linear"] = "exact"
    """``exact``: every tile's resistor network solved (``imcsim._irdrop``); ``linear``:
    its first-order expansion in the wire resistance (fast, approximate)."""
    ir_drop_compensation: bool = False
    """Global IR-drop compensation: a per-layer digital gain from an all-ones reference
    read (the layer's mean IR loss; as ``drift_compensation``)."""
    drift_time_s: float | None = Field(default=None, gt=0)
    """Read time after programming for conductance drift (None: no drift; ≥ the chip's
    ``device.drift_t0_s``)."""
    drift_compensation: bool = False
    """Global drift compensation: a digital gain per layer from an all-ones reference read
    at t₀ and at t (aihwkit's ``GlobalDriftCompensation``)."""
    adc_offset_lsb: float | None = Field(default=None, ge=0)
    """Override of the chip's ``device.adc_offset_lsb``."""
    adc_dnl_lsb: float | None = Field(default=None, ge=0)
    """Override of the chip's ``device.adc_dnl_lsb``."""
    seed: int = Field(default=0, ge=0, le=2**63 - 1)
    """Seed of programming noise, faults, read noise, drift and ADC deviations."""
    weight_bits: int | None = Field(default=None, ge=2)
    """Override of ``ArrayConfig.weight_bits``."""
    cell_bits: int | None = Field(default=None, ge=1)
    """Override of ``ArrayConfig.cell_bits``."""
    sign: SignEncoding | None = None
    """Override of ``ArrayConfig.sign``."""
    input_bits: int | None = Field(default=None, ge=2)
    """Override of ``PrecisionConfig.input_bits``."""
    dac_bits: int | None = Field(default=None, ge=1)
    """Override of ``PrecisionConfig.dac_bits``."""
    adc_bits: int | None = Field(default=None, ge=1)
    """Override of ``PrecisionConfig.adc_bits``."""
    max_block_elements: int = Field(default=2**22, ge=2**16)
    """Memory bound: images are processed in chunks whose partial-sum tensor stays below it."""

    @field_validator("adc_calibration")
    @classmethod
    def _method(cls, value: str) -> str:
        parse_calibration(value)
        return value

    @model_validator(mode="after")
    def _check(self) -> CrossbarConfig:
        if self.ideal:
            clash = [f for f in _NON_IDEAL if getattr(self, f)]
            if clash:
                raise ValueError(f"ideal=True turns quantization and noise off, but {clash[0]}="
                                 f"{getattr(self, clash[0])!r} asks for it")
        if self.stuck_on_rate + self.stuck_off_rate > 1:
            raise ValueError(
                f"stuck_on_rate + stuck_off_rate = {self.stuck_on_rate + self.stuck_off_rate} > 1"
            )
        return self

    @property
    def needs_calibration(self) -> bool:
        return not self.ideal and "calibrated" in (self.adc_range, self.input_range)


_METHOD = re.compile(r"^(max|percentile|analytic)(?::([0-9]*\.?[0-9]+))?$")
_DEFAULT_PARAMETER = {"max": None, "percentile": 99.9, "analytic": 4.0}


def parse_calibration(text: str) -> tuple[str, float | None]:
    """``"percentile:99.9"`` → ``("percentile", 99.9)``; defaults filled in."""
    match = _METHOD.match(text.strip())
    if match is None or (match[1] == "max" and match[2] is not None):
        raise ValueError(f"adc_calibration {text!r}: expected max, percentile[:P] or analytic[:K]")
    value = _DEFAULT_PARAMETER[match[1]] if match[2] is None else float(match[2])
    if match[1] == "percentile" and not 0 < value <= 100:  # type: ignore[operator]
        raise ValueError(f"adc_calibration {text!r}: the percentile must be in (0, 100]")
    return match[1], value


@dataclass(frozen=True)
class LayerSettings:
    """Resolved numbers every crossbar layer uses (chip values with overrides applied)."""

    ideal: bool
    sliced: bool
    rows: int
    weight_bits: int
    cell_bits: int
    sign: str
    input_bits: int
    dac_bits: int
    adc_bits: int
    adc_range: str
    input_range: str
    programming_noise: float
    read_noise: float
    stuck_on_rate: float
    stuck_off_rate: float
    seed: int
    max_block_elements: int
    cols: int = 0
    cols_per_weight: int = 1
    cols_per_adc: int = 0
    adc_calibration: str = "max"
    adc_parameter: float | None = None
    adc_scope: str = "layer"
    adc_step: str = "exact"
    wire_resistance_ohm: float = 0.0
    cell_on_resistance_ohm: float | None = None
    cell_off_resistance_ohm: float | None = None
    ir_drop_solver: str = "exact"
    ir_drop_compensation: bool = False
    drift_time_s: float | None = None
    drift_nu_mean: float = 0.0
    drift_nu_std: float = 0.0
    drift_t0_s: float = 20.0
    drift_compensation: bool = False
    adc_offset_lsb: float = 0.0
    adc_dnl_lsb: float = 0.0


def resolve_settings(chip: ChipConfig, config: CrossbarConfig) -> LayerSettings:
    """The chip's precisions with ``config``'s overrides, validated together."""
    chip = override_chip(chip, **{f: getattr(config, f) for f in (
        "weight_bits", "cell_bits", "sign", "input_bits", "dac_bits", "adc_bits")})
    array, prec = chip.array, chip.precision
    if not config.ideal:
        for field, value in (("weight_bits", array.weight_bits), ("input_bits", prec.input_bits)):
            if value < 2:
                raise ConfigError(
                    f"{field}={value}: the accuracy simulation needs at least 2 bits "
                    f"(sign + magnitude); give --{field.replace('_', '-')} or --ideal"
                )
    method, parameter = parse_calibration(config.adc_calibration)
    device = _device(chip, config)
    adc = chip.cost.adc.cols_per_adc if chip.cost is not None else array.cols
    return LayerSettings(
        ideal=config.ideal, sliced=config.slicing == "full", rows=array.rows,
        weight_bits=array.weight_bits, cell_bits=array.cell_bits, sign=array.sign,
        input_bits=prec.input_bits, dac_bits=prec.dac_bits, adc_bits=prec.adc_bits,
        adc_range=config.adc_range, input_range=config.input_range,
        programming_noise=config.programming_noise, read_noise=config.read_noise,
        stuck_on_rate=config.stuck_on_rate, stuck_off_rate=config.stuck_off_rate,
        seed=config.seed, max_block_elements=config.max_block_elements,
        cols=array.cols, cols_per_weight=array.cols_per_weight, cols_per_adc=min(adc, array.cols),
        adc_calibration=method, adc_parameter=parameter, adc_scope=config.adc_scope,
        adc_step=config.adc_step, wire_resistance_ohm=device.wire_resistance_ohm,
        cell_on_resistance_ohm=device.cell_on_resistance_ohm,
        cell_off_resistance_ohm=device.cell_off_resistance_ohm,
        ir_drop_solver=config.ir_drop_solver, ir_drop_compensation=config.ir_drop_compensation,
        drift_time_s=config.drift_time_s,
        drift_nu_mean=device.drift_nu_mean or 0.0, drift_nu_std=device.drift_nu_std,
        drift_t0_s=device.drift_t0_s, drift_compensation=config.drift_compensation,
        adc_offset_lsb=device.adc_offset_lsb, adc_dnl_lsb=device.adc_dnl_lsb,
    )


def _device(chip: ChipConfig, config: CrossbarConfig):
    """The chip's device parameters with ``config``'s overrides, checked against the
    effects they enable (one-line ``ConfigError`` naming the missing field)."""
    update = {k: getattr(config, k) for k in ("wire_resistance_ohm", "adc_offset_lsb",
                                              "adc_dnl_lsb") if getattr(config, k) is not None}
    device = chip.device.model_copy(update=update)
    if config.ideal:
        return device
    if device.wire_resistance_ohm > 0:
        if device.cell_on_resistance_ohm is None:
            raise ConfigError(
                f"wire_resistance_ohm={device.wire_resistance_ohm}: IR drop needs the chip's "
                f"[device] cell_on_resistance_ohm and cell_off_resistance_ohm (chip "
                f"{chip.name!r} has none)"
            )
        if config.slicing != "full":
            raise ConfigError("wire_resistance_ohm > 0: IR drop needs slicing='full' (physical cells)")
    if config.drift_time_s is not None:
        if device.drift_nu_mean is None:
            raise ConfigError(
                f"drift_time_s={config.drift_time_s}: chip {chip.name!r} has no drift law "
                "([device] drift_nu_mean)"
            )
        if config.drift_time_s < device.drift_t0_s:
            raise ConfigError(
                f"drift_time_s={config.drift_time_s} is before the chip's drift_t0_s="
                f"{device.drift_t0_s} (conductances are read as programmed at t0)"
            )
    return device
