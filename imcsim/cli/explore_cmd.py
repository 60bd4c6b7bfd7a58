"""``imcsim explore``: a multi-objective search over per-layer compression, ranks, R's
mapper and array size; prints the Pareto front, continues from ``--out``'s journal."""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Annotated, Any

import typer

from imcsim.cli import app
from imcsim.cli.common import Format, emit, on_interrupt, split_list
from imcsim.cli.conventions_opts import ConventionOpt, ConventionsOpt, conventions_from
from imcsim.conventions import IMCSIM
from imcsim.errors import ConfigError
from imcsim.report import format_table

__all__ = ["FRONT_COLUMNS", "MEASURED_COLUMNS", "explore_command"]

Opt = typer.Option
FRONT_COLUMNS = ("trial", "cycles", "energy_pj", "accuracy_proxy", "params", "array", "mix",
                 "seed")
MEASURED_COLUMNS = ("trial", "cycles", "energy_pj", "accuracy_proxy", "accuracy")


def _ints(text: str, what: str) -> tuple[int, ...]:
    try:
        return tuple(int(t) for t in split_list(text, what))
    except ValueError:
        raise ConfigError(f"{what}: expected a comma list of integers (got {text!r})") from None


def _floats(text: str, what: str) -> tuple[float, ...]:
    try:
        return tuple(float(t) for t in split_list(text, what))
    except ValueError:
        raise ConfigError(f"{what}: expected a comma list of numbers (got {text!r})") from None


def _spec(model: str, array: str, checkpoint: Path | None, conv: Any, opts: dict[str, Any]) -> Any:
    from imcsim.studies.explore_space import ExploreSpec

    seeds = () if opts["seeds"] == "none" else tuple(split_list(opts["seeds"], "--seeds"))
    return ExploreSpec.parse({
        "model": model, "checkpoint": checkpoint, "arrays": split_list(array, "--array"),
        "r_mappers": split_list(opts["r_mappers"], "--r-mappers") if opts["r_mappers"] else [],
        "families": split_list(opts["families"], "--families"),
        "factorizations": split_list(opts["factorizations"], "--factorizations"),
        "groups": _ints(opts["groups"], "--groups"),
        "objectives": split_list(opts["objectives"], "--objectives"),
        "conventions": conv or IMCSIM, "seeds": seeds,
        "seed_keeps": _floats(opts["seed_keeps"], "--seed-keeps"),
        "min_keep": opts["min_keep"], "calibration_images": opts["calibration_images"],
        "proxy_images": opts["proxy_images"], "seed": opts["seed"],
    }, "explore")


def _worker(spec: Any, out: Path, trials: int, budget: float | None, sampler: str,
            population: int, index: int) -> None:
    from imcsim.studies.explore import run_explore

    run_explore(spec, out, trials, time_budget_s=budget, sampler=sampler,
                population=population, worker=index)


def _run(spec: Any, out: Path, trials: int, budget: float | None, sampler: str,
         population: int, workers: int) -> dict[str, Any]:
    from imcsim.cli.rank_search_cmd import _Bar
    from imcsim.studies.explore import run_explore

    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_worker, args=(spec, out, trials, budget, sampler, population, i))
             for i in range(1, workers)]
    for p in procs:
        p.start()
    try:
        with on_interrupt(lambda: f"finished trials are in {out}; rerun the same command "
                                  "to continue"), _Bar() as bar:
            result = run_explore(spec, out, trials, time_budget_s=budget, sampler=sampler,
                                 population=population, progress=bar)
    finally:
        for p in procs:
            p.join()
    if any(p.exitcode for p in procs):
        raise ConfigError(f"an explore worker failed (exit codes {[p.exitcode for p in procs]})")
    if procs:  # the other workers' last trials
        from imcsim.studies.explore import front, open_study

        study = open_study(out)
        done = [t for t in study.trials if t.state.name == "COMPLETE"]
        result = {"front": front(study, spec), "trials": len(done)}
    return result


def _export(out: Path, point: int, path: Path) -> None:
    from imcsim.studies.explore import open_study
    from imcsim.studies.outputs import check_output_file

    check_output_file(path, "--export FILE")
    study = open_study(out)
    found = [t for t in study.trials if t.number == point and "point" in t.user_attrs]
    if not found:
        raise ConfigError(f"--export {point}: no finished trial {point} in {str(out)!r}")
    import json

    path.write_text(json.dumps(found[0].user_attrs["point"], indent=1) + "\n")


