"""Which mapper wins on energy, with and without the parts beyond the arrays.

    python benchmarks/bench_cost_parts.py          # ResNet-20 on neurosim-v1.3 and default (ISAAC periphery)
    python benchmarks/bench_cost_parts.py --chart docs/guide/cost_breakdown.png

For each dense mapper, maps the network on the cost preset's own chip and prices it.
"with parts" is ``total.energy_pj``; "arrays only" leaves out the parts this cost model
added in issue 27 — the capacity-priced SRAM buffers (``sram_buffer``), the interconnect
and the digital post-processing — i.e. what the model priced before.  Prints each
mapper's energy both ways, the two rankings and whether they differ; ``--chart`` saves
the ``cost_breakdown`` chart (energy and area by part, one pair of bars per mapper) of
the first preset.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from imcsim.cost import estimate_network  # noqa: E402
from imcsim.hardware import load_chip  # noqa: E402
from imcsim.mappers import DENSE_MAPPERS, get_mapper  # noqa: E402
from imcsim.network import map_network  # noqa: E402
from imcsim.zoo.workloads import load_workload  # noqa: E402

__all__ = ["NEW_PARTS", "main", "rank"]

NEW_PARTS = ("sram_buffer", "interconnect", "postprocess")
"""Event components added by issue 27 (zero for presets that do not model them)."""


def rank(model: str, preset: str) -> tuple[list, list[tuple[str, float, float]]]:
    """Costed reports per mapper and (mapper, energy with parts, energy without) rows."""
    chip = load_chip(preset)
    work = load_workload(model, None, None)
    reports = [estimate_network(map_network(work.layers, get_mapper(n), chip, model=work.name))
               for n in DENSE_MAPPERS]
    rows = []
    for r in reports:
        total = r.cost_total
        new = sum(total.energy_breakdown_pj[k] for k in NEW_PARTS)
        rows.append((r.mapper, total.energy_pj, total.energy_pj - new))
    return reports, rows


def _order(rows: list[tuple[str, float, float]], column: int) -> str:
    """Mappers from least to most energy; ``=`` joins equal energies (within 1e-9)."""
    ranked = sorted(rows, key=lambda r: r[column])
    text = ranked[0][0]
    for prev, cur in zip(ranked, ranked[1:]):
        tie = abs(cur[column] - prev[column]) <= 1e-9 * cur[column]
        text += (" = " if tie else " < ") + cur[0]
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--presets", default="neurosim-v1.3,default")
    parser.add_argument("--chart", type=Path, default=None)
    args = parser.parse_args()
    for i, preset in enumerate(args.presets.split(",")):
        reports, rows = rank(args.model, preset)
        print(f"\n{args.model} on {preset}: energy per image (µJ)")
        print(f"{'mapper':<18} {'with parts':>12} {'arrays only':>12} {'new parts':>10}")
        for mapper, full, base in rows:
            print(f"{mapper:<18} {full / 1e6:>12.3f} {base / 1e6:>12.3f} {(full - base) / full:>9.1%}")
        with_parts, without = _order(rows, 1), _order(rows, 2)
        print("ranking with parts:  ", with_parts)
        print("ranking arrays only: ", without)
        print("ranking changes:", "yes" if with_parts != without else "no")
        if i == 0 and args.chart is not None:
            from imcsim.plotting import plot_cost_breakdown

            ax = plot_cost_breakdown([r.summary_record() for r in reports])
            ax.figure.savefig(args.chart, dpi=150)
            print(f"chart: {args.chart}")


if __name__ == "__main__":
    main()
