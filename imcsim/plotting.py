"""Charts of sweep records.  Every function takes an ``ax`` (or makes one) and returns it;
nothing global is changed (no ``plt.style.use``, no rcParams)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.ticker import ScalarFormatter  # noqa: E402

Record = dict[str, Any]
MARKERS = "osD^v<>pXh*"


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


def _lines_vs_array(records: list[Record], field: str, ax: Axes) -> Axes:
    arrays = sorted({r["array"] for r in records}, key=_cells)
    keys = _varying(records, ("model", "compression", "chip", "mapper")) or ["mapper"]
    series: dict[str, dict[str, float]] = defaultdict(dict)
    for r in records:
        series[_series_label(r, keys)][r["array"]] = r[field]
    for i, (label, values) in enumerate(sorted(series.items())):
        xs = [j for j, a in enumerate(arrays) if a in values]
        ax.plot(xs, [values[arrays[j]] for j in xs], marker=MARKERS[i % len(MARKERS)], label=label)
    ax.set_xticks(range(len(arrays)), [a.replace("x", "×") for a in arrays])
    ax.set_xlabel("array size (rows × columns)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", title=" / ".join(keys))
    return ax


def plot_utilization(records: list[Record], ax: Axes | None = None) -> Axes:
    """Array utilization (weight cells / cells of the tiles used) vs array size."""
    ax = _lines_vs_array(records, "utilization", _ax(ax))
    ax.set_ylabel("array utilization (weight cells / tile cells)")
    ax.set_ylim(0, 1.05)
    ax.set_title(f"Utilization vs array size — {', '.join(sorted({r['model'] for r in records}))}")
    return ax


def plot_speedup(records: list[Record], ax: Axes | None = None) -> Axes:
    """Speedup over the dense model mapped with im2col, vs array size."""
    ax = _lines_vs_array(records, "speedup", _ax(ax))
    ax.set_yscale("log", base=2)
    ax.yaxis.set_major_formatter(ScalarFormatter())
    ax.set_ylabel("speedup over dense im2col (×, log scale)")
    ax.set_title(f"Speedup vs array size — {', '.join(sorted({r['model'] for r in records}))}")
    return ax


def plot_layer_cycles(records: list[Record], ax: Axes | None = None) -> Axes:
    """Computing cycles per layer, one bar group per layer and one bar per record."""
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


def plot_energy_breakdown(records: list[Record], ax: Axes | None = None) -> Axes:
    """Energy per image split by component, one stacked bar per record."""
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


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Points not dominated by any other (fewer cycles and higher accuracy), sorted by cycles."""
    front, best = [], float("-inf")
    for x, y in sorted(points, key=lambda p: (p[0], -p[1])):
        if y > best:
            front.append((x, y))
            best = y
    return front


def plot_pareto(records: list[Record], ax: Axes | None = None) -> Axes:
    """On-chip accuracy vs computing cycles across compression methods, with the Pareto front."""
    ax = _ax(ax)
    keys = _varying(records, ("compression", "mapper", "chip", "adc_bits")) or ["compression"]
    groups: dict[str, list[Record]] = defaultdict(list)
    for r in records:
        groups[_series_label(r, keys)].append(r)
    for i, (label, rs) in enumerate(sorted(groups.items())):
        ax.scatter([r["latency_cycles"] for r in rs], [100 * r["accuracy"] for r in rs],
                   marker=MARKERS[i % len(MARKERS)], s=50, label=label)
    front = pareto_front([(r["latency_cycles"], 100 * r["accuracy"]) for r in records])
    ax.plot(*zip(*front), color="black", lw=1, ls="--", label="Pareto front")
    ax.set_xscale("log")
    ax.set_xlabel("computing cycles per image (log)")
    ax.set_ylabel("on-chip top-1 accuracy (%)")
    ax.set_title("Accuracy vs cycles")
    ax.legend(fontsize="small", title=" / ".join(keys))
    ax.grid(alpha=0.3)
    return ax


def render_charts(records: list[Record], out_dir: str | Path) -> list[Path]:
    """Save every chart the records support as PNG under ``out_dir``; return the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    charts = {"utilization": plot_utilization, "speedup": plot_speedup}
    largest = max((r["array"] for r in records), key=_cells)
    per_layer = [r for r in records if r["array"] == largest]
    paths = []
    for name, plot in charts.items():
        paths.append(_save(plot(records), out / f"{name}.png"))
    paths.append(_save(plot_layer_cycles(_first_model(per_layer)), out / "layer_cycles.png"))
    costed = [r for r in per_layer if r.get("energy_breakdown_pj")]
    if costed:
        paths.append(_save(plot_energy_breakdown(costed), out / "energy_breakdown.png"))
    accurate = [r for r in records if r.get("accuracy") is not None]
    if accurate:
        paths.append(_save(plot_pareto(accurate), out / "pareto.png"))
    return paths


def _first_model(records: list[Record]) -> list[Record]:
    model, comp = records[0]["model"], records[0]["compression"]
    return [r for r in records if r["model"] == model and r["compression"] == comp][:8]


def _save(ax: Axes, path: Path) -> Path:
    ax.figure.savefig(path, dpi=150)
    plt.close(ax.figure)
    return path
