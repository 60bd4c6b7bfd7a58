"""Published component models shipped as data: survey ADC, CACTI SRAM, CMOS node scaling.

Each model reads one file of ``mappings/tech/`` that names its source and version:

* ``adc_survey.toml`` — ADC energy and area as a function of resolution, node and
  sample rate: the fit of B. Murmann's ADC survey by the Accelergy project
  (hwcomponents-adc, the model CiMLoop uses; Andrulis et al., arXiv 2404.06553).
* ``sram_cacti.csv`` — SRAM read/write energy, area and access time by node, capacity
  and port width, generated with CACTI 7 through hwcomponents-cacti
  (``scripts/build_tech_tables.py`` rebuilds it in a Python 3.12 venv).
* ``stillmaker_baas_2017.toml`` — energy (with supply), area and delay scaling between
  CMOS nodes (Stillmaker & Baas, Integration 58, 2017).

Nothing here imports hwcomponents: the tables are data, so the 3.11 install needs none.
"""

from __future__ import annotations

import csv
import math
from bisect import bisect_left
from functools import cache
from typing import Any

from imcsim._data import data_dir, read_text, read_toml
from imcsim.errors import ConfigError

__all__ = ["MAX_NODE_NM", "MIN_NODE_NM", "SramPoint", "adc_survey_area_um2",
           "adc_survey_energy_pj", "area_scale", "delay_scale", "energy_scale", "sram_point"]

MIN_NODE_NM = 7.0
"""Smallest node of the scaling table (Stillmaker & Baas stop at 7 nm)."""
MAX_NODE_NM = 130.0
"""Largest node of the scaling table as shipped (the paper starts at 180 nm)."""


@cache
def _adc() -> dict[str, Any]:
    return read_toml(data_dir("tech", "adc_survey.toml"), "ADC survey model")


@cache
def _scaling() -> dict[str, Any]:
    return read_toml(data_dir("tech", "stillmaker_baas_2017.toml"), "scaling table")


def _check_adc(bits: int, node_nm: float, rate_hz: float) -> dict[str, Any]:
    model = _adc()
    if not 1 <= bits <= len(model["foms_max_by_enob"]) - 1:
        raise ConfigError(f"survey ADC: {bits} bits outside 1..{len(model['foms_max_by_enob']) - 1}")
    if not (node_nm > 0 and rate_hz > 0):
        raise ConfigError(f"survey ADC: node {node_nm} nm and rate {rate_hz} Hz must be > 0")
    if math.log(rate_hz) > model["max_ln_freq"]:
        raise ConfigError(f"survey ADC: {rate_hz:.3g} conversions/s per ADC exceeds the "
                          f"survey's 10 GS/s")
    return model


def adc_survey_energy_pj(bits: int, node_nm: float, rate_hz: float) -> float:
    """Energy of one conversion (pJ) of a ``bits``-bit ADC at ``node_nm`` converting
    ``rate_hz`` samples/s: the Schreier-FOM bound of the survey's best designs at that
    resolution and rate, scaled to the node (``adc_survey.toml`` gives the formula)."""
    m = _check_adc(bits, node_nm, rate_hz)
    sndr = 6.0206 * bits + 1.7609
    foms = min(m["foms_intercept"] + m["foms_freq_slope"] * math.log(rate_hz),
               m["foms_max_by_enob"][math.ceil(bits)])
    bound = 1.0 / (2.0 * 10.0 ** ((foms - sndr) / 10.0))
    return bound * math.exp(m["tech_intercept"] + m["tech_slope"] * math.log(node_nm)
                            + m["enob_slope"] * math.log(bits) + m["energy_residual"])


def adc_survey_area_um2(bits: int, node_nm: float, rate_hz: float) -> float:
    """Area of one ADC (µm²) from the same survey fit (a function of node, rate, energy)."""
    m = _check_adc(bits, node_nm, rate_hz)
    energy = adc_survey_energy_pj(bits, node_nm, rate_hz)
    return math.exp(m["area_intercept"] + m["area_tech"] * math.log(node_nm)
                    + m["area_freq"] * math.log(rate_hz) + m["area_energy"] * math.log(energy))


