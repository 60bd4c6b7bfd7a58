"""Mapping pictures of one layer of a model (``imcsim draw``, a recipe's ``[pictures]``).

The layer is picked by name from a built-in model (optionally compressed first) or a
layer table; every mapper places it on the same chip and ``imcsim.drawing`` draws the
placements side by side.  A low-rank layer's name selects its factor pair: a pair
mapper (``low-rank-sdk``…) places R and L together and both are drawn, R beside the
block-diagonal I_N ⊗ L.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import Field, field_validator, model_validator

from imcsim._config import StrictModel
from imcsim.compression import transform_of
from imcsim.drawing import ColorBy, plot_placements
from imcsim.errors import ConfigError
from imcsim.hardware import ChipConfig, build_chip, chip_presets, parse_array
from imcsim.layers import LayerShape
from imcsim.mappers import LayerMapping, get_mapper, mapper_names
from imcsim.network import map_layers
from imcsim.zoo.workloads import Workload

__all__ = ["Picture", "PictureSpec", "SUFFIXES", "draw_layer", "draw_picture", "import_mappers",
           "layer_mappings", "load_layers", "select_layers"]

SUFFIXES = (".png", ".svg", ".pdf")


class PictureSpec(StrictModel):
    """One layer of one model under several mappers, drawn side by side."""

    model: str = "resnet20"
    """Built-in model, or a layer table as ``table:NAME`` / a ``.csv`` path."""
    layer: str = "layer1.0.conv1"
    """Layer name (a low-rank layer's original name selects its R/L pair)."""
    array: str = "256x256"
    """Array ROWSxCOLS."""
    chip: str = ""
    """Chip preset (bit slicing: bit lines per weight, ADC sharing); "" is the mapping-study
    chip, one weight per bit line, as in the VW-SDK papers' figures."""
    mappers: tuple[str, ...] = ("im2col", "sdk", "vw-sdk")
    compression: str = "dense"
    """``dense`` or a model transform (unstructured, filter, channel, pattern, low-rank,
    group-low-rank) applied to a built-in model first."""
    keep: float = Field(default=0.5, gt=0, le=1)
    """Fraction of the weights a compression keeps."""
    tile: int | None = Field(default=None, ge=0)
    """Draw only this tile (0-based); None draws every tile."""
    color_by: ColorBy = "filter"
    file: str = "mapping.png"
    """File name under the study's output folder (.png, .svg or .pdf)."""

    @field_validator("compression")
    @classmethod
    def _known_compression(cls, value: str) -> str:
        return transform_of(value)

    @field_validator("mappers")
    @classmethod
    def _known_mappers(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [m for m in value if m not in mapper_names()]
        if unknown or not value:
            raise ValueError(f"unknown mapper {unknown[0] if unknown else ''!r} "
                             f"(known: {', '.join(mapper_names())})")
        if len(set(value)) != len(value):
            raise ValueError(f"repeats a mapper: {list(value)}")
        return value

    @field_validator("layer")
    @classmethod
    def _named_layer(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("empty layer name (give the layer to draw, e.g. layer1.0.conv1)")
        return value

    @model_validator(mode="after")
    def _check(self) -> PictureSpec:
        parse_array(self.array)
        if self.chip and self.chip not in chip_presets() and not self.chip.endswith(".toml"):
            raise ValueError(f"unknown chip preset {self.chip!r} (known: {', '.join(chip_presets())})")
        if Path(self.file).suffix.lower() not in SUFFIXES:
            raise ValueError(f"file {self.file!r}: expected a {', '.join(SUFFIXES)} file")
        return self


@dataclass(frozen=True)
class Picture:
    """A written picture and the mappings it shows."""

    path: Path
    mappings: tuple[LayerMapping, ...]


def check_suffix(path: Path, what: str) -> None:
    if path.suffix.lower() not in SUFFIXES:
        raise ConfigError(f"{what} {str(path)!r}: expected a {', '.join(SUFFIXES)} file")


def import_mappers(source: str) -> None:
    """Import a Python file (``*.py``) or module that registers mappers (``register_mapper``),
    so that a command line can draw or map with them."""
    import importlib
    import importlib.util

    try:
        if source.endswith(".py"):
            path = Path(source)
            if not path.is_file():
                raise ConfigError(f"--register {source!r}: no such file")
            spec = importlib.util.spec_from_file_location(path.stem, path)
            module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
            spec.loader.exec_module(module)  # type: ignore[union-attr]
        else:
            importlib.import_module(source)
    except ConfigError:
        raise
    except Exception as exc:  # the user's code: any failure is one line naming it
        raise ConfigError(f"--register {source!r} failed: {type(exc).__name__}: {exc}") from None


def load_layers(model: str, compression: str = "dense", keep: float = 0.5) -> Workload:
    """Layers of a built-in model (compressed if asked) or of a layer table."""
    from imcsim.studies.evaluate import cached_workload

    table = model.startswith("table:") or model.endswith(".csv")
    if table and transform_of(compression) != "dense":
        raise ConfigError(f"compression {compression!r} needs a built-in torch model, "
                          f"not the layer table {model!r}")
    return cached_workload(model, transform_of(compression), keep)


def select_layers(layers: Sequence[LayerShape], name: str, source: str) -> tuple[LayerShape, ...]:
    """The layer called ``name``, or the R/L factors of the low-rank layer ``name``."""
    found = tuple(x for x in layers if x.name == name) or tuple(
        x for x in layers if x.factor_of == name)
    if found:
        return found
    names = list(dict.fromkeys([x.name for x in layers] + [x.factor_of for x in layers
                                                            if x.factor_of]))
    close = difflib.get_close_matches(name, names, n=4, cutoff=0.5) or names[:4]
    raise ConfigError(f"unknown layer {name!r} in {source} (close: {', '.join(close)}; "
                      f"{len(names)} layers, `imcsim map` lists them)")


def layer_mappings(layers: Sequence[LayerShape], mapper: str, chip: ChipConfig
                   ) -> tuple[LayerMapping, ...]:
    """Map the selected layer(s); a pair mapper places a factor pair together."""
    return map_layers(layers, get_mapper(mapper), chip.array)


def _caption(work: Workload, selected: tuple[LayerShape, ...], chip: ChipConfig,
             mappers: Sequence[str]) -> str:
    name = selected[0].factor_of or selected[0].name
    pair = " (low-rank pair: R, then L)" if len(selected) > 1 else ""
    chip_text = chip.name if chip.name != "custom" else "one weight per bit line"
    return f"{work.name}: {name}{pair} on {chip.array.label} ({chip_text}) — {', '.join(mappers)}"


def draw_layer(
    work: Workload, layer: str, mappers: Sequence[str], chip: ChipConfig, out: Path, *,
    tile: int | None = None, color_by: ColorBy = "filter",
) -> Picture:
    """Draw ``layer`` of ``work`` under every mapper side by side and save it to ``out``."""
    import matplotlib.pyplot as plt

    check_suffix(out, "--out")
    if not out.parent.is_dir():
        raise ConfigError(f"--out {str(out)!r}: folder {str(out.parent)!r} does not exist")
    for name in mappers:
        get_mapper(name)  # an unknown mapper fails before anything is drawn
    selected = select_layers(work.layers, layer, work.name)
    mappings = tuple(m for name in mappers for m in layer_mappings(selected, name, chip))
    cols_per_adc = chip.cost.adc.cols_per_adc if chip.cost is not None else None
    axes = plot_placements(mappings, tile, color_by=color_by, cols_per_adc=cols_per_adc,
                           title=_caption(work, selected, chip, mappers))
    figure = axes[0].figure
    figure.savefig(out, dpi=150)
    plt.close(figure)
    return Picture(path=out, mappings=mappings)


def draw_picture(spec: PictureSpec, out_dir: Path) -> Picture:
    """A recipe's ``[pictures]``: draw it into ``out_dir / spec.file``."""
    work = load_layers(spec.model, spec.compression, spec.keep)
    chip = build_chip(spec.chip or None, spec.array)
    return draw_layer(work, spec.layer, spec.mappers, chip, out_dir / spec.file, tile=spec.tile,
                      color_by=spec.color_by)
