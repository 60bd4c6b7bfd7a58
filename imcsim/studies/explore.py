"""``run_explore``: a multi-objective search over compression, ranks, mapper and array size.

Optuna (Akiba et al., KDD 2019) drives it: NSGA-II (Deb et al., IEEE TEC 2002) by default,
or multi-objective TPE (Ozaki et al., GECCO 2020).  Every trial is one ``Point`` of the
declared space (``explore_space``), measured by ``explore_point``; the first trials are
the choices of the existing rank selectors (ALDS, BSR, HALOC, BO, energy; ``explore_seeds``)
enqueued as they are.

The journal is Optuna's ``JournalStorage`` on a file in ``DIR`` (file-locked appends, safe
for several worker processes on one machine).  A worker records its process id on every
trial it runs; a trial still RUNNING whose process is gone (a killed run) is marked FAIL and
its parameters are enqueued again, once, under a lock: no trial is lost, none repeated.
``--trials N`` counts COMPLETE trials of the whole journal (a worker starts no trial while
the COMPLETE and RUNNING ones reach N), so rerunning the same command continues it; the sampler's seed is the spec's plus the trials already in the journal (a
resumed run does not redraw the first run's points).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import optuna

from imcsim.errors import ConfigError
from imcsim.studies.explore_point import Workbench, rank_for_keep
from imcsim.studies.explore_space import DIRECTIONS, ExploreSpec, LayerPlan, Point
from imcsim.studies.outputs import check_output_dir
from imcsim.studies.results import append_record

__all__ = ["SAMPLERS", "evaluate_trial", "front", "open_study", "point_of", "run_explore",
           "trial_records", "write_charts"]

Progress = Callable[[str, int, int], None]
SAMPLERS = ("nsga2", "tpe", "random")
JOURNAL = "journal.log"
TRIALS_LOG = "trials.jsonl"
"""One line per finished trial (its objectives), for people and for the interrupt tests."""
STARTED_LOG = "started.jsonl"
"""One line per trial whose measurement began (its parameters are in the journal)."""


def _lock(root: Path) -> contextlib.AbstractContextManager:
    @contextlib.contextmanager
    def held() -> Iterator[None]:
        with (root / ".explore.lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
    return held()


def _check_spec(root: Path, spec: ExploreSpec) -> None:
    mine = spec.model_dump_json(indent=1)
    saved = root / "spec.json"
    if saved.exists() and saved.read_text() != mine:
        raise ConfigError(f"--out {str(root)!r} holds another exploration (other model, space, "
                          "objectives or conventions); use a new directory")
    saved.write_text(mine)


def open_study(root: Path, spec: ExploreSpec | None = None) -> optuna.Study:
    """The exploration's study in ``root`` (created when ``spec`` is given)."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if spec is None and not (root / JOURNAL).exists():
        raise ConfigError(f"{str(root)!r} holds no exploration (no {JOURNAL})")
    storage = JournalStorage(JournalFileBackend(str(root / JOURNAL)))
    if spec is None:
        return optuna.load_study(study_name="explore", storage=storage)
    return optuna.create_study(study_name="explore", storage=storage, load_if_exists=True,
                               directions=[DIRECTIONS[o] for o in spec.objectives])


def _sampler(name: str, seed: int, population: int) -> optuna.samplers.BaseSampler:
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=population)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise ConfigError(f"--sampler {name!r} unknown (known: {', '.join(SAMPLERS)})")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _recover(study: optuna.Study) -> int:
    """Mark this machine's orphaned RUNNING trials FAIL and enqueue their parameters again
    (call under the lock); returns how many."""
    host, done = socket.gethostname(), 0
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        pid, where = t.user_attrs.get("pid"), t.user_attrs.get("host")
        if pid is None or where != host or _alive(int(pid)):
            continue
        study.tell(t.number, state=optuna.trial.TrialState.FAIL)
        study.enqueue_trial(t.params, user_attrs={"retry_of": t.number})
        done += 1
    return done


