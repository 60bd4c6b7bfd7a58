"""Settings of the functional crossbar simulation (``to_crossbar``) and their resolution.

Precisions come from the report's chip (``ArrayConfig.weight_bits/cell_bits/sign``,
``PrecisionConfig.input_bits/dac_bits/adc_bits``); any field set here overrides the
chip's value.  The mapping itself (which weights share a column) is never redone: it is
the report's ``LayerMapping``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import Field, model_validator

from imcsim._config import StrictModel
from imcsim.errors import ConfigError
from imcsim.hardware import ChipConfig, SignEncoding, override_chip

__all__ = ["CrossbarConfig", "LayerSettings", "resolve_settings"]


_NON_IDEAL = ("programming_noise", "read_noise", "stuck_on_rate", "stuck_off_rate",
              "weight_bits", "cell_bits", "input_bits", "dac_bits", "adc_bits")
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
    input slice and conductance).  ``calibrated``: full scale = the largest partial sum
    each layer produces on the calibration images."""
    input_range: Literal["dynamic", "calibrated"] = "dynamic"
    """``dynamic``: each image's inputs to a layer are scaled by their own maximum.
    ``calibrated``: one scale per layer, the maximum over the calibration images."""
    calibration_images: int = Field(default=128, ge=1)
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
    seed: int = Field(default=0, ge=0, le=2**63 - 1)
    """Seed of programming noise, faults and read noise."""
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
                    "(sign + magnitude); give --{field.replace('_', '-')} or --ideal"
                )
    return LayerSettings(
        ideal=config.ideal, sliced=config.slicing == "full", rows=array.rows,
        weight_bits=array.weight_bits, cell_bits=array.cell_bits, sign=array.sign,
        input_bits=prec.input_bits, dac_bits=prec.dac_bits, adc_bits=prec.adc_bits,
        adc_range=config.adc_range, input_range=config.input_range,
        programming_noise=config.programming_noise, read_noise=config.read_noise,
        stuck_on_rate=config.stuck_on_rate, stuck_off_rate=config.stuck_off_rate,
        seed=config.seed, max_block_elements=config.max_block_elements,
    )
