"""Charts of a sweep: utilization and speedup against the array size, cycles per layer,
energy by component, the cycles of every tile of a layer."""

from __future__ import annotations

from collections import defaultdict

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import to_rgb
from matplotlib.ticker import FuncFormatter

from imcsim.errors import ConfigError
from imcsim.plotting.base import (
    LINESTYLES,
    MARKERS,
    RecordsLike,
    as_records,
    cells,
    new_ax,
    series_label,
    varying,
)
from imcsim.report import Record

__all__ = ["plot_energy_breakdown", "plot_layer_cycles", "plot_speedup", "plot_tile_cycles",
           "plot_utilization"]


def _lines_vs_array(records: list[Record], field: str, ax: Axes) -> Axes:
    """One line per series: colour and marker by mapper, line style by the other keys."""
    arrays = sorted({r["array"] for r in records}, key=cells)
    others = varying(records, ("model", "compression", "chip"))
    series: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
    for r in records:
        series[(series_label(r, others) if others else "", r["mapper"])][r["array"]] = r[field]
    groups = sorted({g for g, _ in series})
    mappers = sorted({m for _, m in series})
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for (group, mapper), values in sorted(series.items()):
        i, j = mappers.index(mapper), groups.index(group)
        xs = [k for k, a in enumerate(arrays) if a in values]
        label = f"{mapper} — {group}" if group else mapper
        ax.plot(xs, [values[arrays[k]] for k in xs], marker=MARKERS[i % len(MARKERS)],
                color=colours[i % len(colours)], ls=LINESTYLES[j % len(LINESTYLES)], label=label)
    ax.set_xticks(range(len(arrays)), [a.replace("x", "×") for a in arrays])
    ax.set_xlabel("array size (rows × columns)")
    ax.grid(alpha=0.3)
    title = "mapper" + (f" — {' / '.join(others)}" if others else "")
    if len(series) > 5:  # many series: keep the lines clear, legend beside the axes
        ax.legend(fontsize="small", title=title, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                  frameon=False)
    else:
        ax.legend(fontsize="small", title=title)
    return ax


def _line_ax(ax: Axes | None, records: list[Record]) -> Axes:
    wide = len({(r["model"], r["compression"], r["chip"], r["mapper"]) for r in records}) > 5
    return new_ax(ax, (9.0, 4.6) if wide else (6.4, 4.2))


def plot_utilization(data: RecordsLike, ax: Axes | None = None) -> Axes:
    """Array utilization (weight cells / cells of the tiles used) vs array size."""
    records = as_records(data)
    ax = _lines_vs_array(records, "utilization", _line_ax(ax, records))
    ax.set_ylabel("array utilization (weight cells / tile cells)")
    ax.set_ylim(0, 1.05)
    ax.set_title(f"Utilization vs array size — {', '.join(sorted({r['model'] for r in records}))}")
    return ax


def plot_speedup(data: RecordsLike, ax: Axes | None = None) -> Axes:
    """Speedup over the dense model mapped with im2col, vs array size."""
    records = as_records(data)
    ax = _lines_vs_array(records, "speedup", _line_ax(ax, records))
    ax.set_yscale("log", base=2)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _pos: f"{y:g}"))
    ax.set_ylabel("speedup over dense im2col (×, log scale)")
    ax.set_title(f"Speedup vs array size — {', '.join(sorted({r['model'] for r in records}))}")
    return ax


def plot_layer_cycles(data: RecordsLike, ax: Axes | None = None) -> Axes:
    """Computing cycles per layer, one bar group per layer and one bar per record."""
    records = as_records(data)
    ax = new_ax(ax, (max(6.4, 0.35 * len(records[0]["layer_cycles"]) + 2), 4.2))
    keys = varying(records, ("model", "compression", "array", "mapper")) or ["mapper"]
    names = [name for name, _ in records[0]["layer_cycles"]]
    width = 0.8 / len(records)
    for i, r in enumerate(records):
        cycles = dict(r["layer_cycles"])
        values = [cycles.get(n, 0) for n in names]
        ax.bar([j + (i - (len(records) - 1) / 2) * width for j in range(len(names))], values,
               width=width, label=series_label(r, keys))
    ax.set_xticks(range(len(names)), names, rotation=70, ha="right", fontsize="x-small")
    ax.set_yscale("log")
    ax.set_ylabel("computing cycles per image (log)")
    ax.set_title(f"Cycles per layer — {records[0]['model']} on {records[0]['array']}", pad=28)
    ax.legend(fontsize="small", ncols=len(records), loc="lower center", bbox_to_anchor=(0.5, 1.0),
              frameon=False)
    ax.grid(axis="y", alpha=0.3)
    return ax


