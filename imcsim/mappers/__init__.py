"""Mappers: one contract, ``map(layer, array) -> LayerMapping``, an explicit placement
behind every mapping, and an explicit registry (see ``README.md`` in this folder)."""

from imcsim.mappers.base import (
    DENSE_MAPPERS,
    Configurable,
    LMode,
    Mapper,
    MapperOptions,
    PairMapper,
    Schedule,
    get_mapper,
    mapper_names,
    register_mapper,
)
from imcsim.mappers.best import Best
from imcsim.mappers.grid import GridLayout
from imcsim.mappers.im2col import Im2col
from imcsim.mappers.low_rank import LowRank
from imcsim.mappers.mapping import LayerMapping, Role
from imcsim.mappers.placement import Placement, Tile, check_mapping
from imcsim.mappers.pruned import Pruned
from imcsim.mappers.sdk import SdkRectangular, SdkReference, SdkUnconstrained
from imcsim.mappers.vw_sdk import VwSdk

register_mapper("im2col", Im2col)
register_mapper("sdk", SdkReference)
register_mapper("sdk-unconstrained", SdkUnconstrained)
register_mapper("vw-sdk", VwSdk)
register_mapper("sdk-rect", SdkRectangular)
register_mapper("vw-sdk-ref", lambda: VwSdk(name="vw-sdk-ref", reference_bounds=True))
register_mapper("best", lambda: Best(tuple(get_mapper(n) for n in DENSE_MAPPERS)))
register_mapper("pruned-im2col", lambda: Pruned(base="im2col", name="pruned-im2col"))
register_mapper("pruned-sdk", Pruned)
register_mapper("pruned-sdk-unconstrained",
                lambda: Pruned(base="sdk-unconstrained", name="pruned-sdk-unconstrained"))
register_mapper("low-rank-sdk", LowRank)
register_mapper("low-rank-vw-sdk", lambda: LowRank(base="vw-sdk", name="low-rank-vw-sdk"))

__all__ = [
    "DENSE_MAPPERS", "Best", "Configurable", "GridLayout", "Im2col", "LMode", "LayerMapping",
    "LowRank", "Mapper", "MapperOptions", "PairMapper", "Placement", "Pruned", "Role",
    "Schedule", "SdkRectangular", "SdkReference", "SdkUnconstrained", "Tile", "VwSdk",
    "check_mapping", "get_mapper", "mapper_names", "register_mapper",
]
