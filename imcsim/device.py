"""Physical device parameters of a chip, read by the accuracy simulation's non-idealities.

A chip preset's optional ``[device]`` section (``ChipConfig.device``) holds what the
functional simulation (``imcsim.nn``) needs to model the analog side beyond quantization:
cell on/off resistances and the wire resistance per cell segment (IR drop), the
conductance-drift law (``(t/t₀)^(−ν)``, PCM as measured by Nandakumar et al., ICECS 2019,
and used by IBM aihwkit's ``PCMLikeNoiseModel``), and per-ADC deviations (offset, DNL).
Every default is *ideal* (no IR drop, no ADC deviation); drift happens only when a read
time is given (``CrossbarConfig.drift_time_s``).  Presets cite where each value comes
from and mark the ones that are assumptions.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from imcsim._config import StrictModel

__all__ = ["DeviceConfig"]


class DeviceConfig(StrictModel):
    """Cells, wires and ADCs as the accuracy simulation sees them (defaults: ideal)."""

    source: str = ""
    """Where the numbers come from."""
    cell_on_resistance_ohm: float | None = Field(default=None, gt=0)
    """Resistance of a cell at its highest conductance level (needed for IR drop)."""
    cell_off_resistance_ohm: float | None = Field(default=None, gt=0)
    """Resistance of a cell at level 0 (unprogrammed and empty cells sit here)."""
    wire_resistance_ohm: float = Field(default=0.0, ge=0)
    """Word- and bit-line resistance per cell segment; 0 = ideal wires (no IR drop)."""
    drift_nu_mean: float | None = Field(default=None, ge=0)
    """Mean drift exponent ν of ``G(t) = G(t₀)·(t/t₀)^(−ν)`` (None: the cells do not drift)."""
    drift_nu_std: float = Field(default=0.0, ge=0)
    """Device-to-device spread of ν (each cell draws ``|N(ν_mean, ν_std)|``)."""
    drift_t0_s: float = Field(default=20.0, gt=0)
    """Time after programming at which conductances are read as programmed (t₀)."""
    adc_offset_lsb: float = Field(default=0.0, ge=0)
    """σ of each ADC's offset, in LSB (one draw per ADC)."""
    adc_dnl_lsb: float = Field(default=0.0, ge=0)
    """σ of each ADC code's width error (DNL), in LSB (one draw per ADC and code); the
    integral non-linearity (INL) is its running sum, end-point corrected."""

    @model_validator(mode="after")
    def _check(self) -> DeviceConfig:
        on, off = self.cell_on_resistance_ohm, self.cell_off_resistance_ohm
        if (on is None) != (off is None):
            raise ValueError("give both cell_on_resistance_ohm and cell_off_resistance_ohm")
        if on is not None and off is not None and off <= on:
            raise ValueError(f"cell_off_resistance_ohm={off} must exceed cell_on_resistance_ohm={on}")
        return self
