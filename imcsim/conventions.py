"""How a mapping is counted: one typed ``Conventions`` object shared by every verb.

The answer to "is low-rank cheaper than pattern pruning on this chip?" turns on counting
conventions, not on the compression itself (Jeon, Rhe, Ko, "Low-Rank Compression for IMC
Arrays", DATE 2025, against imcsim's defaults; see REFERENCES.md, "Conventions of the
low-rank paper's group").  Every field here is one such convention, switchable on its own;
``PAPER`` is the paper group's (read from its public VW-SDK / PAIRS / KERNTROL / GAROS
code), ``IMCSIM`` imcsim's defaults.  ``map``, ``compare``, ``rank-search``, ``explore``
and the ``date2025`` study take them with ``--conventions paper|imcsim|FILE.toml`` and
single-field overrides ``--convention FIELD=VALUE``.

``mapper()`` turns a set of conventions into one mapper for a whole (mixed) network:
factor pairs with R on ``r_mapper`` and L scheduled per ``schedule``; pruned layers with
``pruned_mapper`` (row skipping) or, without row skipping, ``r_mapper``; dense layers
with ``r_mapper``.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from imcsim._config import StrictModel
from imcsim.compression import DenseLayers
from imcsim.errors import ConfigError
from imcsim.hardware import ArrayConfig
from imcsim.layers import LayerShape
from imcsim.mappers import LowRank, Mapper, MapperOptions, Schedule, get_mapper
from imcsim.mappers.mapping import LayerMapping

__all__ = ["CONVENTION_FIELDS", "CycleCount", "Conventions", "ConventionsMapper",
           "DEFAULT_PRECISION", "IMCSIM", "PAPER", "PAPER_PRECISION", "PRESETS", "Precision",
           "ablations", "load_conventions"]

CycleCount = Literal["activations", "critical-path"]


class Precision(StrictModel):
    """Weight and input precisions of a chip (``ArrayConfig`` / ``PrecisionConfig``)."""

    weight_bits: int = Field(ge=1)
    cell_bits: int = Field(ge=1)
    input_bits: int = Field(ge=1)


PAPER_PRECISION: dict[str, Precision] = {
    "resnet20": Precision(weight_bits=1, cell_bits=1, input_bits=4),
    "wrn16-4": Precision(weight_bits=2, cell_bits=1, input_bits=8),
}
"""KERNTROL / GAROS scripts: ResNet-20 1-bit weights, 4-bit activations; WRN-16-4 2-bit
weights on 1-bit cells, 8-bit activations."""
DEFAULT_PRECISION = Precision(weight_bits=8, cell_bits=2, input_bits=8)
"""imcsim's default chip: 8-bit weights in 2-bit cells, 8-bit inputs (ISAAC's choices)."""


class Conventions(StrictModel):
    """One set of counting conventions; every field is one switchable convention."""

    name: str = "custom"
    schedule: Schedule = "sequential"
    """L scheduling: R then L on the same arrays (cycles add, imcsim), or pipelined on two
    sets of arrays, the slower factor setting the pace (DATE 2025, Theorem 2's layout run
    as the group's GAROS scripts count it)."""
    r_mapper: str = "sdk"
    """R's mapper and its budget rule (also dense layers'): ``sdk`` held to im2col's tile
    budget (VW-SDK's re-implementation of SDK, Zhang et al. TCAD 2020), or
    ``sdk-unconstrained`` letting the tile count grow (KERNTROL ``SDK_a`` / GAROS)."""
    pruned_mapper: str = "pruned-sdk"
    """Row-skipping mapper of pruned layers (PAIRS, ISLPED 2023; GAROS, JSA 2025), with
    the same window rule as ``r_mapper`` (``pruned-sdk`` / ``pruned-sdk-unconstrained``)."""
    row_skipping: bool = True
    """Pruned layers skip all-zero array rows (PAIRS); off: mapped densely by ``r_mapper``."""
    cycles: CycleCount = "activations"
    """What a cycle count and a cycle budget count: every tile activation (imcsim), or the
    critical path, pipelined factors overlapping (the DATE 2025 accuracy-vs-cycles axis)."""
    snap: bool = False
    """Ranks only at tile boundaries of the mapping (a rank one column past a tile costs a
    whole column tile; ``nn.compress.space``)."""
    index_cost: bool = True
    """Pattern-index bits of sparse layers are costed in energy and area (PatDNN, Niu et
    al. ASPLOS 2020; PCNN); the group's scripts count cycles only (off)."""
    dense_layers: DenseLayers = "none"
    """Layers every compression leaves dense: none (imcsim), or the first conv, every 1×1
    conv and every Linear (``stem-1x1-fc``, the paper group's)."""
    low_rank: Literal["fixed", "keep"] = "keep"
    """Low-rank knob of the date2025 study: a fixed network-wide rank × groups (the
    paper's), or a kept fraction of the weights (imcsim's)."""
    patterns: Literal["kernel-pattern", "channel-pattern"] = "channel-pattern"
    """Pattern baseline of the date2025 study: n-tap library patterns per kernel (PatDNN /
    PConv / random, the paper's), or edge patterns shared per input channel (imcsim's)."""
    precision: Literal["paper", "default"] = "default"
    """Weight / cell / input bits: the paper scripts' per model, or imcsim's default chip."""

    @model_validator(mode="after")
    def _mappers_exist(self) -> Conventions:
        get_mapper("low-rank-sdk", MapperOptions(r_mapper=self.r_mapper))
        if not self.pruned_mapper.startswith("pruned-"):
            raise ConfigError(f"conventions {self.name!r}: pruned_mapper={self.pruned_mapper!r}; "
                              "give a pruned mapper (pruned-sdk, pruned-sdk-unconstrained, "
                              "pruned-im2col)")
        get_mapper(self.pruned_mapper)
        return self

    def precision_of(self, model: str) -> Precision:
        """The precisions these conventions give ``model``'s chip."""
        return PAPER_PRECISION.get(model, DEFAULT_PRECISION) if self.precision == "paper" \
            else DEFAULT_PRECISION

    @property
    def families(self) -> tuple[str, ...]:
        """The date2025 families compared under these conventions (dense as a reference)."""
        low = "low-rank" if self.low_rank == "fixed" else "low-rank-keep"
        patterns = (("kernel-pattern", "layer-pattern") if self.patterns == "kernel-pattern"
                    else ("channel-pattern",))
        return ("dense", low, *patterns, "channel", "filter", "unstructured")

    @property
    def proposed(self) -> str:
        """The date2025 low-rank family (low-rank and group low-rank points together)."""
        return "low-rank" if self.low_rank == "fixed" else "low-rank-keep"

    @property
    def pattern_families(self) -> tuple[str, ...]:
        return self.families[2:-3]

    def pair_mapper(self) -> LowRank:
        """The mapper of factor pairs: R on ``r_mapper``, L block-diagonal, ``schedule``."""
        return LowRank(base=self.r_mapper, schedule=self.schedule,
                       name=f"low-rank({self.r_mapper},{self.schedule})")

    def mapper(self) -> ConventionsMapper:
        """One mapper for a whole network under these conventions (module doc)."""
        sparse = self.pruned_mapper if self.row_skipping else self.r_mapper
        return ConventionsMapper(pair=self.pair_mapper(), dense=get_mapper(self.r_mapper),
                                 sparse=get_mapper(sparse), index_cost=self.index_cost,
                                 name=f"conventions:{self.name}")

    def count(self, cycles: int, latency_cycles: int) -> int:
        """The cycle figure these conventions report (``cycles`` field)."""
        return latency_cycles if self.cycles == "critical-path" else cycles


@dataclass(frozen=True)
class ConventionsMapper:
    """Maps factor pairs with ``pair``, dense layers with ``dense``, layers with zero
    weights with ``sparse``; drops the pattern-index bits when they are not costed
    (a ``PairMapper``)."""

    pair: LowRank
    dense: Mapper
    sparse: Mapper
    index_cost: bool
    name: str

    def _tag(self, m: LayerMapping) -> LayerMapping:
        return replace(m, mapper=self.name, **({} if self.index_cost else {"index_bits": 0}))

    def map(self, layer: LayerShape, array: ArrayConfig) -> LayerMapping:
        chosen = self.dense if layer.nonzero is None else self.sparse
        return self._tag(chosen.map(layer, array))

    def map_pair(self, r: LayerShape, l_layer: LayerShape, array: ArrayConfig
                 ) -> tuple[LayerMapping, LayerMapping]:
        r_map, l_map = self.pair.map_pair(r, l_layer, array)
        return self._tag(r_map), self._tag(l_map)


PAPER = Conventions(name="paper", schedule="pipelined", r_mapper="sdk-unconstrained",
                    pruned_mapper="pruned-sdk-unconstrained", cycles="critical-path",
                    index_cost=False, dense_layers="stem-1x1-fc", low_rank="fixed",
                    patterns="kernel-pattern", precision="paper")
"""The paper group's conventions (REFERENCES.md, "Conventions of the low-rank paper's group")."""
IMCSIM = Conventions(name="imcsim")
"""imcsim's defaults."""
PRESETS: dict[str, Conventions] = {"paper": PAPER, "imcsim": IMCSIM}
CONVENTION_FIELDS: tuple[str, ...] = tuple(f for f in Conventions.model_fields if f != "name")


def ablations(switches: tuple[str, ...]) -> list[Conventions]:
    """``PAPER``, ``IMCSIM``, and the paper's with each of ``switches`` set to imcsim's."""
    out = [PAPER, IMCSIM]
    for field in switches:
        value = getattr(IMCSIM, field)
        out.append(PAPER.model_copy(update={"name": f"paper, {field}={value}", field: value}))
    return out


def load_conventions(source: str | None, overrides: dict[str, Any] | None = None) -> Conventions:
    """``paper``, ``imcsim`` (``None``: imcsim) or a TOML file of fields (missing fields:
    imcsim's; ``base = "paper"`` starts from the paper's), then ``overrides``."""
    if source is None or source in PRESETS:
        base = PRESETS[source or "imcsim"].model_dump()
    else:
        path = Path(source)
        if path.suffix != ".toml" or not path.is_file():
            raise ConfigError(f"--conventions {source!r}: expected paper, imcsim or a .toml file")
        try:
            data = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"conventions file {source!r}: {exc}") from None
        start = data.pop("base", "imcsim")
        if start not in PRESETS:
            raise ConfigError(f"conventions file {source!r}: base={start!r} (paper or imcsim)")
        base = {**PRESETS[start].model_dump(), "name": path.stem, **data}
    if overrides:
        unknown = sorted(set(overrides) - set(CONVENTION_FIELDS))
        if unknown:
            raise ConfigError(f"--convention {unknown[0]}: unknown field (known: "
                              f"{', '.join(CONVENTION_FIELDS)})")
        base = {**base, **overrides, "name": f"{base['name']}+" + ",".join(
            f"{k}={v}" for k, v in overrides.items())}
    return Conventions.parse(base, f"conventions {source or 'imcsim'}")
