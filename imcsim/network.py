"""``map_network``: map every layer of a network with one mapper on one chip."""

from __future__ import annotations

from collections.abc import Sequence

from imcsim.errors import ImcsimError, MappingError
from imcsim.hardware import ArrayConfig, ChipConfig
from imcsim.layers import LayerShape
from imcsim.mappers import LayerMapping, Mapper, get_mapper
from imcsim.mappers.im2col import im2col_candidate
from imcsim.report import NetworkReport


def as_chip(chip: ChipConfig | ArrayConfig) -> ChipConfig:
    """Accept a bare array where a chip is expected."""
    return chip if isinstance(chip, ChipConfig) else ChipConfig(array=chip)


def map_layer(layer: LayerShape, mapper: Mapper, array: ArrayConfig) -> LayerMapping:
    """``mapper.map`` with the layer and mapper named in any error."""
    try:
        return mapper.map(layer, array)
    except ImcsimError as exc:
        raise MappingError(f"layer {layer.name!r}, mapper {mapper.name!r}: {exc}") from None


def map_network(
    layers: Sequence[LayerShape],
    mapper: Mapper | str,
    chip: ChipConfig | ArrayConfig,
    *,
    model: str = "network",
    unmapped: Sequence[str] = (),
) -> NetworkReport:
    """Map ``layers`` (in execution order) with ``mapper`` on ``chip``'s arrays."""
    if not layers:
        raise MappingError(f"{model}: no Conv2d/Linear layer to map")
    mapper = get_mapper(mapper) if isinstance(mapper, str) else mapper
    chip = as_chip(chip)
    mappings = tuple(map_layer(layer, mapper, chip.array) for layer in layers)
    baseline = tuple(int(im2col_candidate(layer, chip.array).cycles[0]) for layer in layers)
    return NetworkReport(
        model=model, chip=chip, mapper=mapper.name, mappings=mappings,
        baseline_cycles=baseline, unmapped=tuple(unmapped),
    )


def compare_mappers(
    layers: Sequence[LayerShape],
    mappers: Sequence[Mapper | str],
    chip: ChipConfig | ArrayConfig,
    *,
    model: str = "network",
) -> list[NetworkReport]:
    """One report per mapper, same layers and chip (a side-by-side comparison)."""
    return [map_network(layers, m, chip, model=model) for m in mappers]
