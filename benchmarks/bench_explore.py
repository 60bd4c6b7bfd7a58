"""Hypervolume of ``imcsim explore``'s front vs random search and vs the best single-family
grid, at equal trial count (measured, not a test).

Objectives (all minimised, normalised by the dense model): cycles / dense cycles,
energy / dense energy, 1 − accuracy proxy.  Reference point (1.5, 1.5, 1.0): a point up
to 1.5× the dense cost and any accuracy counts.  Three searches of N trials each on the
same workbench (same calibration and proxy images, same conventions):

* ``explore``: NSGA-II seeded by the selectors (``--seeds``) and compare-style points;
* ``random``: Optuna's random sampler over the same space (only the dense seed);
* ``grid``: for each family alone, N points with every searched layer at a kept fraction
  on an even grid from ``min_keep`` to 1; the best family's hypervolume is reported.

    python benchmarks/bench_explore.py --model resnet20 --trials 24
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from optuna._hypervolume import compute_hypervolume

from imcsim.conventions import load_conventions
from imcsim.studies.explore import open_study, point_of, run_explore
from imcsim.studies.explore_point import Workbench
from imcsim.studies.explore_space import ExploreSpec

REFERENCE = np.array([1.5, 1.5, 1.0])


def _losses(metrics: list[dict], dense: dict) -> np.ndarray:
    return np.array([[m["cycles"] / dense["cycles"], m["energy_pj"] / dense["energy_pj"],
                      1 - m["accuracy_proxy"]] for m in metrics])


def hypervolume(metrics: list[dict], dense: dict) -> float:
    losses = _losses(metrics, dense)
    inside = losses[(losses < REFERENCE).all(axis=1)]
    return float(compute_hypervolume(inside, REFERENCE)) if len(inside) else 0.0


def _search(spec: ExploreSpec, trials: int, sampler: str) -> list[dict]:
    with tempfile.TemporaryDirectory() as out:
        run_explore(spec, out, trials, sampler=sampler, population=max(4, trials // 4))
        return [t.user_attrs["metrics"] for t in open_study(Path(out)).trials
                if t.state.name == "COMPLETE"]


def _grid(spec: ExploreSpec, bench: Workbench, family: str, trials: int) -> list[dict]:
    out = []
    for keep in np.linspace(spec.min_keep, 1.0, trials):
        params = {}
        for name in bench.names:
            params[f"{name}:family"], params[f"{name}:keep"] = family, float(keep)
        out.append(bench.measure(point_of(spec, bench, params))[1])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--array", default="64x64")
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--conventions", default="imcsim")
    parser.add_argument("--seeds", default="energy,alds")
    parser.add_argument("--families", default="dense,unstructured,channel,pattern,"
                        "kernel-pattern,low-rank,group-low-rank")
    args = parser.parse_args()
    spec = ExploreSpec(model=args.model, checkpoint=args.checkpoint, arrays=(args.array,),
                       conventions=load_conventions(args.conventions),
                       families=tuple(args.families.split(",")),
                       seeds=tuple(s for s in args.seeds.split(",") if s and s != "none"),
                       seed_keeps=(0.5,), calibration_images=32, proxy_images=128)
    bench = Workbench.build(spec, spec.proxy_images, spec.conventions.dense_layers)
    dense = bench.measure(point_of(spec, bench, {
        **{f"{n}:family": "dense" for n in bench.names}, **{f"{n}:keep": 1.0 for n in bench.names}}))[1]
    start = time.perf_counter()
    found = {"explore": hypervolume(_search(spec, args.trials, "nsga2"), dense)}
    found["random"] = hypervolume(_search(spec.model_copy(update={"seeds": ()}), args.trials,
                                          "random"), dense)
    grids = {f: hypervolume(_grid(spec, bench, f, args.trials), dense)
             for f in spec.families if f != "dense"}
    best = max(grids, key=grids.get)
    found[f"grid ({best})"] = grids[best]
    print(f"{args.model} on {args.array}, conventions {spec.conventions.name}, "
          f"{args.trials} trials each ({time.perf_counter() - start:.0f} s)")
    for name, hv in found.items():
        print(f"  {name:28s} hypervolume {hv:.4f}   ratio vs explore {hv / found['explore']:.2f}"
              if found["explore"] else f"  {name:28s} hypervolume {hv:.4f}")
    print("  single-family grids: " + ", ".join(f"{f} {v:.4f}" for f, v in grids.items()))


if __name__ == "__main__":
    main()