def _node_index(node_nm: float) -> float:
    """Fractional row of ``node_nm`` in the scaling table (linear between rows)."""
    nodes = _scaling()["nodes_nm"]
    if not MIN_NODE_NM <= node_nm <= MAX_NODE_NM:
        raise ConfigError(f"node {node_nm} nm outside the scaling table "
                          f"({MIN_NODE_NM:g}..{MAX_NODE_NM:g} nm, Stillmaker & Baas 2017)")
    for i in range(len(nodes) - 1):
        big, small = nodes[i], nodes[i + 1]
        if small <= node_nm <= big:
            return i + (big - node_nm) / (big - small)
    return float(len(nodes) - 1)


def _interp(row_of: Any, x: float) -> float:
    lo = math.floor(x)
    hi = min(lo + 1, len(_scaling()["nodes_nm"]) - 1)
    return row_of(lo) * (1 - (x - lo)) + row_of(hi) * (x - lo)


def energy_scale(to_nm: float, from_nm: float, to_v: float, from_v: float | None = None) -> float:
    """Factor that takes a switching energy from (``from_nm``, ``from_v``) to (``to_nm``,
    ``to_v``); ``from_v`` defaults to ``to_v`` (Stillmaker & Baas 2017: per-node quadratic
    in the supply)."""
    poly = _scaling()["energy_vdd_poly"]

    def at(supply_v: float) -> Any:
        def row(r: int) -> float:
            a, b, c = poly[r]
            return a * supply_v**2 + b * supply_v + c
        return row

    source_v = to_v if from_v is None else from_v
    return _interp(at(to_v), _node_index(to_nm)) / _interp(at(source_v), _node_index(from_nm))


def area_scale(to_nm: float, from_nm: float) -> float:
    """Factor that takes an area from ``from_nm`` to ``to_nm`` (Stillmaker & Baas 2017)."""
    table = _scaling()["area_ratio"]
    x, y = _node_index(from_nm), _node_index(to_nm)
    return _interp(lambda r: _interp(lambda c: table[r][c], y), x)


def delay_scale(to_nm: float, from_nm: float) -> float:
    """Factor that takes a gate delay from ``from_nm`` to ``to_nm``: proportional to the
    node (the first-order rule hwcomponents applies with the Stillmaker & Baas tables)."""
    _node_index(to_nm), _node_index(from_nm)
    return to_nm / from_nm


class SramPoint(tuple):
    """(read_pj, write_pj, area_um2, access_ns) of one SRAM access of ``width`` bits."""

    __slots__ = ()

    @property
    def read_pj(self) -> float:
        return self[0]

    @property
    def write_pj(self) -> float:
        return self[1]

    @property
    def area_um2(self) -> float:
        return self[2]

    @property
    def access_ns(self) -> float:
        return self[3]


@cache
def _sram_rows() -> dict[tuple[int, int], list[tuple[float, SramPoint]]]:
    path = data_dir("tech", "sram_cacti.csv")
    lines = [ln for ln in read_text(path, "SRAM table").splitlines() if not ln.startswith("#")]
    table: dict[tuple[int, int], list[tuple[float, SramPoint]]] = {}
    for row in csv.DictReader(lines):
        key = (int(row["node_nm"]), int(row["width_bits"]))
        point = SramPoint((float(row["read_pj"]), float(row["write_pj"]),
                           float(row["area_um2"]), float(row["access_ns"])))
        table.setdefault(key, []).append((float(row["capacity_kb"]), point))
    return {k: sorted(v) for k, v in table.items()}


def sram_point(capacity_kb: float, node_nm: int, width_bits: int) -> SramPoint:
    """CACTI figures of an SRAM of ``capacity_kb`` KiB, ``width_bits`` port, at a node of
    the table; log-log interpolation between the two nearest capacities."""
    rows = _sram_rows().get((node_nm, width_bits))
    if rows is None:
        known = ", ".join(f"{n} nm/{w} b" for n, w in sorted(_sram_rows()))
        raise ConfigError(f"SRAM table has no {node_nm} nm, {width_bits}-bit port (known: {known})")
    caps = [c for c, _ in rows]
    if not caps[0] <= capacity_kb <= caps[-1]:
        raise ConfigError(f"SRAM capacity {capacity_kb} KiB outside the table "
                          f"({caps[0]:g}..{caps[-1]:g} KiB at {node_nm} nm)")
    i = min(max(bisect_left(caps, capacity_kb), 1), len(caps) - 1)
    (c0, p0), (c1, p1) = rows[i - 1], rows[i]
    t = math.log(capacity_kb / c0) / math.log(c1 / c0)
    return SramPoint(tuple(a ** (1 - t) * b ** t for a, b in zip(p0, p1)))
