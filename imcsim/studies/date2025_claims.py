"""The low-rank paper's two numbers, computed from the ``date2025`` study's points.

Jeon, Rhe, Ko (DATE 2025) report "up to 2.5× speedup or +20.9 % accuracy over existing
pruning techniques".  On the trade-off curve of one conventions set, model and array:

Each baseline's accuracy-vs-cycles curve is its Pareto front (fewer cycles, higher
accuracy), read between measured points by linear interpolation of accuracy in
log(cycles) and never extrapolated beyond them:

* **speedup at equal accuracy**: for every low-rank point p, the cycles the baseline
  front needs to reach acc(p) − tolerance, over p's critical-path cycles.  Undefined
  for p when the front never reaches that accuracy, or already exceeds it at its
  cheapest point (how much cheaper it could go is not measured).  The number is the
  largest speedup over p ("up to"), with the points that give it; ``energy_ratio`` is
  the same with energy per image (index and pattern-index overhead included);
* **accuracy gain at equal cycles**: for every low-rank point p, acc(p) minus the front's
  accuracy at p's cycles (percentage points); undefined when the front has no point as
  cheap as p.  The number is the largest gain.

Points below ``min_accuracy`` are left out.  Baselines: the conventions' pattern families
(the paper's pruning baselines), channel pruning (the control), and every pruning family.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from imcsim.studies.date2025_spec import PRUNING_FAMILIES, Date2025Spec, ablations

__all__ = ["accuracy_at_cost", "accuracy_gain", "compute_claims", "cost_at_accuracy", "pareto",
           "speedup_at_accuracy", "write_claims"]

Record = dict[str, Any]


def pareto(points: Sequence[Record], field: str = "latency_cycles") -> list[Record]:
    """Points no other point beats on both ``field`` (lower) and accuracy, by ``field``."""
    front: list[Record] = []
    for r in sorted(points, key=lambda r: (r[field], -r["accuracy"])):
        if not front or r["accuracy"] > front[-1]["accuracy"]:
            front.append(r)
    return front


def _between(lo: Record, hi: Record, field: str, frac: float) -> float:
    return math.exp(math.log(lo[field]) + frac * (math.log(hi[field]) - math.log(lo[field])))


def cost_at_accuracy(front: Sequence[Record], target: float, field: str = "latency_cycles"
                     ) -> tuple[float, str] | None:
    """``field`` the front needs to reach ``target`` accuracy (None outside its range)."""
    if not front or front[0]["accuracy"] >= target or front[-1]["accuracy"] < target:
        return None
    lo, hi = next((a, b) for a, b in zip(front, front[1:]) if b["accuracy"] >= target)
    frac = (target - lo["accuracy"]) / (hi["accuracy"] - lo["accuracy"])
    return _between(lo, hi, field, frac), f"{lo['key']}..{hi['key']}"


def accuracy_at_cost(front: Sequence[Record], cost: float, field: str = "latency_cycles"
                     ) -> tuple[float, str] | None:
    """The front's accuracy at ``cost`` (None when no front point is that cheap)."""
    if not front or cost < front[0][field]:
        return None
    if cost >= front[-1][field]:
        return front[-1]["accuracy"], front[-1]["key"]
    lo, hi = next((a, b) for a, b in zip(front, front[1:]) if b[field] > cost)
    frac = math.log(cost / lo[field]) / math.log(hi[field] / lo[field])
    return lo["accuracy"] + frac * (hi["accuracy"] - lo["accuracy"]), f"{lo['key']}..{hi['key']}"


def speedup_at_accuracy(proposed: Sequence[Record], baseline: Sequence[Record],
                        tolerance_pp: float, field: str = "latency_cycles") -> dict[str, Any] | None:
    """Largest baseline / low-rank ``field`` at equal accuracy (see the module doc)."""
    front, best = pareto(baseline, field), None
    for p in proposed:
        found = cost_at_accuracy(front, p["accuracy"] - tolerance_pp / 100, field)
        if found is not None and (best is None or found[0] / p[field] > best["value"]):
            best = {"value": found[0] / p[field], "proposed": p["key"],
                    "proposed_accuracy": p["accuracy"], "proposed_cycles": p[field],
                    "baseline": found[1], "baseline_cycles": found[0]}
    return best