def point_of(spec: ExploreSpec, bench: Workbench, params: dict[str, Any],
             snap: Callable[[str, str, int, int], int] | None = None) -> Point:
    """The point a trial's parameters name (ranks from kept fractions, snapped by ``snap``)."""
    array = params.get("array", spec.arrays[0])
    r_mapper = params.get("r_mapper", spec.mappers[0])
    conv = spec.conventions.model_copy(update={"r_mapper": r_mapper})
    groups = int(params.get("groups", spec.groups[0]))
    layers = {}
    for name in bench.names:
        family, keep = params[f"{name}:family"], float(params[f"{name}:keep"])
        plan = LayerPlan(family=family, keep=keep)
        if family in ("low-rank", "group-low-rank"):
            shape = bench.shape(name)
            g = groups if family == "group-low-rank" and bench.groupable(name, groups) else 1
            rank = rank_for_keep(shape, g, keep)
            rank = snap(name, array, g, rank) if snap is not None else rank
            plan = LayerPlan(family="low-rank" if g == 1 else "group-low-rank", keep=keep,
                             rank=rank, groups=g)
        layers[name] = plan
    return Point(model=spec.model, checkpoint=spec.checkpoint, dataset=spec.dataset,
                 data_dir=spec.data_dir, array=array, conventions=conv,
                 factorization=params.get("factorization", spec.factorizations[0]),
                 calibration_images=spec.calibration_images, seed=spec.seed, layers=layers)


def _suggest(trial: optuna.Trial, spec: ExploreSpec, bench: Workbench) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for name, choices in (("array", spec.arrays), ("r_mapper", spec.mappers),
                          ("factorization", spec.factorizations), ("groups", spec.groups)):
        if len(choices) > 1:
            params[name] = trial.suggest_categorical(name, list(choices))
    for name in bench.names:
        params[f"{name}:family"] = trial.suggest_categorical(f"{name}:family", list(spec.families))
        params[f"{name}:keep"] = trial.suggest_float(f"{name}:keep", spec.min_keep, 1.0)
    return params


def evaluate_trial(bench: Workbench, point: Point) -> dict[str, float]:
    """Every objective of ``point`` (a module-level seam: the interrupt tests gate it)."""
    return bench.measure(point)[1]


class _Snapper:
    """Tile-snapping of ranks (``Conventions.snap``) with one cost table per array."""

    def __init__(self, spec: ExploreSpec, bench: Workbench) -> None:
        from imcsim.nn.extract import extract_layers

        self.spec, self.tables = spec, {}
        shapes = extract_layers(bench.model, bench.calibration[:1]).layers
        self.shapes = {x.name: x for x in shapes}

    def __call__(self, name: str, array: str, groups: int, rank: int) -> int:
        from imcsim.nn.compress.hwcost import CostTable
        from imcsim.nn.compress.space import snap_up
        from imcsim.studies.date2025 import study_chip

        conv = self.spec.conventions
        if array not in self.tables:
            chip = study_chip(conv.precision_of(self.spec.model), array)
            self.tables[array] = CostTable(conv.mapper(), chip, count=conv.cycles)
        return snap_up(self.tables[array].curve(self.shapes[name], groups), rank)


def _objective(spec: ExploreSpec, bench: Workbench, root: Path, snap: _Snapper | None):
    def run(trial: optuna.Trial) -> list[float]:
        trial.set_user_attr("pid", os.getpid())
        trial.set_user_attr("host", socket.gethostname())
        point = point_of(spec, bench, _suggest(trial, spec, bench), snap)
        with (root / STARTED_LOG).open("a") as handle:  # sealed: imcsim verify checks it
            append_record(handle, {"trial": trial.number, "pid": os.getpid()})
        metrics = evaluate_trial(bench, point)
        trial.set_user_attr("metrics", metrics)
        trial.set_user_attr("point", json.loads(point.model_dump_json()))
        with (root / TRIALS_LOG).open("a") as handle:
            append_record(handle, {"trial": trial.number, **metrics})
        return [metrics[o] for o in spec.objectives]
    return run


def _complete(study: optuna.Study, running: bool = False) -> int:
    """COMPLETE trials (and, with ``running``, those other workers are running now)."""
    states = (optuna.trial.TrialState.COMPLETE,
              *((optuna.trial.TrialState.RUNNING,) if running else ()))
    return len(study.get_trials(deepcopy=False, states=states))


