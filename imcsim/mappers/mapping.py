"""``LayerMapping``: what one mapper decided for one layer, and what it costs in cycles.

A mapping carries its layout — an explicit :class:`~imcsim.mappers.placement.Placement`,
or a closed-form :class:`~imcsim.mappers.grid.GridLayout` that builds one on demand
(cached) — and the counts every consumer reads.  The counts are derived from the
placement (``Placement.to_mapping``) or computed in closed form by a mapper and checked
against the placement by :func:`check_mapping`, in one place; the cost model, the cycle
simulator and the functional simulation read the counts and the placement, never the
mapper's own parameters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal, Protocol

from imcsim.hardware import ArrayConfig
from imcsim.layers import LayerShape, Pair

__all__ = ["Layout", "LayerMapping", "Role", "TileSet"]

Role = Literal["layer", "R", "L"]
"""``layer``: an ordinary layer; ``R``/``L``: the two factors of a low-rank pair."""


class TileSet(Protocol):
    """What a mapping's explicit placement offers the code that reads it.

    :class:`~imcsim.mappers.placement.Placement` is the implementation; the record declares
    only what it hands on, so it needs nothing from the module that builds placements (and
    builds ``LayerMapping`` records from them: ``Placement.to_mapping``).
    """

    window: Pair
    tiles: tuple[Any, ...]
    """Every tile: ``Tile(rows (n, 3) (channel, dy, dx), cols (m, 2) (copy, filter))``."""

    @property
    def counts(self) -> Any:
        """The counts the tiles define (``PlacementCounts``), checked against the record's."""

    def locate(self) -> tuple[Any, Any, Any]: ...

    def reduction_partition(self) -> Any: ...


class Layout(Protocol):
    """Anything that lays a layer's weights out as an explicit placement."""

    def placement(self, layer: LayerShape, array: ArrayConfig) -> TileSet: ...

    def describe(self) -> dict[str, Any]: ...


@dataclass(frozen=True, eq=False)
class LayerMapping:
    """One layer on one array: its layout and the counts derived from it.

    A *computing cycle* is one activation of one array tile with all input bits applied;
    ``cycles = windows × tiles``.  Counts are per parallel window unless said otherwise.
    """

    layer: LayerShape
    array: ArrayConfig
    mapper: str
    """Registered name of the mapper that produced this mapping."""
    scheme: str
    """The layout scheme behind it (``im2col``, ``sdk``, ``vw-sdk``, ``block-diagonal``…;
    for ``best`` the winning mapper, for a custom placement the mapper's name)."""
    window: Pair
    """Parallel window a_h × a_w: output positions of every filter per cycle."""
    windows: int
    """N_PW: parallel windows to cover the output, ⌈O_h/a_h⌉·⌈O_w/a_w⌉."""
    tiles: int
    """Array tiles activated per window."""
    outputs: int
    """Distinct (window copy, filter) columns per window: finished outputs per window."""
    row_tiles: int
    """Largest number of tiles sharing one (copy, filter) column: partial sums that the
    adder tree sums for one output."""
    driven_rows: int
    """Array rows driven, summed over the tiles of one window."""
    driven_cols: int
    """Physical columns read (bit slices included), summed over the tiles of one window."""
    cell_slots: int
    """Σ over the tiles of one window of driven rows × physical columns read."""
    weight_cells: int
    """Cells holding a (nonzero) weight, window copies and bit slices included."""
    layout: Layout = field(repr=False)
    skipped_rows: int = 0
    """Rows the mapper left out because every weight on them is zero (row skipping)."""
    index_rows: int = 0
    """Kept rows whose input must be routed by index/multiplexer logic."""
    index_bits: int = 0
    """Pattern-index bits the layer's sparsity format stores (read once per window)."""
    overlap_cycles: int = 0
    """Cycles hidden behind the previous layer (pipelined low-rank factors)."""
    role: Role = "layer"

    @property
    def cycles(self) -> int:
        """Computing cycles of the layer for one image: windows × tiles."""
        return self.windows * self.tiles

    @property
    def latency_cycles(self) -> int:
        """Cycles this layer adds to the critical path."""
        return self.cycles - self.overlap_cycles

    @property
    def utilization(self) -> float:
        """Weight cells / cells of the tiles used."""
        return self.weight_cells / (self.tiles * self.array.cells)

    @property
    def row_utilization(self) -> float:
        """Fraction of the array rows driven per cycle (mean over tiles)."""
        return self.driven_rows / (self.tiles * self.array.rows)

    @property
    def col_utilization(self) -> float:
        """Fraction of the array columns read per cycle (mean over tiles)."""
        return self.driven_cols / (self.tiles * self.array.cols)

    @cached_property
    def placement(self) -> TileSet:
        """Every tile of the mapping, explicitly (built once, on first use): a
        ``Placement`` for every layout in this package."""
        return self.layout.placement(self.layer, self.array)

    def summary(self) -> dict[str, Any]:
        """Flat record for tables, CSV and JSON."""
        return {
            "name": self.layer.name,
            "kind": self.layer.kind,
            "layer": self.layer.describe(),
            "mapper": self.mapper,
            "scheme": self.scheme,
            "role": self.role,
            "window": f"{self.window[0]}x{self.window[1]}",
            **self.layout.describe(),
            "windows": self.windows,
            "tiles": self.tiles,
            "row_tiles": self.row_tiles,
            "cycles": self.cycles,
            "latency_cycles": self.latency_cycles,
            "utilization": self.utilization,
            "row_utilization": self.row_utilization,
            "col_utilization": self.col_utilization,
            "weight_cells": self.weight_cells,
            "skipped_rows": self.skipped_rows,
            "index_rows": self.index_rows,
            "index_bits": self.index_bits,
            "params": self.layer.nonzero_params,
            "macs": self.layer.macs,
        }
