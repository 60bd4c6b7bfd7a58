"""Selectors × factorisations × budgets: a resumable grid of rank searches, its table and
its Pareto chart (accuracy vs computing cycles).

Every finished run is appended to a JSONL file as soon as it ends, under a content key
(``studies.results``: the spec, the weights it starts from, the code version); a rerun
skips the runs already there, resumes an interrupted one from its state directory, and
reports lines it cannot trust (torn, hand-edited, older code) as notices, never reusing them.
The file is locked while the grid runs (``studies.outputs``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from itertools import product
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from pydantic import BaseModel, ConfigDict, Field

from imcsim.errors import ConfigError
from imcsim.nn.compress.hwcost import Budget
from imcsim.plotting import pareto_front
from imcsim.studies.outputs import check_output_file, exclusive
from imcsim.studies.rank_search import RankSearchSpec, run_rank_search
from imcsim.studies.results import (
    Results,
    append_record,
    content_key,
    digest,
    load_results,
    repair_torn_line,
)
from imcsim.zoo.checkpoints import checkpoint_path

__all__ = ["RankSearchRecord", "grid_specs", "load_grid", "markdown_table",
           "plot_accuracy_vs_cycles", "run_grid", "spec_key"]

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


class _Total(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow", allow_inf_nan=False)

    params: int = Field(ge=0)
    cycles: int = Field(ge=1)
    accuracy: float | None = Field(default=None, ge=0, le=1)
    float_accuracy: float | None = Field(default=None, ge=0, le=1)


class RankSearchRecord(BaseModel):
    """The fields a rank-search record must carry to be reused (others pass through)."""

    model_config = ConfigDict(strict=True, extra="allow", allow_inf_nan=False)

    key: str = Field(min_length=1)
    spec: dict[str, Any]
    layers: list[dict[str, Any]] = Field(min_length=1, max_length=10_000)
    total: _Total


def spec_key(spec: RankSearchSpec | Record) -> str:
    """Content key of a spec (or of a record's ``spec``): its fields, the digest of the
    weights it starts from, the code version (``studies.results.content_key``)."""
    data = spec if isinstance(spec, dict) else json.loads(spec.model_dump_json())
    weights = Path(data["checkpoint"]) if data.get("checkpoint") else checkpoint_path(data["model"])
    return content_key(data, {"weights": digest(weights.read_bytes()) if weights.is_file() else ""})


def load_grid(out: str | Path) -> Results:
    """The trusted records of a grid file, by key, and a notice per ignored line."""
    return load_results(out, RankSearchRecord)


def run_grid(specs: Sequence[RankSearchSpec], out: str | Path,
             progress: Callable[[str, int, int], None] | None = None,
             on_record: Callable[[Record, int, int], None] | None = None,
             on_notice: Callable[[str], None] | None = None) -> list[Record]:
    """Run every spec not yet in ``out`` (JSONL), appending each record as it finishes;
    the records of ``specs``, in their order."""
    out = check_output_file(out, "--out results file")
    out.parent.mkdir(parents=True, exist_ok=True)
    keys = [spec_key(spec) for spec in specs]
    state_root = out.with_name(out.name + ".state")
    cache: dict = {}
    with exclusive(out, "--out results file"):
        loaded = load_grid(out)
        for notice in loaded.summary() if on_notice is not None else ():
            on_notice(notice)
        done = loaded.records
        repair_torn_line(out)
        with out.open("a") as handle:
            for i, (key, spec) in enumerate(zip(keys, specs, strict=True)):
                if key not in done:
                    record = run_rank_search(spec, state_root / key, progress, cache).record
                    done[key] = append_record(handle, {"key": key, **record})
                if on_record is not None:
                    on_record(done[key], i + 1, len(specs))
    return [done[key] for key in keys]


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
