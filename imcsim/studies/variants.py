"""Torch side of ``imcsim.studies.compare``: compress one model every way, extract its layers.

Every transform keeps about ``keep`` of the conv/linear weights, layer by layer:
pruning uses sparsity 1 − keep; low-rank uses ``RankRule(keep=keep)``; group low-rank
the same with ``groups`` groups per layer (split axis ``split``); ``low-rank-queries``
factorises only the attention query projections with a latent of 64.  No training is
involved: the comparison is about shapes and masks, on the model's shipped weights
when ``imcsim.studies.zoo.load_model`` has them, else on its Kaiming initialisation.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from imcsim.compression import PRUNINGS, TRANSFORMS
from imcsim.errors import ConfigError
from imcsim.layers import LayerShape
from imcsim.nn.compress.lowrank import low_rank, low_rank_queries
from imcsim.nn.compress.modules import Split
from imcsim.nn.compress.prune import prune
from imcsim.nn.compress.svd import RankRule
from imcsim.nn.extract import extract_layers

QUERY_LATENT = 64
"""Latent size of ``low-rank-queries`` (the Tiny ViT paper's MLA setting)."""


def resolve_model(
    model: str | nn.Module, example_input: torch.Tensor | None
) -> tuple[str, nn.Module, torch.Tensor, str]:
    """(name, module, example input, description of its weights)."""
    if isinstance(model, str):
        from imcsim.studies.models import example_input as model_input
        from imcsim.studies.zoo import load_model

        module, weights = load_model(model)
        return model, module, model_input(model) if example_input is None else example_input, weights
    if example_input is None:
        raise ConfigError("compare: a torch module needs an example_input")
    return type(model).__name__, model, example_input, "weights of the given module"


def compressed(
    module: nn.Module, transform: str, keep: float, groups: int, split: Split
) -> nn.Module:
    """``module`` compressed by ``transform`` (a copy; ``dense`` returns it unchanged)."""
    if transform == "dense":
        return module
    if transform in PRUNINGS:
        return prune(module, transform, 1 - keep).model
    if transform == "low-rank":
        return low_rank(module, RankRule(keep=keep)).model
    if transform == "group-low-rank":
        return low_rank(module, RankRule(keep=keep), groups=groups, split=split).model
    if transform == "low-rank-queries":  # ``keep`` does not apply: the latent is fixed
        return low_rank_queries(module, QUERY_LATENT).model
    raise ConfigError(f"unknown transform {transform!r} (known: {', '.join(TRANSFORMS)})")


def build_workloads(
    module: nn.Module, example_input: torch.Tensor, transforms: Iterable[str], keep: float,
    groups: int = 2, split: Split = "input",
) -> dict[str, tuple[LayerShape, ...]]:
    """Extracted layers of every compressed variant, keyed by transform."""
    out = {}
    for transform in dict.fromkeys(transforms):
        variant = compressed(module, transform, keep, groups, split)
        out[transform] = extract_layers(variant, example_input).layers
    return out
