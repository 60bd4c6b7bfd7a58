"""The first trials of ``imcsim explore``: the existing rank selectors' choices.

Each selector of ``ExploreSpec.seeds`` (``nn.compress.selectors``: energy, ALDS, BSR,
HALOC, BO) picks ranks for every searched layer at each kept fraction of
``seed_keeps`` on the first array and mapper, under the exploration's conventions; its
choice becomes trial parameters (family low-rank / group low-rank / dense, and the kept
fraction the chosen rank keeps, so ``rank_for_keep`` gives the rank back; a layer below
the space's ``min_keep`` is raised to it).  The dense
model is always the first seed.  Identical seeds are enqueued once.
"""

from __future__ import annotations

from typing import Any

from imcsim.nn.compress.search import search_ranks
from imcsim.nn.compress.selectors import SearchConfig
from imcsim.studies.date2025 import study_chip
from imcsim.studies.explore_point import Workbench
from imcsim.studies.explore_space import ExploreSpec

__all__ = ["seed_params"]

SEED_TRIALS = 12
"""BO's and HALOC's own budgets when they seed (small: seeds are a start, not the search)."""


def _global(spec: ExploreSpec, groups: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in (("array", spec.arrays[0]), ("r_mapper", spec.mappers[0]),
                        ("factorization", spec.factorizations[0]), ("groups", groups)):
        choices = {"array": spec.arrays, "r_mapper": spec.mappers,
                   "factorization": spec.factorizations, "groups": spec.groups}[name]
        if len(choices) > 1:
            out[name] = value
    return out


def _dense(spec: ExploreSpec, bench: Workbench) -> dict[str, Any] | None:
    if "dense" not in spec.families:
        return None
    out = _global(spec, spec.groups[0])
    for name in bench.names:
        out[f"{name}:family"], out[f"{name}:keep"] = "dense", 1.0
    return out


def _from_choices(spec: ExploreSpec, bench: Workbench, choices, groups: int) -> dict[str, Any] | None:
    out = _global(spec, groups)
    for c in choices:
        shape = bench.shape(c.name)
        c_out, c_in, kh, kw = shape
        if not c.factorized:
            family, keep = "dense", 1.0
        else:
            family = "low-rank" if c.groups == 1 else "group-low-rank"
            keep = c.rank * (c_in * kh * kw + c.groups * c_out) / (c_out * c_in * kh * kw)
        if family not in spec.families or keep > 1:
            return None
        keep = max(keep, spec.min_keep)  # a rank below the space's floor is raised to it
        out[f"{c.name}:family"], out[f"{c.name}:keep"] = family, keep
    return out


COMPARE_KEEP = 0.5
"""Kept fraction of the single-family reference points (``compare``'s default ``--keep``)."""


def _single_families(spec: ExploreSpec, bench: Workbench) -> list[dict[str, Any]]:
    """Every layer in one family at ``COMPARE_KEEP`` and at each of ``seed_keeps``:
    compare's single-family points (``compare --keep K``)."""
    out = []
    keeps = dict.fromkeys(k for k in (COMPARE_KEEP, *spec.seed_keeps) if k >= spec.min_keep)
    for family in spec.families:
        for keep in keeps if family != "dense" else ():
            params = _global(spec, spec.groups[0])
            for name in bench.names:
                params[f"{name}:family"], params[f"{name}:keep"] = family, keep
            out.append({**params, "_seed": f"compare:{family}@{keep:g}"})
    return out


def seed_params(spec: ExploreSpec, bench: Workbench) -> list[dict[str, Any]]:
    """Trial parameters of the dense model, of every family alone at compare's kept
    fractions (when ``spec.seeds`` is not empty), and of every selector × kept fraction."""
    conv = spec.conventions.model_copy(update={"r_mapper": spec.mappers[0]})
    chip = study_chip(conv.precision_of(spec.model), spec.arrays[0])
    found = [p for p in (_dense(spec, bench),) if p is not None]
    if spec.seeds:
        found += _single_families(spec, bench)
    excluded = [n for n, _ in bench.model.named_modules() if n and n not in bench.names]
    g = spec.groups[0]
    for selector in spec.seeds:
        groups = (1, g) if selector == "alds" and "group-low-rank" in spec.families else (1,)
        for keep in spec.seed_keeps:
            result = search_ranks(
                bench.model, bench.calibration, chip, mapper=conv.mapper(),
                factorization=spec.factorizations[0], selector=selector, keep=keep,
                groups=groups, snap=conv.snap, cycle_count=conv.cycles, stats=bench.stats,
                exclude=[n for n in excluded if _prunable(bench, n)],
                config=SearchConfig(seed=spec.seed, trials=SEED_TRIALS, haloc_steps=30),
            )
            params = _from_choices(spec, bench, result.layers, g)
            if params is not None:
                found.append({**params, "_seed": f"{selector}@keep{keep:g}"})
    unique: dict[str, dict[str, Any]] = {}
    for p in found:
        key = repr(sorted((k, v) for k, v in p.items() if k != "_seed"))
        unique.setdefault(key, {**p, "_seed": p.get("_seed", "dense")})
    return list(unique.values())


def _prunable(bench: Workbench, name: str) -> bool:
    from torch import nn

    return isinstance(bench.model.get_submodule(name), (nn.Conv2d, nn.Linear))
