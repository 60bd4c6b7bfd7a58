"""Charts of ``imcsim explore``: the front (cycles or energy vs accuracy proxy, one colour
per family) and a per-layer map of one point's families and ranks.

Records are the exploration's trials: ``cycles``, ``energy_pj``, ``accuracy_proxy``,
``family`` (the family most of the point's layers use, ``mixed`` when none holds half),
``on_front`` and ``seed`` (``dense``, ``compare:<family>@<keep>`` single-family points and
``<selector>@keep<k>`` rank-search choices are drawn as labelled references).  Both take
an ``ax`` (or make one) and return it; ``imcsim.plotting`` registers them as the
``explore_front`` / ``explore_front_energy`` / ``explore_layers`` charts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.patches import Patch

__all__ = ["FAMILY_ORDER", "dominant_family", "plot_explore_front", "plot_explore_layers"]

FAMILY_ORDER = ("dense", "unstructured", "filter", "channel", "pattern", "kernel-pattern",
                "low-rank", "group-low-rank", "mixed")
Record = dict[str, Any]


def _colour(family: str) -> Any:
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    return "black" if family == "mixed" else colours[FAMILY_ORDER.index(family) % len(colours)]


def dominant_family(counts: dict[str, int]) -> str:
    """The family most layers use when it holds at least half of them, else ``mixed``."""
    family, n = max(counts.items(), key=lambda kv: kv[1])
    return family if 2 * n >= sum(counts.values()) else "mixed"


def plot_explore_front(records: Sequence[Record], ax: Axes | None = None,
                       x: str = "cycles") -> Axes:
    """Accuracy proxy vs ``x`` (cycles or energy_pj) of every trial: points of the search's
    front (all objectives) large, the two-objective front of this projection joined,
    references labelled."""
    ax = ax or plt.subplots(figsize=(7.2, 4.6))[1]
    for family in FAMILY_ORDER:
        group = [r for r in records if r["family"] == family]
        if group:
            ax.scatter([r[x] for r in group], [100 * r["accuracy_proxy"] for r in group],
                       s=[40 if r["on_front"] else 10 for r in group], color=_colour(family),
                       alpha=0.8, label=family, zorder=3)
    front, best = [], float("-inf")  # the front of this projection (x, accuracy)
    for r in sorted(records, key=lambda r: (r[x], -r["accuracy_proxy"])):
        if r["accuracy_proxy"] > best:
            front.append(r)
            best = r["accuracy_proxy"]
    ax.step([r[x] for r in front], [100 * r["accuracy_proxy"] for r in front], where="post",
            color="0.2", lw=0.8, label="front of this projection", zorder=2)
    for r in records:
        if r.get("seed"):
            ax.annotate(r["seed"], (r[x], 100 * r["accuracy_proxy"]), fontsize=5,
                        xytext=(3, 3), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("energy per image (pJ, log)" if x == "energy_pj" else
                  "computing cycles per image (log, as the conventions count)")
    ax.set_ylabel("accuracy proxy (%)")
    first = records[0] if records else {}
    ax.set_title(f"explore: {first.get('model', '')} under {first.get('conventions', '')}",
                 fontsize="medium")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize="x-small", loc="lower right")
    return ax


def plot_explore_layers(point: Record, ax: Axes | None = None) -> Axes:
    """One point's layers left to right: colour = family, text = rank (low-rank) or kept
    fraction (pruning); ``point`` is an exported spec (``layers``: name → plan)."""
    layers = point["layers"]
    ax = ax or plt.subplots(figsize=(max(6.0, 0.42 * len(layers)), 2.4))[1]
    for i, plan in enumerate(layers.values()):
        ax.bar(i, 1.0, color=_colour(plan["family"]), edgecolor="white")
        text = (f"k={plan['rank']}" + (f"\nG={plan['groups']}" if plan["groups"] > 1 else "")
                if plan.get("rank") else ("" if plan["family"] == "dense" else f"{plan['keep']:.2f}"))
        ax.text(i, 0.5, text, ha="center", va="center", fontsize=6, rotation=90)
    ax.set_xticks(range(len(layers)), list(layers), rotation=90, fontsize=6)
    ax.set_yticks([])
    ax.set_xlim(-0.5, len(layers) - 0.5)
    used = dict.fromkeys(plan["family"] for plan in layers.values())
    ax.legend(handles=[Patch(color=_colour(f), label=f) for f in used], fontsize="x-small",
              ncol=len(used), loc="upper center", bbox_to_anchor=(0.5, 1.35), frameon=False)
    ax.set_title(f"{point['model']} on {point['array']} ({point['conventions']['name']})",
                 fontsize="small", pad=22)
    ax.figure.tight_layout()
    return ax
