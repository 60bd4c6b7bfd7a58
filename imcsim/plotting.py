"""Charts of network reports and sweep records, and pictures of mappings.

Every chart takes a sequence of ``NetworkReport``s or of network-level records (sweep
records, ``NetworkReport.summary_record()``) and an ``ax`` (or makes one), and returns
the ``ax``; nothing global is changed (no ``plt.style.use``, no rcParams).  The mapping
pictures (``plot_placement``, ``plot_placements``) draw one layer's ``LayerMapping`` and
live in ``imcsim.drawing``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, get_args

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import to_rgb
from matplotlib.ticker import FuncFormatter

from imcsim.cost_charts import plot_cost_breakdown
from imcsim.drawing import plot_placement, plot_placements
from imcsim.errors import ConfigError
from imcsim.explore_plots import plot_explore_front, plot_explore_layers
from imcsim.placement_view import layer_tiles
from imcsim.report import NetworkReport, Record

__all__ = [
    "CHARTS", "Chart", "as_records", "pareto_front", "plot_compression", "plot_cost_breakdown",
    "plot_energy_breakdown",
    "plot_layer_cycles", "plot_pareto", "plot_placement", "plot_placements", "plot_speedup",
    "plot_tile_cycles", "plot_tradeoff", "plot_utilization", "render_charts",
]

Chart = Literal["utilization", "speedup", "layer_cycles", "tile_cycles", "energy_breakdown",
                "cost_breakdown", "compression", "pareto", "placement", "tradeoff", "tradeoff_energy",
                "explore_front", "explore_front_energy", "explore_layers"]
"""Chart names (``placement``: the mapping pictures of a recipe's ``[pictures]`` section;
``tradeoff``/``tradeoff_energy``: accuracy vs cycles/energy per method family, from the
date2025 study's points; ``explore_*``: an exploration's trials and one point's layers,
``imcsim.explore_plots``; every other name is rendered from records by ``render_charts``)."""
CHARTS: tuple[str, ...] = get_args(Chart)
MARKERS = "osD^v<>pXh*"
RecordsLike = Sequence[NetworkReport | Record]
_DEFAULTS: Record = {"compression": "dense", "keep": 1.0, "chip": "", "adc_bits": None}


def as_records(data: RecordsLike) -> list[Record]:
    """Network-level records of ``data``: a report becomes its ``summary_record()``; keys
    a chart groups by (compression, keep, chip, adc_bits) get neutral defaults."""
    out = []
    for item in data:
        record = item.summary_record() if isinstance(item, NetworkReport) else item
        if isinstance(item, NetworkReport):
            record["chip"] = item.chip.name
            record["layer_tiles"] = layer_tiles(item.mappings)
        out.append({**_DEFAULTS, **record})
    return out


def _ax(ax: Axes | None, size: tuple[float, float] = (6.4, 4.2)) -> Axes:
    return ax if ax is not None else plt.figure(figsize=size, layout="constrained").add_subplot()


def _cells(label: str) -> int:
    rows, cols = label.lower().split("x")
    return int(rows) * int(cols)


def _series_label(record: Record, keys: Sequence[str]) -> str:
    parts = []
    for key in keys:
        value = record[key]
        if key == "compression" and value != "dense":
            value = f"{value} (keep {record['keep']:g})"
        parts.append(str(value))
    return " / ".join(parts)


def _varying(records: list[Record], keys: Sequence[str]) -> list[str]:
    return [k for k in keys if len({str(r.get(k)) for r in records}) > 1]


LINESTYLES = ("-", "--", ":", "-.")


def _lines_vs_array(records: list[Record], field: str, ax: Axes) -> Axes:
    """One line per series: colour and marker by mapper, line style by the other keys."""
    arrays = sorted({r["array"] for r in records}, key=_cells)
    others = _varying(records, ("model", "compression", "chip"))
    series: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
    for r in records:
        series[(_series_label(r, others) if others else "", r["mapper"])][r["array"]] = r[field]
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
    return _ax(ax, (9.0, 4.6) if wide else (6.4, 4.2))


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
    ax = _ax(ax, (max(6.4, 0.35 * len(records[0]["layer_cycles"]) + 2), 4.2))
    keys = _varying(records, ("model", "compression", "array", "mapper")) or ["mapper"]
    names = [name for name, _ in records[0]["layer_cycles"]]
    width = 0.8 / len(records)
    for i, r in enumerate(records):
        cycles = dict(r["layer_cycles"])
        values = [cycles.get(n, 0) for n in names]
        ax.bar([j + (i - (len(records) - 1) / 2) * width for j in range(len(names))], values,
               width=width, label=_series_label(r, keys))
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
    ax = _ax(ax, (7.2, 4.2))
    keys = _varying(records, ("model", "compression", "array", "chip", "mapper")) or ["mapper"]
    components = sorted(
        {c for r in records for c, v in r["energy_breakdown_pj"].items() if v > 0},
        key=lambda c: -sum(r["energy_breakdown_pj"].get(c, 0.0) for r in records),
    )
    bottoms = [0.0] * len(records)
    for component in components:
        values = [r["energy_breakdown_pj"].get(component, 0.0) / 1e6 for r in records]
        ax.bar(range(len(records)), values, bottom=bottoms, label=component)
        bottoms = [b + v for b, v in zip(bottoms, values)]
    ax.set_xticks(range(len(records)), [_series_label(r, keys) for r in records],
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
    ax = _ax(ax, (8.4, 1.2 + 0.17 * len(names) * len(records)))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    keys = _varying(records, ("model", "compression", "array", "mapper")) or ["mapper"]
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
        ax.barh(0, 0, color=rgb, label=_series_label(r, keys))
    ax.set_yticks(range(len(names)), names, fontsize="x-small")
    ax.set_ylim(len(names) - 0.5, -0.5)
    ax.set_xlim(0, 1.15 * total)
    ax.set_xlabel("computing cycles per image (windows × tiles; white ticks: row tiles, "
                  "shades: column tiles)", fontsize="small")
    ax.set_title(f"Where the cycles go — {records[0]['model']} on {records[0]['array']}")
    ax.legend(fontsize="small", loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    return ax


_FAMILY_COLOURS = {"dense": "0.55", "low-rank": "C0", "group-low-rank": "C2"}


def plot_compression(data: RecordsLike, ax: Axes | None = None) -> Axes:
    """Speedup over dense im2col per compression method, labelled with its accuracy."""
    records = sorted(as_records(data), key=lambda r: -r["speedup"])
    ax = _ax(ax, (8.4, 1.4 + 0.42 * len(records)))
    labels = [f"{r['compression']} + {r['mapper']}" for r in records]
    colours = [_FAMILY_COLOURS.get(r["compression"], "C1") for r in records]
    ax.barh(range(len(records)), [r["speedup"] for r in records], color=colours)
    for i, r in enumerate(records):
        text = f" {r['speedup']:.2f}×, {r['latency_cycles']:,} cycles"
        if r.get("accuracy") is not None:
            text += f"; on chip {100 * r['accuracy']:.1f} %"
            if r.get("float_accuracy") is not None:
                text += f" (float {100 * r['float_accuracy']:.1f} %)"
        ax.text(r["speedup"], i, text, va="center", fontsize="x-small")
    ax.set_yticks(range(len(records)), labels, fontsize="small")
    ax.set_ylim(len(records) - 0.5, -0.5)
    ax.set_xlim(0, 1.9 * max(r["speedup"] for r in records))
    ax.axvline(1.0, color="0.3", lw=0.8, ls=":")
    ax.set_xlabel("speedup over the dense model under im2col (×)")
    first = records[0]
    adc = f", {first['adc_bits']}-bit ADC" if first.get("adc_bits") else ""
    ax.set_title(f"Compression at keep {first['keep']:g} — {first['model']} on "
                 f"{first['array']} ({first['chip'] or 'mapping chip'}{adc})", fontsize="medium")
    ax.grid(axis="x", alpha=0.3)
    return ax


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Points not dominated by any other (fewer cycles and higher accuracy), sorted by cycles."""
    front, best = [], float("-inf")
    for x, y in sorted(points, key=lambda p: (p[0], -p[1])):
        if y > best:
            front.append((x, y))
            best = y
    return front