@app.command("explore")
def explore_command(
    out: Annotated[Path, Opt("--out", "-o", help="Directory of the journal (rerun to continue).")],
    model: Annotated[str, Opt("--model", "-m", help="Built-in 32x32 model with weights.")] = "resnet20",
    array: Annotated[str, Opt("--array", "-a", help="Array size(s) ROWSxCOLS, comma list: the search picks one.")] = "64x64",
    trials: Annotated[int | None, Opt("--trials", help="COMPLETE trials the journal should hold.")] = None,
    time_budget: Annotated[float | None, Opt("--time-budget", help="Stop starting trials after S seconds.")] = None,
    conventions: ConventionsOpt = None, convention: ConventionOpt = None,
    families: Annotated[str, Opt("--families", help="Per-layer families, comma list.")] = "dense,unstructured,channel,pattern,kernel-pattern,low-rank,group-low-rank",
    factorizations: Annotated[str, Opt("--factorizations", help="svd, drone, feature (comma list).")] = "svd",
    groups: Annotated[str, Opt("--groups", help="Group counts G of group low-rank.")] = "2,4",
    r_mappers: Annotated[str | None, Opt("--r-mappers", help="R's mappers to pick from (default: the conventions').")] = None,
    objectives: Annotated[str, Opt("--objectives", help="cycles, latency_ns, energy_pj, area_um2, arrays, accuracy_proxy.")] = "cycles,energy_pj,accuracy_proxy",
    seeds: Annotated[str, Opt("--seeds", help="Selectors whose choices seed the search, or none.")] = "energy,alds,bsr,haloc,bo",
    seed_keeps: Annotated[str, Opt("--seed-keeps", help="Kept fractions the seeding selectors target.")] = "0.5,0.25",
    min_keep: Annotated[float, Opt("--min-keep", help="Smallest kept fraction per layer.")] = 0.05,
    calibration_images: Annotated[int, Opt("--calibration-images", help="Images fitting factors and batch norm.")] = 64,
    proxy_images: Annotated[int, Opt("--proxy-images", help="Held-out images of the accuracy proxy.")] = 256,
    sampler: Annotated[str, Opt("--sampler", help="nsga2, tpe or random (Optuna).")] = "nsga2",
    population: Annotated[int, Opt("--population", help="NSGA-II population size.")] = 16,
    workers: Annotated[int, Opt("--workers", help="Worker processes sharing the journal.")] = 1,
    seed: Annotated[int, Opt("--seed", help="Seed of images and sampler.")] = 0,
    checkpoint: Annotated[Path | None, Opt("--checkpoint", help="Weights file (default: shipped).")] = None,
    charts: Annotated[Path | None, Opt("--charts", help="Directory for the front charts (cycles and energy vs accuracy proxy) and per-layer maps of front points.")] = None,
    measure: Annotated[int, Opt("--measure", help="Fine-tune and evaluate this many front points (0: proxy only).")] = 0,
    finetune_epochs: Annotated[int, Opt("--finetune-epochs", help="Fine-tuning epochs of a measured point.")] = 1,
    train_images: Annotated[int, Opt("--train-images", help="Training images of the fine-tuning.")] = 1000,
    test_images: Annotated[int, Opt("--test-images", help="Test images of a measured point.")] = 1000,
    export: Annotated[tuple[int, Path] | None, Opt("--export", help="POINT FILE: write trial POINT as a spec that map --spec replays.")] = None,
    fmt: Annotated[Format, Opt("--format", "-f", help="table or json.")] = Format.table,
) -> None:
    """Search per-layer compression (family, rank or kept fraction), R's mapper and array
    size against cycles, energy, area, arrays and an accuracy proxy; print the front."""
    if export is not None and export[0] is not None:
        _export(out, export[0], export[1])
        return
    if trials is None:
        raise ConfigError("--trials N is required (or --export POINT FILE)")
    if workers < 1 or population < 2:
        raise ConfigError(f"--workers must be >= 1 and --population >= 2 (got {workers}, {population})")
    opts = dict(families=families, factorizations=factorizations, groups=groups,
                r_mappers=r_mappers, objectives=objectives, seeds=seeds, seed_keeps=seed_keeps,
                min_keep=min_keep, calibration_images=calibration_images,
                proxy_images=proxy_images, seed=seed)
    spec = _spec(model, array, checkpoint, conventions_from(conventions, convention), opts)
    if charts is not None:
        from imcsim.studies.outputs import check_output_dir

        check_output_dir(charts, "--charts")
    result = _run(spec, out, trials, time_budget, sampler, population, workers)
    rows = [{**r, "mix": ",".join(f"{k}:{v}" for k, v in sorted(r["families"].items()))}
            for r in result["front"]]
    title = (f"{model}: Pareto front of {result['trials']} trials under conventions "
             f"{spec.conventions.name} ({', '.join(spec.objectives)})")
    text = format_table(rows, FRONT_COLUMNS, title=title)
    if measure:
        from imcsim.studies.explore_measure import measure_front

        result["measured"] = measure_front(spec, out, measure, finetune_epochs, train_images,
                                           test_images)
        text += "\n\n" + format_table(
            result["measured"]["points"], MEASURED_COLUMNS,
            title=f"proxy vs fine-tuned accuracy (Spearman {result['measured']['spearman']})")
    if charts is not None:
        from imcsim.studies.explore import open_study, write_charts

        result["charts"] = [str(p) for p in write_charts(open_study(out), spec, charts)]
    emit(result, text, fmt)
