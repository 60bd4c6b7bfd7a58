"""Bayesian optimisation of per-stage rank ratios (the allocation step of Bolaco,
"Feature-based Low-Rank Compression of Large Language Models via Bayesian Optimization",
EMNLP 2024).

Layers are grouped into stages by the first component of their name (``conv1``,
``layer1``, ``layer2``…, ``fc`` for a CIFAR ResNet), every stage gets a ratio of the full
rank, and a seeded Optuna sampler (TPE, Bergstra et al. 2011; Bolaco uses a Gaussian
process) minimises the calibration loss of the truncated network under the budget,
expressed as an Optuna constraint.  The first trial is the uniform allocation, so the
result is never worse than it on the calibration loss.  With ``state_dir`` the trials
are journaled to disk and a rerun continues where it stopped (a resumed run draws new
trials from a fresh sampler state, so it need not repeat an uninterrupted run exactly).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from imcsim.errors import ConfigError
from imcsim.nn.compress.rankrules import ratio_rank
from imcsim.nn.compress.selectors.base import (
    Progress,
    RankProblem,
    SearchConfig,
    Selection,
    option_at,
)
from imcsim.nn.compress.selectors.rules import Uniform

__all__ = ["BayesOpt", "stages"]

LOWEST_RATIO = 0.01


def stages(names: tuple[str, ...]) -> list[str]:
    """Stage of every layer: the first component of its qualified name."""
    return [n.split(".", 1)[0] for n in names]


def _optuna():
    try:
        import optuna
    except ImportError:
        raise ConfigError("selector 'bo' needs optuna: pip install 'imcsim[search]'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def _constraints(optuna) -> dict:
    """The budget constraint for optuna < 5 (later versions read ``Trial.set_constraint``)."""
    if hasattr(optuna.trial.Trial, "set_constraint"):
        return {}
    return {"constraints_func": lambda t: (t.user_attrs["over_budget"],)}


@dataclass(frozen=True)
class BayesOpt:
    """Per-stage ratios searched by a seeded TPE sampler under the budget constraint."""

    name: str = "bo"
    needs_budget: bool = True
    needs_scorer: bool = True
    one_group: bool = True

    def allocation(self, problem: RankProblem, ratios: dict[str, float]) -> Selection:
        out = []
        for space, stage in zip(problem.spaces, stages(problem.names)):
            g = problem.group_of(space)
            out.append(option_at(problem, space, g, ratio_rank(space.full_ranks[g], ratios[stage])))
        return tuple(out)

    def _storage(self, problem: RankProblem, config: SearchConfig):
        optuna = _optuna()
        if config.state_dir is None:
            return None, "bo"
        config.state_dir.mkdir(parents=True, exist_ok=True)
        key = repr((problem.names, problem.kind, problem.budget, problem.snap, config.seed,
                    problem.groups, [s.options for s in problem.spaces]))
        name = "bo-" + hashlib.sha256(key.encode()).hexdigest()[:16]
        backend = optuna.storages.journal.JournalFileBackend(str(config.state_dir / "bo.journal"))
        return optuna.storages.JournalStorage(backend), name

    def select(self, problem: RankProblem, config: SearchConfig,
               progress: Progress | None = None) -> Selection:
        problem.need(self)
        optuna, scorer = _optuna(), problem.scorer
        assert scorer is not None
        names = sorted(set(stages(problem.names)))
        storage, study_name = self._storage(problem, config)
        sampler = optuna.samplers.TPESampler(seed=config.seed, **_constraints(optuna))
        study = optuna.create_study(study_name=study_name, storage=storage, sampler=sampler,
                                    direction="minimize", load_if_exists=True)
        start = Uniform().best_ratio(problem)
        uniform = Uniform().allocation(problem, start)
        done = len([t for t in study.trials if t.state.name == "COMPLETE"])
        if done == 0:
            study.enqueue_trial({f"ratio_{s}": max(start, LOWEST_RATIO) for s in names})

        def objective(trial) -> float:
            ratios = {s: trial.suggest_float(f"ratio_{s}", LOWEST_RATIO, 1.0) for s in names}
            selection = self.allocation(problem, ratios)
            over = problem.cost(selection) / problem.budget - 1
            trial.set_user_attr("over_budget", over)
            if hasattr(trial, "set_constraint"):  # optuna >= 5
                trial.set_constraint("budget", over)
            return scorer.loss(selection)

        def report(study, trial) -> None:
            if progress is not None:
                progress("bo", len(study.trials), config.trials)

        study.optimize(objective, n_trials=max(0, config.trials - done), callbacks=[report])
        feasible = [t for t in study.trials
                    if t.state.name == "COMPLETE" and t.user_attrs["over_budget"] <= 1e-12]
        if not feasible:
            return uniform
        best = min(feasible, key=lambda t: (t.value, t.number))
        return self.allocation(problem, {s: best.params[f"ratio_{s}"] for s in names})
