"""What the ``date2025`` study compares: its variants, its conventions and its settings.

Jeon, Rhe, Ko, "Low-Rank Compression for IMC Arrays", DATE 2025 (arXiv 2502.07820) claim
"up to 2.5× speedup or +20.9 % accuracy over existing pruning techniques" on ResNet-20
and WRN-16-4.  The study draws accuracy vs computing cycles for every method over its own
knob and computes those two numbers under a set of *conventions* (``Conventions``): the
paper group's (``PAPER``, read from its public VW-SDK / PAIRS / KERNTROL / GAROS code),
imcsim's defaults (``IMCSIM``; both from ``imcsim.conventions``, shared by every verb), and the paper's with one convention switched at a time
(``ablations``), so that the convention that turns the conclusion around is visible.

A *variant* is one compressed model (a method at one knob value); it is fine-tuned and
evaluated once, then mapped under every convention and array size.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from imcsim._config import StrictModel
from imcsim.compression import DenseLayers, PatternLibrary, PatternShare
from imcsim.conventions import (
    IMCSIM,
    PAPER,
    PAPER_PRECISION,
    Conventions,
    Precision,
)
from imcsim.conventions import ablations as conventions_ablations
from imcsim.hardware import parse_array

__all__ = ["Conventions", "Date2025Spec", "IMCSIM", "PAPER", "PAPER_DATASETS", "PAPER_PRECISION", "SWITCHES",
           "Precision",
           "Variant", "ablations", "variants"]

Family = Literal["dense", "low-rank", "low-rank-keep", "kernel-pattern", "layer-pattern",
                 "channel-pattern", "channel", "filter", "unstructured"]
"""Method families, one Pareto front each: low-rank at fixed ranks × groups (the paper's
knob) or at a kept fraction (imcsim's), n-tap library patterns chosen per kernel (the
paper's baselines) or one per layer (the GAROS / KERNTROL scripts' default), imcsim's
channel-shared edge patterns, and channel / filter / unstructured pruning."""
PRUNING_FAMILIES = ("kernel-pattern", "layer-pattern", "channel-pattern", "channel", "filter",
                    "unstructured")


PAPER_DATASETS = {"resnet20": "cifar10", "wrn16-4": "cifar100"}
"""The paper's datasets (``imcsim run date2025 --data-dir DIR`` switches to them)."""

SWITCHES = ("low_rank", "patterns", "r_mapper", "schedule", "pruned_mapper", "precision")
"""The conventions the study's ablation table switches one at a time (``imcsim.conventions``)."""


def ablations() -> list[Conventions]:
    """The paper's conventions, imcsim's, and the paper's with one switched to imcsim's."""
    return conventions_ablations(SWITCHES)


class Variant(StrictModel):
    """One compressed model: a family at one knob value."""

    family: Family
    transform: str
    rank: int | None = None
    groups: int = 1
    taps: int | None = None
    library: PatternLibrary = "patdnn"
    share: PatternShare = "kernel"
    keep: float | None = None

    @property
    def key(self) -> str:
        """Stable identity (file names, resumable records)."""
        if self.family == "dense":
            return "dense"
        if self.family == "low-rank":
            return f"low-rank-k{self.rank}-g{self.groups}"
        if self.family in ("kernel-pattern", "layer-pattern"):
            return f"kernel-pattern-{self.library}-{self.share}-n{self.taps}"
        name = self.family + (f"-g{self.groups}" if self.groups > 1 else "")
        return f"{name}-keep{self.keep:g}"

    @property
    def label(self) -> str:
        """Short legend text."""
        if self.family == "low-rank":
            return f"k={self.rank}, g={self.groups}"
        if self.family in ("kernel-pattern", "layer-pattern"):
            return f"{self.taps} taps, {self.library}, per {self.share}"
        return "dense" if self.family == "dense" else f"keep {self.keep:g}"