def plot_pareto(data: RecordsLike, ax: Axes | None = None) -> Axes:
    """On-chip accuracy vs computing cycles across compression methods.

    Colour by compression/mapper, marker by chip condition; one Pareto front (fewer
    cycles, higher accuracy) per chip condition.
    """
    records = as_records(data)
    ax = _ax(ax, (8.4, 4.6))
    methods = _varying(records, ("compression", "mapper")) or ["compression"]
    conditions = _varying(records, ("model", "chip", "array", "adc_bits"))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    method_labels = sorted({_series_label(r, methods) for r in records})
    condition_labels = sorted({_series_label(r, conditions) for r in records}) if conditions else [""]
    for r in records:
        i = method_labels.index(_series_label(r, methods))
        j = condition_labels.index(_series_label(r, conditions)) if conditions else 0
        ax.scatter(r["latency_cycles"], 100 * r["accuracy"], s=55, color=colours[i % len(colours)],
                   marker=MARKERS[j % len(MARKERS)], zorder=3)
    for j, condition in enumerate(condition_labels):
        group = [r for r in records if not conditions or _series_label(r, conditions) == condition]
        front = pareto_front([(r["latency_cycles"], 100 * r["accuracy"]) for r in group])
        ax.plot(*zip(*front), color="0.3", lw=1, ls=LINESTYLES[(j + 1) % len(LINESTYLES)],
                label=f"Pareto front {condition}".strip())
    handles = [plt.Line2D([], [], ls="", marker="o", color=colours[i % len(colours)], label=m)
               for i, m in enumerate(method_labels)]
    handles += [plt.Line2D([], [], ls="", marker=MARKERS[j % len(MARKERS)], color="0.3", label=c)
                for j, c in enumerate(condition_labels) if c]
    handles += ax.get_legend_handles_labels()[0]
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: f"{x:,.0f}"))
    ax.xaxis.set_minor_formatter(FuncFormatter(lambda x, _pos: f"{x:,.0f}"))
    ax.tick_params(axis="x", which="minor", labelsize="x-small")
    ax.set_xlabel("computing cycles per image (log)")
    ax.set_ylabel("on-chip top-1 accuracy (%)")
    ax.set_title("Accuracy vs cycles")
    ax.legend(handles=handles, fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0),
              frameon=False, title=" / ".join(methods))
    ax.grid(alpha=0.3, which="both")
    return ax


