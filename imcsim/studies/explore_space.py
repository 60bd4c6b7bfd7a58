"""What ``imcsim explore`` searches and what one of its points is (no torch).

``ExploreSpec`` declares the space: per layer a family (dense, unstructured, filter,
channel, edge patterns, n-tap kernel patterns, low-rank, group low-rank) and a kept
fraction of the layer's weights (low-rank: the rank that keeps it, tile-snapped when the
conventions say so; kernel patterns: ⌊keep·K²⌋ taps); globally the factorisation, the
group count G of group low-rank, R's mapper and the array size; the objectives, the
conventions, the calibration and proxy images.  A ``Point`` is one chosen configuration,
complete enough to be replayed exactly (``explore --export``, ``map --spec``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from imcsim._config import StrictModel
from imcsim.conventions import IMCSIM, Conventions
from imcsim.errors import ConfigError
from imcsim.hardware import parse_array
from imcsim.mappers import MapperOptions, get_mapper

__all__ = ["DIRECTIONS", "FAMILIES", "OBJECTIVES", "ExploreSpec", "Family", "LayerPlan",
           "Objective", "Point", "read_point"]

Family = Literal["dense", "unstructured", "filter", "channel", "pattern", "kernel-pattern",
                 "low-rank", "group-low-rank"]
"""Per-layer families: magnitude (Han et al. 2015), filter (Li et al. 2017), channel (He et
al. 2017), edge patterns per input channel, n-tap kernel patterns (PatDNN, Niu et al.
ASPLOS 2020), low-rank and group low-rank (Jeon, Rhe, Ko, DATE 2025)."""
FAMILIES: tuple[str, ...] = ("dense", "unstructured", "filter", "channel", "pattern",
                             "kernel-pattern", "low-rank", "group-low-rank")
PRUNED = ("unstructured", "filter", "channel", "pattern", "kernel-pattern")

Objective = Literal["cycles", "latency_ns", "energy_pj", "area_um2", "arrays", "accuracy_proxy"]
OBJECTIVES: tuple[str, ...] = ("cycles", "latency_ns", "energy_pj", "area_um2", "arrays",
                               "accuracy_proxy")
DIRECTIONS = {o: "maximize" if o == "accuracy_proxy" else "minimize" for o in OBJECTIVES}
"""Each objective's direction (cycles as the conventions count them; arrays: tiles held)."""


class ExploreSpec(StrictModel):
    """One exploration: model, space, objectives, conventions (``DIR/spec.json``)."""

    model: str = "resnet20"
    checkpoint: Path | None = None
    dataset: str = "mnist5k"
    data_dir: Path | None = None
    arrays: tuple[str, ...] = ("64x64",)
    """Array sizes ROWSxCOLS the search picks from (one per point)."""
    r_mappers: tuple[str, ...] = ()
    """R's (and dense layers') mappers the search picks from; empty: the conventions'."""
    families: tuple[Family, ...] = ("dense", "unstructured", "channel", "pattern",
                                    "kernel-pattern", "low-rank", "group-low-rank")
    factorizations: tuple[str, ...] = ("svd",)
    groups: tuple[int, ...] = (2, 4)
    """Group counts G of group low-rank (layers G does not divide stay plain low-rank)."""
    min_keep: float = Field(default=0.05, gt=0, le=1)
    """Smallest kept fraction of a layer's weights the search tries."""
    objectives: tuple[Objective, ...] = ("cycles", "energy_pj", "accuracy_proxy")
    conventions: Conventions = IMCSIM
    calibration_images: int = Field(default=64, ge=1)
    """Training images that fit data-aware factorisations and re-estimate batch norm."""
    proxy_images: int = Field(default=256, ge=1)
    """Held-out training images the accuracy proxy (top-1 after BN re-estimation) reads."""
    seeds: tuple[str, ...] = ("energy", "alds", "bsr", "haloc", "bo")
    """Rank selectors whose choices are enqueued as the first trials."""
    seed_keeps: tuple[float, ...] = (0.5, 0.25)
    """Kept fractions of the weights the seeding selectors are asked for."""
    seed: int = 0

    @model_validator(mode="after")
    def _check(self) -> ExploreSpec:
        for text in self.arrays:
            parse_array(text)
        if not self.arrays or not self.families or not self.objectives:
            raise ConfigError("explore: give at least one array, family and objective")
        if len(set(self.objectives)) != len(self.objectives):
            raise ConfigError(f"objectives: {list(self.objectives)} repeats one")
        for name in self.r_mappers:
            get_mapper("low-rank-sdk", MapperOptions(r_mapper=name))
        if any(g < 2 for g in self.groups) or not self.groups:
            raise ConfigError(f"groups: group low-rank needs G >= 2 (got {list(self.groups)})")
        if any(not 0 < k <= 1 for k in self.seed_keeps):
            raise ConfigError(f"seed_keeps: kept fractions in (0, 1] (got {list(self.seed_keeps)})")
        return self

    @property
    def mappers(self) -> tuple[str, ...]:
        return self.r_mappers or (self.conventions.r_mapper,)


class LayerPlan(StrictModel):
    """One layer of a point: its family and knob (``rank`` / ``groups`` for low-rank)."""

    family: Family
    keep: float = Field(default=1.0, gt=0, le=1)
    """Kept fraction of the layer's weights (pruning; low-rank: what ``rank`` keeps)."""
    rank: int | None = Field(default=None, ge=1)
    groups: int = Field(default=1, ge=1)


class Point(StrictModel):
    """One configuration: replayable by ``map --spec`` and ``explore``'s measurement."""

    model: str
    checkpoint: Path | None = None
    dataset: str = "mnist5k"
    data_dir: Path | None = None
    array: str
    conventions: Conventions
    """The conventions the point was counted under (R's mapper as the search chose it)."""
    factorization: str = "svd"
    calibration_images: int = 64
    seed: int = 0
    layers: dict[str, LayerPlan]
    """Every searched layer (dense ones included) by module name."""

    @property
    def family_counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for plan in self.layers.values():
            out[plan.family] = out.get(plan.family, 0) + 1
        return out


def read_point(path: str | Path) -> Point:
    """A point written by ``explore --export`` (one-line error if it is not one)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"point file {str(path)!r}: {exc}") from None
    return Point.parse(data, f"point file {path}")
