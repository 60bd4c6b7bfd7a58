"""The chip beyond the arrays: technology, SRAM buffers, interconnect, digital post-processing.

Optional sections of a chip's ``[cost]`` (``imcsim.periphery.CostConfig``); a section that
is absent costs nothing, so a preset states what it models.  Each is priced per event
by ``imcsim.pricing``:

* ``[cost.technology]`` — node and supply the preset's figures hold at; ``--node``
  rescales them with Stillmaker & Baas (2017), ``imcsim.techmodels``.
* ``[cost.memory]`` — the global input/output SRAM buffers by capacity: one read per
  input bit sent to the arrays, one write per output bit, each at the CACTI energy of
  that capacity and port width (``mappings/tech/sram_cacti.csv``).
* ``[cost.interconnect]`` — the network that carries those bits between the buffer and
  the tiles: per bit and per hop, with the hop count of a stated topology over the
  tiles a layer occupies (H-tree: ⌈log2 tiles⌉ levels, as NeuroSim's chip-level H-tree;
  mesh: the mean Manhattan distance ⌈√tiles⌉ from an edge buffer).
* ``[cost.postprocess]`` — digital units after the accumulation: activation,
  normalization/requantization and pooling, per output of a layer.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field

from imcsim._config import StrictModel
from imcsim.techmodels import MAX_NODE_NM, MIN_NODE_NM, sram_point

__all__ = ["InterconnectConfig", "MemoryConfig", "PostProcessConfig", "TechnologyConfig",
           "Topology"]

Topology = Literal["htree", "mesh"]


class TechnologyConfig(StrictModel):
    """CMOS node and supply at which a preset's periphery figures hold."""

    node_nm: float = Field(ge=MIN_NODE_NM, le=MAX_NODE_NM)
    """Technology node in nm (7..130, the range of the Stillmaker & Baas scaling table)."""
    supply_v: float = Field(gt=0.3, le=2.0)
    """Logic supply in volts at which the figures hold (the energy scaling uses it)."""
    source: str = ""
    """Where node and supply come from (paper section, simulator file)."""


class MemoryConfig(StrictModel):
    """Global SRAM buffers priced by capacity with CACTI (``mappings/tech/sram_cacti.csv``).

    The table holds CACTI's 22/32/45/65 nm technologies; the node is the preset's
    ``technology.node_nm`` rounded to the nearest of them, and an energy at another node
    is scaled with Stillmaker & Baas (done by ``--node``)."""

    input_kb: float = Field(ge=1, le=2048)
    """Capacity of the buffer that holds a layer's inputs, KiB (CACTI table: 1..2048)."""
    output_kb: float = Field(ge=1, le=2048)
    """Capacity of the buffer that collects a layer's outputs, KiB."""
    width_bits: Literal[64, 128, 256] = 64
    """Port width: bits per access (the table's 64, 128 or 256)."""
    table_node_nm: Literal[22, 32, 45, 65] = 22
    """CACTI technology of the table row used (the preset's node or the nearest one)."""
    energy_scale: float = Field(default=1.0, gt=0, le=1e3)
    """Factor on the CACTI energies (1 at ``table_node_nm``; ``--node`` sets it)."""
    area_scale: float = Field(default=1.0, gt=0, le=1e3)
    """Factor on the CACTI areas (1 at ``table_node_nm``; ``--node`` sets it)."""

    def read_pj_per_bit(self) -> float:
        """CACTI read energy of one port access of the input buffer, per bit."""
        p = sram_point(self.input_kb, self.table_node_nm, self.width_bits)
        return self.energy_scale * p.read_pj / self.width_bits

    def write_pj_per_bit(self) -> float:
        """CACTI write energy of one port access of the output buffer, per bit."""
        p = sram_point(self.output_kb, self.table_node_nm, self.width_bits)
        return self.energy_scale * p.write_pj / self.width_bits

    def access_ns(self) -> float:
        """CACTI access time of the input buffer (one port access); not node-scaled."""
        return sram_point(self.input_kb, self.table_node_nm, self.width_bits).access_ns

    def area_um2(self) -> float:
        """Area of both buffers (µm², CACTI), counted once per chip."""
        return self.area_scale * sum(
            sram_point(kb, self.table_node_nm, self.width_bits).area_um2
            for kb in (self.input_kb, self.output_kb)
        )


class InterconnectConfig(StrictModel):
    """Buffer-to-tile network: bits times hops, a hop's energy and latency."""

    topology: Topology = "htree"
    """``htree`` (NeuroSim's chip-level H-tree) or ``mesh`` (router per tile)."""
    arrays_per_tile: int = Field(ge=1, le=65536)
    """Arrays behind one leaf of the network (NeuroSim V1.3's floorplan of the VGG-8 run:
    a 1024x1024 tile of 2x2 PEs of 4x4 128x128 sub-arrays = 64; ISAAC: 96)."""
    energy_pj_per_bit_hop: float = Field(ge=0, le=1e3)
    """Energy to move one bit across one hop (one H-tree level or one router + link)."""
    latency_ns_per_hop: float = Field(ge=0, le=1e6)
    """Latency a transfer adds per hop (pipelined: paid once per layer, not per bit)."""
    width_bits: int = Field(ge=1, le=65536)
    """Bits the network carries per cycle."""
    cycle_ns: float = Field(gt=0, le=1e6)
    """Clock period of the network (one ``width_bits`` transfer per cycle)."""

    def hops(self, arrays: int) -> int:
        """Hops from the buffer to the farthest tile of a layer that uses ``arrays``."""
        tiles = max(1, math.ceil(arrays / self.arrays_per_tile))
        if self.topology == "htree":
            return max(1, math.ceil(math.log2(tiles)))
        return max(1, math.ceil(math.sqrt(tiles)))


class PostProcessConfig(StrictModel):
    """Digital post-processing of each layer output after accumulation."""

    activation_energy_pj: float = Field(ge=0, le=1e3)
    """One activation (ReLU: a comparator/multiplexer on an output word), per output."""
    normalization_energy_pj: float = Field(default=0.0, ge=0, le=1e3)
    """One normalization/requantization (a multiply-add on an output word), per output."""
    pooling_energy_pj: float = Field(default=0.0, ge=0, le=1e3)
    """One pooling comparison, per output (charged on every output: an upper bound for
    networks that pool only some layers)."""
    ns_per_output: float = Field(default=0.0, ge=0, le=1e3)
    """Time per output not hidden behind the arrays (0: pipelined behind the reads)."""

    def energy_per_output_pj(self) -> float:
        return self.activation_energy_pj + self.normalization_energy_pj + self.pooling_energy_pj