def accuracy_gain(proposed: Sequence[Record], baseline: Sequence[Record]) -> dict[str, Any] | None:
    """Largest accuracy(low-rank) − accuracy of the baseline front at the same cycles (pp)."""
    front, best = pareto(baseline), None
    for p in proposed:
        found = accuracy_at_cost(front, p["latency_cycles"])
        if found is not None and (best is None or 100 * (p["accuracy"] - found[0]) > best["value"]):
            best = {"value": 100 * (p["accuracy"] - found[0]), "proposed": p["key"],
                    "proposed_accuracy": p["accuracy"], "proposed_cycles": p["latency_cycles"],
                    "baseline": found[1], "baseline_accuracy": found[0]}
    return best


def compute_claims(points: Sequence[Record], spec: Date2025Spec) -> dict[str, Any]:
    """Both numbers for every conventions set × model × array × baseline."""
    rows = []
    for conv in ablations():
        baselines = {"patterns": conv.pattern_families, "channel": ("channel",),
                     "all pruning": tuple(f for f in conv.families if f in PRUNING_FAMILIES)}
        for model in spec.models:
            for array in spec.arrays[model]:
                here = [p for p in points if (p["conventions"], p["model"], p["array"])
                        == (conv.name, model, array) and p["accuracy"] >= spec.min_accuracy]
                proposed = [p for p in here if p["family"] == conv.proposed]
                if not proposed:
                    continue
                for name, families in baselines.items():
                    base = [p for p in here if p["family"] in families]
                    rows.append({"conventions": conv.name, "model": model, "array": array,
                                 "baseline": name,
                                 "speedup": speedup_at_accuracy(proposed, base, spec.tolerance_pp),
                                 "accuracy_gain_pp": accuracy_gain(proposed, base),
                                 "energy_ratio": speedup_at_accuracy(
                                     proposed, base, spec.tolerance_pp, "energy_pj")})
    return {"tolerance_pp": spec.tolerance_pp, "min_accuracy": spec.min_accuracy, "rows": rows}


def _fmt_speedup(entry: dict[str, Any] | None) -> str:
    if entry is None:
        return "—"
    return (f"{entry['value']:.2f}× ({entry['proposed']} {100 * entry['proposed_accuracy']:.1f} % "
            f"at {entry['proposed_cycles']:,.0f}; {entry['baseline']} at "
            f"{entry['baseline_cycles']:,.0f})")


def _fmt_gain(entry: dict[str, Any] | None) -> str:
    if entry is None:
        return "—"
    return (f"{entry['value']:+.1f} pp ({entry['proposed']} {100 * entry['proposed_accuracy']:.1f} % "
            f"at {entry['proposed_cycles']:,.0f}; {entry['baseline']} "
            f"{100 * entry['baseline_accuracy']:.1f} %)")


def claims_markdown(claims: dict[str, Any]) -> str:
    """One table row per conventions × model × array × baseline."""
    lines = [f"Equal accuracy: within {claims['tolerance_pp']:g} percentage points; points "
             f"below {100 * claims['min_accuracy']:g} % accuracy left out; cycles are "
             "critical-path computing cycles per image.", "",
             "| conventions | model | array | baseline | speedup at equal accuracy | "
             "accuracy gain at equal cycles | energy ratio at equal accuracy |",
             "|---|---|---|---|---|---|---:|"]
    for r in claims["rows"]:
        energy = r.get("energy_ratio")
        lines.append(f"| {r['conventions']} | {r['model']} | {r['array']} | {r['baseline']} | "
                     f"{_fmt_speedup(r['speedup'])} | {_fmt_gain(r['accuracy_gain_pp'])} | "
                     f"{'—' if energy is None else format(energy['value'], '.2f') + '×'} |")
    return "\n".join(lines)


def _best(rows: Sequence[Record], field: str) -> tuple[float, str] | None:
    found = [(r[field]["value"], r["array"]) for r in rows if r[field] is not None]
    return max(found) if found else None


