"""Recipes: a whole study in one TOML file (workload axes, chip, outputs).

A recipe holds either a ``[sweep]`` (a design-space sweep, ``SweepSpec``, with optional
``[compression]`` and ``[pictures]`` parts) or a ``[date2025]`` table (the low-rank vs
pruning trade-off study, ``Date2025Spec``).  Validated by the same pydantic models as the
API (``SweepSpec``, ``CompressionStudy``, ``PictureSpec``, ``Date2025Spec``): an unknown
key, a wrong type or a bad value is a one-line ``ConfigError`` naming it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from imcsim._config import StrictModel
from imcsim._data import data_dir, find_preset, read_toml
from imcsim.plotting import CHARTS, Chart
from imcsim.studies.date2025_spec import Date2025Spec
from imcsim.studies.mission import CompressionStudy
from imcsim.studies.pictures import PictureSpec
from imcsim.studies.sweep import SweepSpec

__all__ = ["Recipe", "load_recipe", "recipe_names"]


class Recipe(StrictModel):
    """A study: what to sweep, how to run it, where its table and charts go."""

    name: str
    description: str = ""
    out: str = "imcsim-out"
    """Output directory (results.jsonl, summary table, PNG charts); not empty."""
    sweep: SweepSpec | None = None
    date2025: Date2025Spec | None = None
    """The low-rank vs pruning study (``imcsim.studies.date2025``) instead of a sweep."""
    backend: Literal["local", "ray"] = "local"
    workers: int | None = Field(default=None, ge=1, le=256)
    """Worker processes (local) or CPUs (local Ray); default: all cores."""
    charts: tuple[Chart, ...] = CHARTS  # type: ignore[assignment]
    """Charts to render when the records support them."""
    compression: CompressionStudy | None = None
    """Compression methods at one kept fraction: cycles and on-chip accuracy
    (``compression.jsonl``, charts ``compression`` and ``pareto``)."""
    pictures: PictureSpec | None = None
    """Mapping pictures of one layer under several mappers (chart ``placement``)."""

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("empty recipe name")
        return value

    @field_validator("out")
    @classmethod
    def _out(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("empty output directory (give a folder name)")
        if "\0" in value:
            raise ValueError("holds a NUL character")
        return value

    @model_validator(mode="after")
    def _one_study(self) -> Recipe:
        if (self.sweep is None) == (self.date2025 is None):
            raise ValueError("give exactly one of [sweep] and [date2025]")
        if self.date2025 is not None and (self.compression, self.pictures) != (None, None):
            raise ValueError("[compression] and [pictures] go with a [sweep], not [date2025]")
        return self


def recipe_names() -> list[str]:
    return sorted(p.stem for p in data_dir("recipes").glob("*.toml"))


def load_recipe(name_or_path: str | Path = "default") -> Recipe:
    """A shipped recipe by name (``mappings/recipes/NAME.toml``) or a TOML file."""
    path = find_preset("recipes", name_or_path, ".toml", "recipe")
    return Recipe.parse(read_toml(path, "recipe"), f"recipe {path.name}")