class Date2025Spec(StrictModel):
    """The study's variants and settings (a recipe's ``[date2025]`` table)."""

    models: tuple[str, ...] = ("resnet20", "wrn16-4")
    dataset: str = "mnist5k"
    """mnist5k (bundled, padded to 3×32×32) or cifar10 / cifar100 (needs ``data_dir``)."""
    data_dir: Path | None = None
    base_epochs: int = Field(default=2, ge=1)
    """Training epochs of a base model that has no shipped checkpoint for ``dataset``."""
    finetune_epochs: int = Field(default=1, ge=0)
    """Fine-tuning epochs of every variant (the dense model included)."""
    train_images: dict[str, int] = {}
    """Per model: fine-tune on the first N training images (default: all)."""
    test_images: int = Field(default=1000, ge=1)
    """Held-out test images every variant is evaluated on."""
    arrays: dict[str, tuple[str, ...]] = {
        "resnet20": ("32x32", "64x64", "128x128"), "wrn16-4": ("128x128", "256x256", "512x512"),
    }
    """Square sub-arrays per model (the GAROS scripts' sizes)."""
    ranks: tuple[int, ...] = (4, 8, 16)
    groups: tuple[int, ...] = (1, 2, 4)
    taps: tuple[int, ...] = (2, 4, 6, 8)
    """Taps of the PatDNN per-kernel library."""
    library_taps: tuple[int, ...] = (4,)
    """Taps at which the other libraries, and a layer-shared PatDNN pattern, run."""
    libraries: tuple[PatternLibrary, ...] = ("pconv", "random")
    """The other pattern libraries (per-kernel patterns at ``library_taps``)."""
    channel_keeps: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5)
    """Channel pruning (the control), kept fractions."""
    other_keeps: tuple[float, ...] = (0.25,)
    """Filter and unstructured pruning, kept fractions."""
    low_rank_keeps: tuple[float, ...] = (0.1, 0.25, 0.5)
    """imcsim's low-rank knob: kept fractions (plain low-rank)."""
    pattern_keeps: tuple[float, ...] = (0.25, 0.5)
    """imcsim's channel-shared edge patterns: kept fractions."""
    dense_layers: DenseLayers = "stem-1x1-fc"
    """Layers every variant leaves dense (the paper group's convention, held fixed)."""
    tolerance_pp: float = Field(default=1.0, ge=0)
    """Equal accuracy: within this many percentage points."""
    min_accuracy: float = Field(default=0.5, ge=0, le=1)
    """Points below this accuracy stay on the charts but out of the two numbers (two
    models near chance have no accuracy worth being equal at)."""
    overrides: dict[str, dict[str, Any]] = {}
    """Per model, other values of the knob and budget fields (e.g. fewer variants and
    fewer fine-tuning images for the expensive WRN-16-4)."""

    @field_validator("arrays", mode="before")
    @classmethod
    def _array_lists(cls, value: Any) -> Any:
        """TOML arrays of array sizes → tuples (the strict base converts top-level fields
        only)."""
        if isinstance(value, dict):
            return {k: tuple(v) if isinstance(v, list) else v for k, v in value.items()}
        return value

    @field_validator("models")
    @classmethod
    def _known(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [m for m in value if m not in PAPER_PRECISION]
        if unknown or not value:
            raise ValueError(f"models: {unknown or value!r}; the study knows "
                             f"{', '.join(PAPER_PRECISION)}")
        return value

    @model_validator(mode="after")
    def _check(self) -> Date2025Spec:
        for model in self.models:
            if model not in self.arrays:
                raise ValueError(f"arrays: no array sizes for model {model!r}")
            for text in self.arrays[model]:
                parse_array(text)
        for name, values in (("channel_keeps", self.channel_keeps), ("other_keeps", self.other_keeps),
                             ("low_rank_keeps", self.low_rank_keeps),
                             ("pattern_keeps", self.pattern_keeps)):
            if any(not 0 < k <= 1 for k in values):
                raise ValueError(f"{name}: kept fractions must be in (0, 1], got {list(values)}")
        if any(t < 1 or t > 9 for t in (*self.taps, *self.library_taps)):
            raise ValueError("taps: a 3x3 kernel keeps 1..9 taps")
        if any(r < 1 for r in self.ranks) or any(g < 1 for g in self.groups):
            raise ValueError("ranks and groups must be positive")
        for model, fields in self.overrides.items():
            if model not in self.models:
                raise ValueError(f"overrides: model {model!r} is not in models")
            bad = set(fields) - set(OVERRIDABLE)
            if bad:
                raise ValueError(f"overrides.{model}: {sorted(bad)[0]!r} cannot be set per model "
                                 f"(can: {', '.join(OVERRIDABLE)})")
            self.for_model(model)
        return self

    def with_cifar(self, data_dir: Path) -> Date2025Spec:
        """This spec on the paper's datasets (CIFAR-10 / CIFAR-100) read from ``data_dir``."""
        overrides = {m: {**self.overrides.get(m, {}), "dataset": PAPER_DATASETS[m]}
                     for m in self.models}
        return Date2025Spec.parse({**self.model_dump(), "data_dir": data_dir,  # type: ignore[return-value]
                                   "overrides": overrides})

    def for_model(self, model: str) -> Date2025Spec:
        """This spec with ``model``'s overrides applied (validated)."""
        fields = self.overrides.get(model)
        if not fields:
            return self
        return Date2025Spec.parse({**self.model_dump(exclude={"overrides"}), **fields})  # type: ignore[return-value]


OVERRIDABLE = ("dataset", "base_epochs", "finetune_epochs", "test_images", "ranks", "groups",
               "taps", "library_taps", "libraries",
               "channel_keeps", "other_keeps", "low_rank_keeps", "pattern_keeps")


def variants(spec: Date2025Spec) -> list[Variant]:
    """Every variant of the study, cheapest families first."""
    out = [Variant(family="low-rank", transform="low-rank" if g == 1 else "group-low-rank",
                   rank=k, groups=g) for k in spec.ranks for g in spec.groups]
    out += [Variant(family="low-rank-keep", transform="low-rank", keep=k)
            for k in spec.low_rank_keeps]
    out.append(Variant(family="dense", transform="dense"))
    out += [Variant(family="kernel-pattern", transform="kernel-pattern", taps=n)
            for n in spec.taps]
    for n in spec.library_taps:
        out += [Variant(family="kernel-pattern", transform="kernel-pattern", taps=n, library=lib)
                for lib in spec.libraries]
        out.append(Variant(family="layer-pattern", transform="kernel-pattern", taps=n,
                           share="layer"))
    out += [Variant(family="channel", transform="channel", keep=k) for k in spec.channel_keeps]
    out += [Variant(family=f, transform=f, keep=k)  # type: ignore[arg-type]
            for f in ("filter", "unstructured") for k in spec.other_keeps]
    out += [Variant(family="channel-pattern", transform="pattern", keep=k)
            for k in spec.pattern_keeps]
    return list({v.key: v for v in out}.values())