def summary_markdown(claims: dict[str, Any]) -> str:
    """The "up to" numbers: per conventions × model × baseline, the best over array sizes."""
    lines = ["| conventions | model | baseline | best speedup at equal accuracy | "
             "best accuracy gain at equal cycles |", "|---|---|---|---:|---:|"]
    keys = dict.fromkeys((r["conventions"], r["model"], r["baseline"]) for r in claims["rows"])
    for conv, model, baseline in keys:
        rows = [r for r in claims["rows"]
                if (r["conventions"], r["model"], r["baseline"]) == (conv, model, baseline)]
        speed, gain = _best(rows, "speedup"), _best(rows, "accuracy_gain_pp")
        lines.append(f"| {conv} | {model} | {baseline} | "
                     f"{'—' if speed is None else f'{speed[0]:.2f}× ({speed[1]})'} | "
                     f"{'—' if gain is None else f'{gain[0]:+.1f} pp ({gain[1]})'} |")
    return "\n".join(lines)


def variants_markdown(points: Sequence[Record], conventions: str = "paper") -> str:
    """Accuracy and kept fraction of every variant, lowest kept fraction first."""
    seen, rows = set(), []
    for p in sorted(points, key=lambda r: (r["model"], r["kept"])):
        key = (p["model"], p["key"])
        if p["conventions"] in (conventions, "imcsim") and key not in seen:
            seen.add(key)
            rows.append(f"| {p['model']} | {p['family']} | {p['label']} | {p['kept']:.3f} | "
                        f"{100 * p['accuracy']:.1f} % |")
    head = ["| model | family | knob | kept weights | accuracy |", "|---|---|---|---:|---:|"]
    return "\n".join(head + rows)


def budget_markdown(records: Sequence[Record]) -> str:
    """Per model: data, base weights, fine-tuning budget and test images."""
    lines = []
    for model in dict.fromkeys(r["model"] for r in records):
        r = next(x for x in records if x["model"] == model)
        seconds = sum(x["seconds"] for x in records if x["model"] == model)
        lines.append(f"- {model}: {r['dataset']}; base {r['weights']}; every variant fine-tuned "
                     f"{r['finetune_epochs']} epoch(s) on {r['train_images']} training images, "
                     f"accuracy on {r['test_images']} held-out test images "
                     f"({seconds / 60:.0f} min of fine-tuning and evaluation in all).")
    return "\n".join(lines)


def write_claims(claims: dict[str, Any], points: Sequence[Record], records: Sequence[Record],
                 out: Path, spec: Date2025Spec, charts: Sequence[str] = ()) -> list[Path]:
    """claims.json, claims.md and the requested trade-off charts."""
    (out / "claims.json").write_text(json.dumps(claims, indent=2) + "\n")
    text = (f"# date2025 study\n\n{budget_markdown(records)}\n\n## Best over array sizes\n\n"
            f"{summary_markdown(claims)}\n\n## Per array\n\n{claims_markdown(claims)}\n\n"
            f"## Variants\n\n{variants_markdown(points)}\n")
    (out / "claims.md").write_text(text)
    return _charts(points, out, spec, charts)


def _charts(points: Sequence[Record], out: Path, spec: Date2025Spec,
            charts: Sequence[str]) -> list[Path]:
    import matplotlib.pyplot as plt

    from imcsim.plotting import plot_tradeoff

    fields = {"tradeoff": "latency_cycles", "tradeoff_energy": "energy_pj"}
    saved = []
    for chart in (c for c in charts if c in fields):
        for conv in ("paper", "imcsim"):
            for model in spec.models:
                arrays = spec.arrays[model]
                fig, axes = plt.subplots(1, len(arrays), figsize=(5.2 * len(arrays), 4.6),
                                         layout="constrained", squeeze=False)
                for ax, array in zip(axes[0], arrays):
                    here = [p for p in points if (p["conventions"], p["model"], p["array"])
                            == (conv, model, array)]
                    if here:
                        plot_tradeoff(here, ax, x=fields[chart])
                path = out / f"{chart}-{model}-{conv}.png"
                fig.savefig(path, dpi=120)
                plt.close(fig)
                saved.append(path)
    return saved
