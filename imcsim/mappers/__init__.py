"""Mappers: one contract, ``map(layer, array) -> LayerMapping``, and an explicit registry."""

from imcsim.mappers.base import (
    DENSE_MAPPERS,
    LayerMapping,
    Mapper,
    get_mapper,
    mapper_names,
    register_mapper,
)
from imcsim.mappers.best import Best
from imcsim.mappers.im2col import Im2col
from imcsim.mappers.low_rank import LowRank
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
register_mapper("low-rank-sdk", LowRank)
register_mapper("low-rank-vw-sdk", lambda: LowRank(base="vw-sdk", name="low-rank-vw-sdk"))

__all__ = [
    "Best", "DENSE_MAPPERS", "Im2col", "LayerMapping", "LowRank", "Mapper", "Pruned", "SdkReference",
    "SdkRectangular", "SdkUnconstrained", "VwSdk", "get_mapper", "mapper_names", "register_mapper",
]
