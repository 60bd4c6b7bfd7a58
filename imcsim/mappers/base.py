"""The mapping contract: ``Mapper.map(layer, array) -> LayerMapping``, the factor-pair
protocol, typed mapper options and the registry.

Any object with a ``name`` and ``map`` is a mapper.  Its ``LayerMapping`` carries a
layout that yields an explicit placement (``imcsim.mappers.placement``); the quickest
way to write one is to build the tiles by hand and return
``Placement.from_tiles(layer, array, window, tiles).to_mapping(mapper=self.name)``.

A low-rank factorised layer is two layers, R (K×K conv C_in → k) and L (1×1 conv
k → C_out), tagged ``factor_of=<layer>`` and ``factor_role="R"``/``"L"`` by the
extractor.  A :class:`PairMapper` places such a pair together (``map_pair``);
``map_network`` finds the pairs by those tags and asks any mapper that declares the
protocol.  A mapper with options implements :class:`Configurable`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, Protocol, runtime_checkable

from imcsim._config import StrictModel
from imcsim.errors import ConfigError
from imcsim.hardware import ArrayConfig
from imcsim.layers import LayerShape
from imcsim.mappers.mapping import LayerMapping

__all__ = [
    "DENSE_MAPPERS", "LMode", "Configurable", "Mapper", "MapperOptions", "PairMapper",
    "Schedule", "get_mapper", "mapper_names", "register_mapper",
]

Schedule = Literal["sequential", "pipelined"]
"""How consecutive computations share time: one after the other on the same arrays, or
pipelined on arrays of their own (the slower one sets the pace).  Used for the two
factors of a low-rank pair and for the layers of a network in the cost model."""

LMode = Literal["block-diagonal", "im2col", "independent"]
"""How the 1×1 factor L of a low-rank pair runs on R's window outputs (``mappers.low_rank``)."""


class MapperOptions(StrictModel):
    """Options of the mappers that have some; each mapper reads the fields it knows."""

    r_mapper: str | None = None
    """Low-rank: the dense mapper of the K×K factor R (None: the method's own, e.g. ``sdk``
    for ``low-rank-sdk``)."""
    l_mode: LMode = "block-diagonal"
    """Low-rank: how L runs on R's window outputs."""
    schedule: Schedule = "sequential"
    """Low-rank: R then L on the same arrays, or pipelined on separate arrays."""


class Mapper(Protocol):
    """Anything with a name and ``map(layer, array) -> LayerMapping``."""

    name: str

    def map(self, layer: LayerShape, array: ArrayConfig) -> LayerMapping: ...


@runtime_checkable
class PairMapper(Protocol):
    """A mapper that places the two factors of a low-rank layer together."""

    name: str

    def map(self, layer: LayerShape, array: ArrayConfig) -> LayerMapping: ...

    def map_pair(
        self, r: LayerShape, l_layer: LayerShape, array: ArrayConfig
    ) -> tuple[LayerMapping, LayerMapping]:
        """(R's mapping, L's mapping), with ``role`` ``"R"`` and ``"L"``."""
        ...


@runtime_checkable
class Configurable(Protocol):
    """A mapper whose behaviour ``MapperOptions`` can change."""

    def with_options(self, options: MapperOptions) -> Mapper: ...


MapperFactory = Callable[[], Mapper]
_REGISTRY: dict[str, MapperFactory] = {}
DENSE_MAPPERS = ("im2col", "sdk", "sdk-unconstrained", "vw-sdk", "sdk-rect")


def register_mapper(name: str, factory: MapperFactory) -> None:
    """Add a mapper under ``name`` (``factory()`` builds it); a duplicate name is refused."""
    if name in _REGISTRY:
        raise ConfigError(f"mapper {name!r} is already registered")
    _REGISTRY[name] = factory


def mapper_names() -> list[str]:
    return list(_REGISTRY)


def get_mapper(name: str, options: MapperOptions | None = None) -> Mapper:
    """The mapper registered under ``name``, configured by ``options`` if it takes any."""
    try:
        mapper = _REGISTRY[name]()
    except KeyError:
        known = ", ".join(_REGISTRY)
        raise ConfigError(f"unknown mapper {name!r} (known: {known})") from None
    if options is not None and isinstance(mapper, Configurable):
        return mapper.with_options(options)
    return mapper
