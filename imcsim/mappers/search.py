"""Window search of the dense mappers: one call (``search``) or many (``map_batch``).

The compiled kernels live in ``imcsim.mappers._search`` (numba, imported on first use so
that ``import imcsim`` stays light); ``geometry.candidates`` is the readable reference they
are tested against.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from imcsim.errors import ConfigError
from imcsim.hardware import ArrayConfig
from imcsim.layers import LayerShape
from imcsim.mappers.geometry import Candidate, Tiling

__all__ = ["BatchResult", "SEARCHES", "geom", "map_batch", "search"]

SEARCHES = ("im2col", "sdk", "sdk-unconstrained", "vw-sdk", "sdk-rect", "vw-sdk-ref", "best")
"""Searches with a compiled kernel (the names of the mappers that run them)."""


def geom(layer: LayerShape, array: ArrayConfig) -> np.ndarray:
    """A (layer, array) packed for the kernels: int64[13] (see ``_search``)."""
    (kh, kw), (sh, sw), (dh, dw), (oh, ow) = (
        layer.kernel_size, layer.stride, layer.dilation, layer.output_size)
    return np.array([kh, kw, sh, sw, dh, dw, oh, ow, layer.in_per_group, layer.out_per_group,
                     layer.groups, array.rows, array.effective_cols], dtype=np.int64)


def _kernels():
    from imcsim.mappers import _search

    return _search


def _as_candidate(record: Sequence[int]) -> tuple[Candidate, Tiling, str]:
    values = [int(v) for v in record]
    tiling: Tiling = "channel" if values[10] else "element"
    return Candidate(*values[:10]), tiling, SEARCHES[values[12]]


def search(kind: str, layer: LayerShape, array: ArrayConfig) -> tuple[Candidate, Tiling, str]:
    """The window ``kind`` chooses: (candidate, tiling, the search that won — for ``best``
    one of the five dense mappers, else ``kind`` itself).  A ``sequential`` layer (an RNN's
    time steps) admits only the 1×1 window, which every search then reduces to: im2col."""
    kind = "im2col" if layer.sequential else kind
    return _as_candidate(_kernels().search_one(geom(layer, array), SEARCHES.index(kind)))


@dataclass(frozen=True)
class BatchResult:
    """Many layers × arrays mapped by one search: arrays of shape (layers, arrays)."""

    mapper: str
    records: np.ndarray
    """(layers, arrays, 13) int64 records (``_search.FIELDS``)."""

    def field(self, name: str) -> np.ndarray:
        from imcsim.mappers._search import FIELDS

        return self.records[..., FIELDS.index(name)]

    @property
    def cycles(self) -> np.ndarray:
        return self.field("cycles")

    @property
    def tiles(self) -> np.ndarray:
        return self.field("row_tiles") * self.field("col_tiles") * self.field("group_sets")

    @property
    def windows(self) -> np.ndarray:
        """(layers, arrays, 2) parallel windows a_h × a_w."""
        return np.stack([self.field("a_h"), self.field("a_w")], axis=-1)


def map_batch(
    layers: Sequence[LayerShape], arrays: Sequence[ArrayConfig], mapper: str = "vw-sdk"
) -> BatchResult:
    """Map every layer on every array with a dense mapper in one compiled call.

    Equal to ``get_mapper(mapper).map(layer, array)`` pair by pair (tested), for sweeps
    and rank searches that need counts of thousands of (layer, array) pairs.
    """
    if mapper not in SEARCHES:
        raise ConfigError(f"map_batch: mapper {mapper!r} has no batched search "
                          f"(batched: {', '.join(SEARCHES)})")
    if not layers or not arrays:
        raise ConfigError("map_batch: give at least one layer and one array")
    geoms = np.stack([geom(layer, array) for layer in layers for array in arrays])
    records = _kernels().search_batch(geoms, SEARCHES.index(mapper))
    records = records.reshape(len(layers), len(arrays), -1)
    for i, layer in enumerate(layers):  # one time step per window (see ``search``)
        if layer.sequential:
            records[i] = _kernels().search_batch(geoms[i * len(arrays):(i + 1) * len(arrays)],
                                                 SEARCHES.index("im2col"))
    return BatchResult(mapper=mapper, records=records)
