"""Selectors × factorisations × budgets: a resumable grid of rank searches, its table and
its Pareto chart (accuracy vs computing cycles).

Every finished run is appended to a JSONL file as soon as it ends; a rerun skips the runs
already there (same spec) and resumes an interrupted one from its state directory.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from itertools import product
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from imcsim.errors import ConfigError
from imcsim.nn.compress.hwcost import Budget
from imcsim.plotting import pareto_front
from imcsim.studies.rank_search import RankSearchSpec, run_rank_search

__all__ = ["grid_specs", "markdown_table", "plot_accuracy_vs_cycles", "run_grid", "spec_key"]

Record = dict[str, Any]
MARKERS = ("o", "s", "^", "D", "v", "P")


def grid_specs(base: RankSearchSpec, selectors: Sequence[str], factorizations: Sequence[str],
               budgets: Sequence[Budget], snaps: Sequence[bool] = (False,)) -> list[RankSearchSpec]:
    """One spec per (budget, snap, selector, factorisation); ALDS may use every group count."""
    if not budgets:
        raise ConfigError("the grid needs at least one budget")
    specs = []
    for budget, snap, selector, factorization in product(budgets, snaps, selectors, factorizations):
        fields = {**base.model_dump(), "budget": budget, "keep": None, "snap": snap,
                  "selector": selector, "factorization": factorization}
        if selector != "alds":
            fields["groups"] = base.groups[:1]
        specs.append(RankSearchSpec.parse(fields))
    return specs  # type: ignore[return-value]


def spec_key(spec: RankSearchSpec | Record) -> str:
    """A short stable hash of a spec (or of a record's ``spec``)."""
    data = spec if isinstance(spec, dict) else json.loads(spec.model_dump_json())
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def _read(out: Path) -> list[Record]:
    if not out.exists():
        return []
    return [json.loads(line) for line in out.read_text().splitlines() if line.strip()]


def run_grid(specs: Sequence[RankSearchSpec], out: str | Path,
             progress: Callable[[str, int, int], None] | None = None,
             on_record: Callable[[Record, int, int], None] | None = None) -> list[Record]:
    """Run every spec not yet in ``out`` (JSONL), appending each record as it finishes."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    records = _read(out)
    done = {spec_key(r["spec"]) for r in records}
    state_root = out.with_name(out.name + ".state")
    cache: dict = {}
    for i, spec in enumerate(specs):
        key = spec_key(spec)
        if key not in done:
            record = run_rank_search(spec, state_root / key, progress, cache).record
            with out.open("a") as f:
                f.write(json.dumps(record) + "\n")
            records.append(record)
            done.add(key)
        if on_record is not None:
            on_record(records[-1], i + 1, len(specs))
    wanted = {spec_key(s) for s in specs}
    return [r for r in records if spec_key(r["spec"]) in wanted]


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f} %"


def markdown_table(records: Sequence[Record]) -> str:
    """Rows selector × factorisation (× snap), a column group per budget."""
    budgets = sorted({json.dumps(r["spec"]["budget"], sort_keys=True) for r in records},
                     key=lambda b: -json.loads(b)["value"])
    rows = sorted({(r["spec"]["selector"], r["spec"]["factorization"], r["spec"]["snap"])
                   for r in records}, key=lambda k: (k[2], k[0], k[1]))
    head = ["selector", "factorization", "snap"]
    for b in budgets:
        spec = json.loads(b)
        head += [f"{spec['kind']} ≤ {spec['value']:,.0f}: {spec['kind']}", "before FT", "after FT"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * 3 + "---:|" * (3 * len(budgets))]
    index = {(r["spec"]["selector"], r["spec"]["factorization"], r["spec"]["snap"],
              json.dumps(r["spec"]["budget"], sort_keys=True)): r for r in records}
    for sel, fac, snap in rows:
        cells = [sel, fac, "yes" if snap else "no"]
        for b in budgets:
            r = index.get((sel, fac, snap, b))
            if r is None:
                cells += ["", "", ""]
                continue
            kind = json.loads(b)["kind"]
            t = r["total"]
            used = t["energy_pj"] if kind == "energy" else t[kind]
            cells += [f"{used:,.0f}", _pct(t.get("accuracy_before_finetune")), _pct(t.get("accuracy"))]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_accuracy_vs_cycles(records: Sequence[Record], ax: Axes | None = None) -> Axes:
    """Accuracy after fine-tuning vs computing cycles: colour = selector, marker =
    factorisation, hollow = snapped; the line is the Pareto front of all runs."""
    if ax is None:
        _, ax = plt.subplots(figsize=(7.6, 4.4), layout="constrained")
    points = [r for r in records if r["total"].get("accuracy") is not None]
    selectors = sorted({r["spec"]["selector"] for r in points})
    facts = sorted({r["spec"]["factorization"] for r in points})
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for r in points:
        colour = colours[selectors.index(r["spec"]["selector"]) % len(colours)]
        ax.scatter(r["total"]["cycles"], 100 * r["total"]["accuracy"], s=50, edgecolors=colour,
                   facecolors="none" if r["spec"]["snap"] else colour, zorder=3,
                   marker=MARKERS[facts.index(r["spec"]["factorization"]) % len(MARKERS)])
    front = pareto_front([(r["total"]["cycles"], 100 * r["total"]["accuracy"]) for r in points])
    if front:
        ax.plot(*zip(*front), color="0.3", lw=1, ls="--", label="Pareto front")
    handles = [plt.Line2D([], [], ls="", marker="o", color=colours[i % len(colours)], label=s)
               for i, s in enumerate(selectors)]
    handles += [plt.Line2D([], [], ls="", marker=MARKERS[i % len(MARKERS)], color="0.3", label=f)
                for i, f in enumerate(facts)]
    handles += ax.get_legend_handles_labels()[0]
    ax.legend(handles=handles, fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0),
              frameon=False)
    ax.set_xlabel("computing cycles per image")
    ax.set_ylabel("top-1 accuracy after fine-tuning (%)")
    ax.set_title("Rank search: accuracy vs cycles (hollow: snapped to tiles)")
    ax.grid(alpha=0.3)
    return ax
