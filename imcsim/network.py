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


def map_pair(
    r: LayerShape, l_layer: LayerShape, mapper: Mapper, array: ArrayConfig
) -> tuple[LayerMapping, LayerMapping]:
    """``mapper.map_factors`` of a low-rank factor pair, errors naming the pair."""
    try:
        return mapper.map_factors(r, l_layer, array)  # type: ignore[attr-defined]
    except ImcsimError as exc:
        raise MappingError(f"factor pair {r.factor_of!r}, mapper {mapper.name!r}: {exc}") from None


def map_layers(
    layers: Sequence[LayerShape], mapper: Mapper, array: ArrayConfig
) -> tuple[LayerMapping, ...]:
    """Map layers in order; consecutive layers with the same non-None ``factor_of`` go
    through ``mapper.map_factors(r, l, array)`` when the mapper has one."""
    pairs = hasattr(mapper, "map_factors")
    out: list[LayerMapping] = []
    i = 0
    while i < len(layers):
        layer, nxt = layers[i], layers[i + 1] if i + 1 < len(layers) else None
        if pairs and nxt is not None and layer.factor_of is not None and nxt.factor_of == layer.factor_of:
            out.extend(map_pair(layer, nxt, mapper, array))
            i += 2
        else:
            out.append(map_layer(layer, mapper, array))
            i += 1
    return tuple(out)


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
    mappings = map_layers(layers, mapper, chip.array)
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
