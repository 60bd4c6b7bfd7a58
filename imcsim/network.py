"""``map_network``: map every layer of a network with one mapper on one chip."""

from __future__ import annotations

from collections.abc import Sequence

from imcsim.errors import ImcsimError, MappingError
from imcsim.hardware import ArrayConfig, ChipConfig
from imcsim.layers import LayerShape
from imcsim.mappers import LayerMapping, Mapper, MapperOptions, PairMapper, get_mapper
from imcsim.mappers.search import search
from imcsim.matmul import place_matmuls
from imcsim.report import NetworkReport

__all__ = ["as_chip", "compare_mappers", "factor_pairs", "map_layers", "map_network"]


def as_chip(chip: ChipConfig | ArrayConfig) -> ChipConfig:
    """Accept a bare array where a chip is expected."""
    return chip if isinstance(chip, ChipConfig) else ChipConfig(array=chip)


def _map_one(layer: LayerShape, mapper: Mapper, array: ArrayConfig) -> LayerMapping:
    try:
        return mapper.map(layer, array)
    except ImcsimError as exc:
        raise MappingError(f"layer {layer.name!r}, mapper {mapper.name!r}: {exc}") from None


def _map_pair(r: LayerShape, l_layer: LayerShape, mapper: PairMapper, array: ArrayConfig
              ) -> tuple[LayerMapping, LayerMapping]:
    try:
        return mapper.map_pair(r, l_layer, array)
    except ImcsimError as exc:
        raise MappingError(f"factor pair {r.factor_of!r}, mapper {mapper.name!r}: {exc}") from None


def factor_pairs(layers: Sequence[LayerShape]) -> dict[int, int]:
    """Index of each R factor → index of its L factor (same ``factor_of``, L after R)."""
    pending: dict[str, int] = {}
    pairs: dict[int, int] = {}
    for i, layer in enumerate(layers):
        if layer.factor_role == "R":
            pending[layer.factor_of] = i  # type: ignore[index]
        elif layer.factor_role == "L" and layer.factor_of in pending:
            pairs[pending.pop(layer.factor_of)] = i  # type: ignore[arg-type]
    return pairs


def map_layers(
    layers: Sequence[LayerShape], mapper: Mapper, array: ArrayConfig
) -> tuple[LayerMapping, ...]:
    """Map layers in order; a ``PairMapper`` places each low-rank pair together."""
    out: list[LayerMapping | None] = [None] * len(layers)
    if isinstance(mapper, PairMapper):
        for r, l_index in factor_pairs(layers).items():
            out[r], out[l_index] = _map_pair(layers[r], layers[l_index], mapper, array)
    return tuple(m if m is not None else _map_one(layer, mapper, array)
                 for m, layer in zip(out, layers))


def map_network(
    layers: Sequence[LayerShape],
    mapper: Mapper | str,
    chip: ChipConfig | ArrayConfig,
    *,
    model: str = "network",
    unmapped: Sequence[str] = (),
    options: MapperOptions | None = None,
) -> NetworkReport:
    """Map ``layers`` (in execution order) with ``mapper`` on ``chip``'s arrays.

    ``options`` configure a mapper given by name (``MapperOptions``: the low-rank
    ``r_mapper``, ``l_mode`` and ``schedule``).  Activation×activation products
    (``kind == "matmul"``) hold no weights: they are split off into ``report.matmuls`` and
    placed where ``chip.matmul`` says (``imcsim.matmul``).
    """
    weights = [layer for layer in layers if layer.kind != "matmul"]
    if not weights:
        raise MappingError(f"{model}: no weight layer to map")
    mapper = get_mapper(mapper, options) if isinstance(mapper, str) else mapper
    chip = as_chip(chip)
    mappings = map_layers(weights, mapper, chip.array)
    baseline = tuple(search("im2col", layer, chip.array)[0].cycles for layer in weights)
    products = place_matmuls([layer for layer in layers if layer.kind == "matmul"], chip)
    return NetworkReport(
        model=model, chip=chip, mapper=mapper.name, mappings=mappings,
        baseline_cycles=baseline, unmapped=tuple(unmapped), matmuls=products,
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
