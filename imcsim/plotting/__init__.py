"""Charts of network reports and sweep records, and pictures of mappings.

One module per chart family — ``sweeps`` (array-size sweeps, per-layer and per-tile cycles,
energy by component), ``tradeoffs`` (compression, accuracy vs cost, Pareto fronts), ``cost``
(energy and area by part of the chip), ``explore`` (an exploration's front and one point's
layers), ``tokens`` (language models per token) — on ``base`` (records, axes, labels); this
module names the charts and renders the ones a set of records supports.

Every chart takes a sequence of ``NetworkReport``s or of network-level records (sweep
records, ``NetworkReport.summary_record()``) and an ``ax`` (or makes one), and returns
the ``ax``; nothing global is changed (no ``plt.style.use``, no rcParams).  The mapping
pictures (``plot_placement``, ``plot_placements``) draw one layer's ``LayerMapping`` and
live in ``imcsim.drawing``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal, get_args

import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from imcsim.drawing import plot_placement, plot_placements
from imcsim.plotting.base import RecordsLike, as_records, cells
from imcsim.plotting.cost import plot_cost_breakdown
from imcsim.plotting.explore import plot_explore_front, plot_explore_layers
from imcsim.plotting.sweeps import (
    plot_energy_breakdown,
    plot_layer_cycles,
    plot_speedup,
    plot_tile_cycles,
    plot_utilization,
)
from imcsim.plotting.tokens import plot_token_breakdown, token_records
from imcsim.plotting.tradeoffs import pareto_front, plot_compression, plot_pareto, plot_tradeoff
from imcsim.report import Record

__all__ = [
    "CHARTS", "Chart", "as_records", "pareto_front", "plot_compression", "plot_cost_breakdown",
    "plot_energy_breakdown", "plot_explore_front", "plot_explore_layers", "plot_layer_cycles",
    "plot_pareto", "plot_placement", "plot_placements", "plot_speedup", "plot_tile_cycles",
    "plot_token_breakdown", "plot_tradeoff", "plot_utilization", "render_charts",
]

Chart = Literal["utilization", "speedup", "layer_cycles", "tile_cycles", "energy_breakdown",
                "cost_breakdown", "compression", "pareto", "placement", "tradeoff", "tradeoff_energy",
                "explore_front", "explore_front_energy", "explore_layers", "token_energy",
                "token_latency"]
"""Chart names (``placement``: the mapping pictures of a recipe's ``[pictures]`` section;
``tradeoff``/``tradeoff_energy``: accuracy vs cycles/energy per method family, from the
date2025 study's points; ``explore_*``: an exploration's trials and one point's layers,
``imcsim.plotting.explore``; ``token_energy``/``token_latency``: per-token figures of language
models by layer kind, from ``map`` totals (``imcsim.plotting.tokens``); every other name is
rendered from records by ``render_charts``)."""
CHARTS: tuple[str, ...] = get_args(Chart)


def render_charts(
    data: RecordsLike, out_dir: str | Path, charts: Sequence[str] = CHARTS
) -> list[Path]:
    """Save the requested charts the records support as PNG under ``out_dir``."""
    records = as_records(data)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    largest = max((r["array"] for r in records), key=cells)
    per_layer = [r for r in records if r["array"] == largest]
    costed = [r for r in per_layer if r.get("energy_breakdown_pj")]
    parts = [r for r in costed if r.get("area_parts_um2")]
    accurate = [r for r in records if r.get("accuracy") is not None]
    families = [r for r in accurate if r.get("family")]
    explored = [r for r in records if "accuracy_proxy" in r]
    points = [r for r in records if "layers" in r and "conventions" in r]
    plans = {
        "utilization": (plot_utilization, records),
        "speedup": (plot_speedup, records),
        "layer_cycles": (plot_layer_cycles, _first_model(per_layer)),
        "tile_cycles": (plot_tile_cycles, _tile_records(records)),
        "energy_breakdown": (plot_energy_breakdown, costed),
        "cost_breakdown": (plot_cost_breakdown, _first_model(parts) if parts else []),
        "compression": (plot_compression, _compressed(records)),
        "pareto": (plot_pareto, accurate),
        "tradeoff": (plot_tradeoff, families),
        "tradeoff_energy": (lambda d: plot_tradeoff(d, x="energy_pj"), families),
        "explore_front": (plot_explore_front, explored),
        "explore_front_energy": (lambda d: plot_explore_front(d, x="energy_pj"), explored),
        "explore_layers": (lambda d: plot_explore_layers(d[0]), points),
        "token_energy": (lambda d: plot_token_breakdown(d, "energy_pj"), token_records(records)),
        "token_latency": (lambda d: plot_token_breakdown(d, "latency_ns"), token_records(records)),
    }
    return [
        _save(plot(data), out / f"{name}.png")
        for name, (plot, data) in plans.items() if name in charts and data
    ]


def _tile_records(records: list[Record]) -> list[Record]:
    """im2col and the fastest mapper at the smallest array (most tiles), first model, of the
    records that carry ``layer_tiles`` (those of ``NetworkReport``s)."""
    tiled = [r for r in records if r.get("layer_tiles")]
    if not tiled:
        return []
    smallest = min((r["array"] for r in tiled), key=cells)
    group = _first_model([r for r in tiled if r["array"] == smallest])
    fastest = min(group, key=lambda r: r["cycles"])
    return [r for r in group if r["mapper"] == "im2col" and r is not fastest] + [fastest]


def _compressed(records: list[Record]) -> list[Record]:
    """Records comparing compression methods: one model, array, chip, ADC and kept fraction
    (dense records of the same setting included)."""
    compressed = [r for r in records if r["compression"] != "dense" and "speedup" in r]
    if not compressed:
        return []
    first = compressed[0]
    same = [r for r in records
            if all(r.get(k) == first.get(k) for k in ("model", "array", "chip", "adc_bits"))
            and (r["compression"] == "dense" or r["keep"] == first["keep"])]
    return same if len({(r["compression"], r["mapper"]) for r in same}) > 1 else []


def _first_model(records: list[Record]) -> list[Record]:
    model, comp = records[0]["model"], records[0]["compression"]
    return [r for r in records if r["model"] == model and r["compression"] == comp][:8]


def _save(ax: Axes, path: Path) -> Path:
    ax.figure.savefig(path, dpi=150)
    plt.close(ax.figure)
    return path
