"""Charts of compression trade-offs: speedup per method, accuracy against cycles or energy
and its Pareto front."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.ticker import FuncFormatter

from imcsim.plotting.base import (
    LINESTYLES,
    MARKERS,
    RecordsLike,
    as_records,
    new_ax,
    series_label,
    varying,
)

__all__ = ["pareto_front", "plot_compression", "plot_pareto", "plot_tradeoff"]


_FAMILY_COLOURS = {"dense": "0.55", "low-rank": "C0", "group-low-rank": "C2"}


def plot_compression(data: RecordsLike, ax: Axes | None = None) -> Axes:
    """Speedup over dense im2col per compression method, labelled with its accuracy."""
    records = sorted(as_records(data), key=lambda r: -r["speedup"])
    ax = new_ax(ax, (8.4, 1.4 + 0.42 * len(records)))
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
    ax = new_ax(ax, (8.4, 4.6))
    methods = varying(records, ("compression", "mapper")) or ["compression"]
    conditions = varying(records, ("model", "chip", "array", "adc_bits"))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    method_labels = sorted({series_label(r, methods) for r in records})
    condition_labels = sorted({series_label(r, conditions) for r in records}) if conditions else [""]
    for r in records:
        i = method_labels.index(series_label(r, methods))
        j = condition_labels.index(series_label(r, conditions)) if conditions else 0
        ax.scatter(r["latency_cycles"], 100 * r["accuracy"], s=55, color=colours[i % len(colours)],
                   marker=MARKERS[j % len(MARKERS)], zorder=3)
    for j, condition in enumerate(condition_labels):
        group = [r for r in records if not conditions or series_label(r, conditions) == condition]
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
    ax = new_ax(ax, (6.8, 4.6))
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
