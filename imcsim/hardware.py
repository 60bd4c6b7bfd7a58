"""The virtual chip: crossbar array geometry, data precisions, and presets.

Axes follow the crossbar convention used by every mapping paper: ``rows`` are word
lines and carry the reduction (input) dimension, ``cols`` are bit lines and carry the
outputs.  A weight of ``weight_bits`` stored in cells of ``cell_bits`` spans
``ceil(weight_bits / cell_bits)`` adjacent columns (bit slicing, as in ISAAC,
Shafiee et al., ISCA 2016), doubled when signed weights use differential pairs.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from imcsim._config import StrictModel
from imcsim._data import data_dir, find_preset, read_toml
from imcsim.capacity import ReloadConfig
from imcsim.device import DeviceConfig
from imcsim.errors import ConfigError
from imcsim.periphery import CostConfig, MatmulConfig

__all__ = ["MAX_ARRAY_SIDE", "ArrayConfig", "ChipConfig", "PrecisionConfig", "SignEncoding",
           "build_chip", "chip_presets", "load_chip", "override_chip", "parse_array"]

SignEncoding = Literal["offset", "differential"]

MAX_ARRAY_SIDE = 65536
"""Largest rows/cols accepted: 64× the largest crossbars reported (1024×1024 ReRAM
macros; ISAAC and PRIME use 128 and 256), far beyond what a study needs, small
enough that every count stays an exact machine integer."""


class ArrayConfig(StrictModel):
    """One crossbar array and how weights are laid out on it."""

    rows: int = Field(gt=0, le=MAX_ARRAY_SIDE)
    """Word lines: inputs summed per column (the reduction dimension); 1..65536."""
    cols: int = Field(gt=0, le=MAX_ARRAY_SIDE)
    """Bit lines: physical output columns; 1..65536."""
    cell_bits: int = Field(default=1, ge=1, le=8)
    """Bits stored per cell (conductance levels = 2**cell_bits); 1..8: multi-level ReRAM
    and PCM cells are reported up to 4 bits (ISAAC uses 2), 8 leaves room for studies."""
    weight_bits: int = Field(default=1, ge=1, le=32)
    """Bits of a stored weight; it spans ceil(weight_bits / cell_bits) columns; 1..32
    (ISAAC stores 16-bit weights; 32 is a float32's width)."""
    sign: SignEncoding = "offset"
    """Signed weights: ``offset`` (ISAAC's biased encoding, no extra columns) or
    ``differential`` (a positive and a negative column per weight slice)."""

    @model_validator(mode="after")
    def _check(self) -> ArrayConfig:
        if self.cell_bits > self.weight_bits:
            raise ValueError(
                f"cell_bits={self.cell_bits} exceeds weight_bits={self.weight_bits}"
            )
        if self.effective_cols == 0:
            raise ValueError(
                f"cols={self.cols} cannot hold one weight spanning "
                f"{self.cols_per_weight} columns"
            )
        return self

    @property
    def cols_per_weight(self) -> int:
        """Physical columns one weight occupies (bit slices × sign columns)."""
        slices = math.ceil(self.weight_bits / self.cell_bits)
        return slices * (2 if self.sign == "differential" else 1)

    @property
    def effective_cols(self) -> int:
        """Weights that fit side by side on one array row (C_eff in REFERENCES.md)."""
        return self.cols // self.cols_per_weight

    @property
    def cells(self) -> int:
        return self.rows * self.cols

    @property
    def label(self) -> str:
        return f"{self.rows}x{self.cols}"


class PrecisionConfig(StrictModel):
    """Input and read-out precisions (weight precision lives in ``ArrayConfig``)."""

    input_bits: int = Field(default=8, ge=1, le=32)
    """Bits of an activation entering the array; 1..32 (ISAAC streams 16)."""
    dac_bits: int = Field(default=1, ge=1, le=16)
    """Bits a DAC applies per input cycle; inputs stream in input_bits/dac_bits slices;
    1..16 (ISAAC: 1, Wang et al. VLSI 2022: an 8-bit R-2R DAC)."""
    adc_bits: int = Field(default=8, ge=1, le=16)
    """Resolution of the column ADC; 1..16 (IMC macros use 4–10 bits, ISAAC 8; ADC
    energy doubles per bit, so beyond 16 the cost model leaves any published range)."""

    @model_validator(mode="after")
    def _check(self) -> PrecisionConfig:
        if self.dac_bits > self.input_bits:
            raise ValueError(
                f"dac_bits={self.dac_bits} exceeds input_bits={self.input_bits}"
            )
        return self

    @property
    def input_slices(self) -> int:
        """Bit-serial input cycles per computing cycle."""
        return math.ceil(self.input_bits / self.dac_bits)


class ChipConfig(StrictModel):
    """A chip: identical arrays, their precisions and (optionally) how many exist."""

    name: str = "custom"
    """Preset name or a label of the user's choice."""
    source: str = ""
    """Where the numbers come from (paper, chip)."""
    array: ArrayConfig
    precision: PrecisionConfig = PrecisionConfig()
    n_arrays: int | None = Field(default=None, ge=1, le=2**32)
    """Arrays on the chip; ``None`` means as many as the network needs."""
    cost: CostConfig | None = None
    """Periphery energies, times and areas (``imcsim.cost``); ``None``: not costed."""
    matmul: MatmulConfig = MatmulConfig()
    """Where activation×activation products run and their costs (``imcsim.matmul``)."""
    device: DeviceConfig = DeviceConfig()
    """Cell, wire and ADC physics for the accuracy simulation (default: ideal)."""
    reload: ReloadConfig = ReloadConfig()
    """Cost of writing weights that do not fit on ``n_arrays`` (``imcsim.capacity``)."""


_ARRAY_RE = re.compile(r"^\s*([0-9]{1,9})\s*[xX×]\s*([0-9]{1,9})\s*$", re.ASCII)


def parse_array(text: str, **fields: int | str) -> ArrayConfig:
    """``"128x256"`` → ``ArrayConfig(rows=128, cols=256, **fields)``."""
    match = _ARRAY_RE.match(text)
    if match is None:
        raise ConfigError(f"array {text!r}: expected ROWSxCOLS, e.g. 128x128")
    return ArrayConfig(rows=int(match[1]), cols=int(match[2]), **fields)


def chip_presets() -> list[str]:
    """Names of the chip presets shipped under ``mappings/chips/``."""
    return sorted(p.stem for p in data_dir("chips").glob("*.toml"))


def load_chip(name_or_path: str | Path, _seen: tuple[Path, ...] = ()) -> ChipConfig:
    """Load a chip preset by name (``mappings/chips/NAME.toml``) or from a TOML file.

    ``cost_preset = "NAME"`` borrows another preset's ``[cost]`` section (one level or a
    chain; a chain that comes back to a file already read is an error)."""
    path = find_preset("chips", name_or_path, ".toml", "chip preset")
    where = f"chip file {path.name}"
    if path.resolve() in _seen:
        chain = " -> ".join(p.name for p in (*_seen, path.resolve()))
        raise ConfigError(f"{where}: cost_preset chain loops ({chain})")
    data = read_toml(path, "chip file")
    if "cost_preset" in data:  # borrow another preset's periphery figures
        borrowed_from = data.pop("cost_preset")
        if "cost" in data:
            raise ConfigError(f"{where}: give [cost] or cost_preset, not both")
        if not isinstance(borrowed_from, str) or not borrowed_from.strip():
            raise ConfigError(f"{where}: cost_preset must be a preset name or a .toml file "
                              f"(got {borrowed_from!r})")
        borrowed = load_chip(borrowed_from, (*_seen, path.resolve())).cost
        data["cost"] = borrowed
    return ChipConfig.parse(data, where)


_ARRAY_FIELDS = ("rows", "cols", "cell_bits", "weight_bits", "sign")
_PRECISION_FIELDS = ("input_bits", "dac_bits", "adc_bits")


def override_chip(chip: ChipConfig, **fields: int | str | None) -> ChipConfig:
    """``chip`` with array fields (rows, cols, cell_bits, weight_bits, sign) and precision
    fields (input_bits, dac_bits, adc_bits) replaced — ``None`` keeps the chip's value —
    validated together.  The one place where command-line, sweep and simulation overrides
    meet a chip."""
    unknown = set(fields) - {*_ARRAY_FIELDS, *_PRECISION_FIELDS}
    if unknown:
        raise ConfigError(f"chip override: unknown field {sorted(unknown)[0]!r}")
    data = chip.model_dump()
    for part, names in (("array", _ARRAY_FIELDS), ("precision", _PRECISION_FIELDS)):
        data[part].update({k: v for k, v in fields.items() if k in names and v is not None})
    return ChipConfig.parse(data)  # type: ignore[return-value]


def build_chip(chip: str | None, array: str | None, **fields: int | str | None) -> ChipConfig:
    """A chip preset (or, with none, the mapping-study chip: one weight per column) with
    the array size ``ROWSxCOLS`` and the overrides a user gave (see ``override_chip``)."""
    if chip is None and array is None:
        raise ConfigError("give --array ROWSxCOLS or --chip PRESET")
    base = load_chip(chip) if chip is not None else ChipConfig(array=ArrayConfig(rows=1, cols=1))
    if array is not None:
        shape = parse_array(array)
        fields = {**fields, "rows": shape.rows, "cols": shape.cols}
    return override_chip(base, **fields)