def plot_energy_breakdown(data: RecordsLike, ax: Axes | None = None) -> Axes:
    """Energy per image split by component, one stacked bar per record."""
    records = as_records(data)
    ax = new_ax(ax, (7.2, 4.2))
    keys = varying(records, ("model", "compression", "array", "chip", "mapper")) or ["mapper"]
    components = sorted(
        {c for r in records for c, v in r["energy_breakdown_pj"].items() if v > 0},
        key=lambda c: -sum(r["energy_breakdown_pj"].get(c, 0.0) for r in records),
    )
    bottoms = [0.0] * len(records)
    for component in components:
        values = [r["energy_breakdown_pj"].get(component, 0.0) / 1e6 for r in records]
        ax.bar(range(len(records)), values, bottom=bottoms, label=component)
        bottoms = [b + v for b, v in zip(bottoms, values)]
    ax.set_xticks(range(len(records)), [series_label(r, keys) for r in records],
                  rotation=30, ha="right", fontsize="small")
    ax.set_ylabel("energy per image (µJ)")
    ax.set_title(f"Energy by component — {records[0]['model']} on {records[0]['array']}")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.grid(axis="y", alpha=0.3)
    return ax


def _split_bar(ax: Axes, y: float, height: float, windows: int, split: list[int],
               colour: tuple, px_per_cycle: float) -> int:
    """One layer's bar: a segment per column tile (alternating shade), white ticks
    between its row tiles (each row tile costs ``windows`` cycles)."""
    left = 0
    for k, rows in enumerate(split):
        shade = colour if k % 2 == 0 else tuple(0.55 * c + 0.45 for c in colour[:3])
        ax.barh(y, windows * rows, height, left=left, color=shade, lw=0)
        if windows * px_per_cycle >= 3 and rows > 1:
            ticks = left + windows * np.arange(1, rows)
            ax.vlines(ticks, y - height / 2, y + height / 2, colors="w", lw=0.5)
        left += windows * rows
    return left


def plot_tile_cycles(data: RecordsLike, ax: Axes | None = None) -> Axes:
    """Where the cycles go: per layer, windows × tiles as a bar split into its column
    tiles (alternating shades) and row tiles (white ticks); one bar per record."""
    records = as_records(data)
    missing = [r.get("mapper") for r in records if not r.get("layer_tiles")]
    if missing:
        raise ConfigError(f"plot_tile_cycles: records of {missing[0]!r} carry no layer_tiles")
    names = [row[0] for row in records[0]["layer_tiles"]]
    ax = new_ax(ax, (8.4, 1.2 + 0.17 * len(names) * len(records)))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    keys = varying(records, ("model", "compression", "array", "mapper")) or ["mapper"]
    total = max(w * sum(split) for r in records for _, w, split in r["layer_tiles"])
    px_per_cycle = ax.get_window_extent().width / max(total, 1)
    height = 0.8 / len(records)
    for i, r in enumerate(records):
        rgb = to_rgb(colours[i % len(colours)])
        rows = {name: (w, split) for name, w, split in r["layer_tiles"]}
        for j, name in enumerate(names):
            if name not in rows:
                continue
            y = j + (i - (len(records) - 1) / 2) * height
            windows, split = rows[name]
            end = _split_bar(ax, y, height, windows, split, rgb, px_per_cycle)
            ax.text(end, y, f" {windows:,}×{sum(split)}" + (f" ({len(split)} col)" if len(split) > 1
                    else ""), va="center", fontsize=5.5)
        ax.barh(0, 0, color=rgb, label=series_label(r, keys))
    ax.set_yticks(range(len(names)), names, fontsize="x-small")
    ax.set_ylim(len(names) - 0.5, -0.5)
    ax.set_xlim(0, 1.15 * total)
    ax.set_xlabel("computing cycles per image (windows × tiles; white ticks: row tiles, "
                  "shades: column tiles)", fontsize="small")
    ax.set_title(f"Where the cycles go — {records[0]['model']} on {records[0]['array']}")
    ax.legend(fontsize="small", loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    return ax