_X_LABELS = {"latency_cycles": "critical-path computing cycles per image (log)",
             "energy_pj": "energy per image (µJ, log)"}


def plot_tradeoff(data: RecordsLike, ax: Axes | None = None, x: str = "latency_cycles") -> Axes:
    """Accuracy vs cycles (or energy), one colour and one Pareto front per method family.

    Records need ``family``, ``accuracy`` and ``x``; the model, array, conventions and
    dataset (``dataset``) of the first record title and caption the chart.
    """
    records = as_records(data)
    ax = _ax(ax, (6.8, 4.6))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    scale = 1e-6 if x == "energy_pj" else 1.0
    for i, family in enumerate(dict.fromkeys(r["family"] for r in records)):
        group = [(r[x] * scale, 100 * r["accuracy"]) for r in records if r["family"] == family]
        colour, marker = colours[i % len(colours)], MARKERS[i % len(MARKERS)]
        ax.scatter(*zip(*group), s=30, color=colour, marker=marker, alpha=0.6, zorder=3)
        front = pareto_front(group)
        ax.plot(*zip(*front), color=colour, marker=marker, lw=1.4, label=family, zorder=4)
    first = records[0]
    ax.set_xscale("log")
    plain = FuncFormatter(lambda v, _pos: f"{v:,.0f}" if v >= 100 else f"{v:.3g}")
    ax.xaxis.set_major_formatter(plain)
    ax.xaxis.set_minor_formatter(plain)
    ax.tick_params(axis="x", which="minor", labelsize="x-small")
    ax.set_xlabel(_X_LABELS.get(x, x))
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_title(f"{first['model']} on {first['array']} — {first.get('conventions', '')}",
                 fontsize="medium")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize="x-small", title="Pareto front per family", title_fontsize="x-small")
    if first.get("dataset"):
        text = f"data: {first['dataset']}"
        if first.get("train_images"):
            text += (f"\nfine-tuned {first['finetune_epochs']} epoch(s) on {first['train_images']} "
                     f"images; accuracy on {first['test_images']} held-out test images")
        ax.annotate(text, (0, 0), xytext=(0, -34), fontsize="x-small", va="top",
                    xycoords="axes fraction", textcoords="offset points")
    return ax


def render_charts(
    data: RecordsLike, out_dir: str | Path, charts: Sequence[str] = CHARTS
) -> list[Path]:
    """Save the requested charts the records support as PNG under ``out_dir``."""
    records = as_records(data)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    largest = max((r["array"] for r in records), key=_cells)
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
    smallest = min((r["array"] for r in tiled), key=_cells)
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