def run_explore(spec: ExploreSpec, out: str | Path, trials: int, *,
                time_budget_s: float | None = None, sampler: str = "nsga2",
                population: int = 16, progress: Progress | None = None,
                worker: int = 0) -> dict[str, Any]:
    """Run (or continue) the exploration in ``out`` until the journal holds ``trials``
    COMPLETE trials or ``time_budget_s`` is spent; returns ``{"front", "trials"}``.
    ``worker``: this process's index among the workers sharing the journal."""
    from imcsim.studies.explore_seeds import seed_params

    if trials < 1:
        raise ConfigError(f"--trials must be at least 1 (got {trials})")
    _sampler(sampler, spec.seed, population)  # an unknown name fails before any work
    root = check_output_dir(out, "--out")
    start = time.monotonic()
    bench = Workbench.build(spec, spec.proxy_images, spec.conventions.dense_layers)
    snap = _Snapper(spec, bench) if spec.conventions.snap else None
    with _lock(root):
        _check_spec(root, spec)
        study = open_study(root, spec)
        _recover(study)
        if not study.user_attrs.get("seeded"):
            for params in seed_params(spec, bench):
                study.enqueue_trial(params, user_attrs={"seed": params.pop("_seed", "")})
            study.set_user_attr("seeded", True)
    study.sampler = _sampler(sampler, spec.seed + len(study.trials) + 7919 * worker, population)
    objective = _objective(spec, bench, root, snap)
    while (done := _complete(study)) < trials and _complete(study, running=True) < trials:
        if progress is not None:
            progress("trials", done, trials)
        if time_budget_s is not None and time.monotonic() - start > time_budget_s:
            break
        study.optimize(objective, n_trials=1, catch=())
    if progress is not None:
        progress("trials", _complete(study), trials)
    return {"front": front(study, spec), "trials": _complete(study)}


def front(study: optuna.Study, spec: ExploreSpec) -> list[dict[str, Any]]:
    """The non-dominated COMPLETE trials, cheapest first in the first objective."""
    rows = []
    for t in study.best_trials:
        metrics = t.user_attrs["metrics"]
        rows.append({"trial": t.number, **{k: metrics[k] for k in
                                           ("cycles", "energy_pj", "accuracy_proxy")},
                     **{o: metrics[o] for o in spec.objectives},
                     "params": metrics["params"], "array": t.user_attrs["point"]["array"],
                     "families": Point.parse(t.user_attrs["point"]).family_counts,
                     "seed": t.user_attrs.get("seed", ""), "spec": t.user_attrs["point"]})
    return sorted(rows, key=lambda r: (r[spec.objectives[0]], r["trial"]))


def trial_records(study: optuna.Study, spec: ExploreSpec) -> list[dict[str, Any]]:
    """Every COMPLETE trial as a chart record (``imcsim.plotting.explore``)."""
    from imcsim.plotting.explore import dominant_family

    on_front = {t.number for t in study.best_trials}
    return [{**t.user_attrs["metrics"], "trial": t.number, "on_front": t.number in on_front,
             "family": dominant_family(Point.parse(t.user_attrs["point"]).family_counts),
             "seed": t.user_attrs.get("seed", ""), "model": spec.model,
             "array": t.user_attrs["point"]["array"], "conventions": spec.conventions.name}
            for t in study.get_trials(deepcopy=False,
                                      states=(optuna.trial.TrialState.COMPLETE,))]


def write_charts(study: optuna.Study, spec: ExploreSpec, out_dir: str | Path,
                 layer_maps: int = 5) -> list[Path]:
    """The front charts (cycles and energy) and per-layer maps of up to ``layer_maps``
    front points, as PNG files under ``out_dir``."""
    from imcsim.plotting import render_charts

    out = Path(out_dir)
    paths = render_charts(trial_records(study, spec), out,
                          ("explore_front", "explore_front_energy"))
    rows = front(study, spec)
    step = max(1, len(rows) // max(1, layer_maps))
    for row in rows[::step][:layer_maps]:
        made = render_charts([row["spec"]], out, ("explore_layers",))
        target = out / f"explore_layers_{row['trial']}.png"
        made[0].replace(target)
        paths.append(target)
    return paths
