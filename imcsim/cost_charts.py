"""Chart of where a network's energy and area go, one pair of bars per mapper.

``plot_cost_breakdown`` draws, for every record (a mapper's costed ``NetworkReport`` or its
``summary_record()``), the share of each part of the chip (``imcsim.pricing.ENERGY_GROUPS``
and ``AREA_GROUPS``: ADC, array, buffer, interconnect, digital, index, other) in its energy
(left bar) and area (right bar), with the totals written above — the first view CiMLoop and
NeuroSim users look at.  Registered as the ``cost_breakdown`` chart of ``imcsim.plotting``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from imcsim.errors import ConfigError

__all__ = ["PART_COLOURS", "plot_cost_breakdown"]

PART_COLOURS = {"adc": "C0", "array": "C1", "buffer": "C2", "interconnect": "C3",
                "digital": "C4", "index": "C5", "other": "C7"}
"""One colour per part of the chip, the same in the energy and the area bars."""


def _bar(ax: Axes, x: float, parts: dict[str, float], labelled: set[str]) -> float:
    total = sum(parts.values())
    bottom = 0.0
    for part, value in parts.items():
        share = 100 * value / total if total else 0.0
        if share <= 0:
            continue
        label = None if part in labelled else part
        labelled.add(part)
        ax.bar(x, share, 0.38, bottom=bottom, color=PART_COLOURS.get(part, "C8"), label=label)
        bottom += share
    return total


def plot_cost_breakdown(records: Sequence[dict[str, Any]], ax: Axes | None = None) -> Axes:
    """Energy and area shares by part of the chip, one pair of bars per record (mapper)."""
    costed = [r for r in records if r.get("energy_breakdown_pj") and r.get("area_parts_um2")]
    if not costed:
        raise ConfigError("cost_breakdown chart: no record carries a cost breakdown (use --cost)")
    ax = ax if ax is not None else plt.figure(figsize=(7.6, 4.4), layout="constrained").add_subplot()
    labelled: set[str] = set()
    for i, r in enumerate(costed):
        energy = _bar(ax, i - 0.2, r["energy_breakdown_pj"], labelled)
        area = _bar(ax, i + 0.2, r["area_parts_um2"], labelled)
        ax.text(i - 0.2, 101, f"E\n{energy / 1e6:.3g} µJ", ha="center", va="bottom", fontsize="x-small")
        ax.text(i + 0.2, 101, f"A\n{area / 1e6:.3g} mm²", ha="center", va="bottom", fontsize="x-small")
    ax.set_xticks(range(len(costed)), [r.get("mapper", "?") for r in costed])
    ax.set_ylim(0, 125)
    ax.set_ylabel("share of energy (E) / area (A), %")
    first = costed[0]
    ax.set_title(f"Energy and area by part — {first.get('model', '')} on "
                 f"{first.get('array', '')} ({first.get('cost_preset', '')})")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return ax
