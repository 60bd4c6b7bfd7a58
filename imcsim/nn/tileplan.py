"""Index plan of one mapped layer: which weights share a column, hence one ADC read.

Built from the mapping's placement (``check_mapping(mapping).reduction_partition()``) —
the same placement the cycle counts come from, whatever mapper built it.  A *column* is a (window copy, filter) pair; its weights are split over
row tiles (*slots*) and each slot's partial sum is read by the ADC separately.  Columns of
one copy whose slot pattern over the reduction index (channel, tap) is identical form a
*class*.  One class × one slot is one group of a grouped convolution:

* ``channels`` (A, K, R, C) — input channels the block reads (padding reads channel 0
  and meets zero weights);
* ``weight_index`` (A, K, R, F, C·K_h·K_w) — flat index into the weight of each block
  entry (``C_out·C_in/g·K_h·K_w`` = the appended zero: no cell there);
* ``filters`` (A, K, F) — output filter of each class member (``C_out`` = padding);
* ``inverse`` (A, C_out) — where each filter sits among its copy's K·F class members.

A copy's output is then one strided grouped convolution whose groups are its blocks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from imcsim.mappers.mapping import LayerMapping
from imcsim.mappers.placement import check_mapping

__all__ = ["TilePlan", "build_plan", "column_slots"]


@dataclass(frozen=True)
class TilePlan:
    """Index arrays of one layer (see the module docstring)."""

    window: tuple[int, int]
    channels: np.ndarray
    weight_index: np.ndarray
    filters: np.ndarray
    inverse: np.ndarray
    on_chip: np.ndarray
    """(C_out, C_in/g, K_h, K_w) bool: the weight sits on some array row."""
    row_position: np.ndarray
    """Like ``weight_index``: the word line of each block entry in its tile (−1: no cell)."""
    col_position: np.ndarray
    """Like ``weight_index``: the weight column of each block entry in its tile (−1: no cell)."""
    tile_position: np.ndarray
    """Like ``weight_index``: the tile (placement index) of each block entry (−1: no cell)."""

    @property
    def copies(self) -> int:
        return self.window[0] * self.window[1]

    @property
    def classes(self) -> int:
        """Classes per copy (padded to the largest copy)."""
        return self.channels.shape[1]

    @property
    def slots(self) -> int:
        """Row tiles a column's partial sums are split over (the most of any column)."""
        return self.channels.shape[2]


def column_slots(partition: np.ndarray) -> np.ndarray:
    """(A, C_out, J) tile ids → rank of each id among its column's distinct ids (−1 stays)."""
    a, f = partition.shape[:2]
    ids = partition.reshape(a * f, -1)
    order = np.argsort(ids, axis=1, kind="stable")
    ordered = np.take_along_axis(ids, order, axis=1)
    new = np.ones_like(ordered, dtype=bool)
    new[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    ranked = np.cumsum(new & (ordered >= 0), axis=1) - 1
    rank = np.empty_like(ranked)
    np.put_along_axis(rank, order, ranked, axis=1)
    rank[ids < 0] = -1
    return rank.reshape(a, f, -1)


def _classes_of_copy(slots: np.ndarray, out_per_group: int) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """(group, filters, slot pattern) of each class of one copy's columns ``slots`` (F, J)."""
    group = np.arange(slots.shape[0]) // out_per_group
    keys, inverse = np.unique(np.column_stack([group, slots]), axis=0, return_inverse=True)
    inverse = inverse.ravel()
    return [(int(key[0]), np.flatnonzero(inverse == k), key[1:]) for k, key in enumerate(keys)]


def build_plan(mapping: LayerMapping) -> TilePlan:
    """The index plan of ``mapping`` (numpy; done once per layer at conversion)."""
    layer = mapping.layer
    partition, row_of, col_of = check_mapping(mapping).locate()
    a, c_out = partition.shape[:2]
    taps = layer.kernel_size[0] * layer.kernel_size[1]
    per_filter = layer.in_per_group * taps
    slots = column_slots(partition.reshape(a, c_out, per_filter))
    classes = [_classes_of_copy(slots[copy], layer.out_per_group) for copy in range(a)]
    n_slots = max(int(slots.max()) + 1, 1)
    blocks = [[[np.flatnonzero(pattern == r) for r in range(n_slots)] for _, _, pattern in cc]
              for cc in classes]
    c_max = max([len(np.unique(b // taps)) for cc in blocks for bl in cc for b in bl] + [1])
    k_max = max(len(cc) for cc in classes)
    f_max = max(len(f) for cc in classes for _, f, _ in cc)
    channels = np.zeros((a, k_max, n_slots, c_max), dtype=np.int64)
    weight_index = np.full((a, k_max, n_slots, f_max, c_max * taps), c_out * per_filter,
                           dtype=np.int64)
    filters = np.full((a, k_max, f_max), c_out, dtype=np.int64)
    for copy, cc in enumerate(classes):
        for k, (group, members, _) in enumerate(cc):
            filters[copy, k, : len(members)] = members
            for r, rows in enumerate(blocks[copy][k]):
                chans, pos = np.unique(rows // taps, return_inverse=True)
                channels[copy, k, r, : len(chans)] = group * layer.in_per_group + chans
                local = np.full(c_max * taps, -1, dtype=np.int64)
                local[pos.ravel() * taps + rows % taps] = rows
                weight_index[copy, k, r, : len(members)] = np.where(
                    local[None, :] >= 0, members[:, None] * per_filter + local[None, :],
                    c_out * per_filter,
                )
    inverse = np.zeros((a, c_out), dtype=np.int64)
    for copy in range(a):
        flat = filters[copy].ravel()
        real = flat < c_out
        inverse[copy, flat[real]] = np.flatnonzero(real)
    return TilePlan(window=mapping.window, channels=channels, weight_index=weight_index,
                    filters=filters, inverse=inverse, on_chip=(partition >= 0).any(axis=0),
                    row_position=_per_entry(row_of, weight_index),
                    col_position=_per_entry(col_of, weight_index),
                    tile_position=_per_entry(partition, weight_index))


def _per_entry(per_weight: np.ndarray, weight_index: np.ndarray) -> np.ndarray:
    """(A, C_out, C_in/g, K_h, K_w) values → aligned with ``weight_index`` (padding: −1)."""
    flat = per_weight.reshape(per_weight.shape[0], -1)
    padded = np.concatenate([flat, np.full((len(flat), 1), -1, dtype=flat.dtype)], axis=1)
    return np.stack([padded[a][weight_index[a]] for a in range(len(flat))])

