"""Torch side of ``imcsim.studies.compare``: compress one model every way, extract its layers.

Every transform keeps about ``keep`` of the conv/linear weights, layer by layer:
pruning uses sparsity 1 − keep; low-rank uses ``RankRule(keep=keep)``; group low-rank
the same with ``groups`` groups per layer (split axis ``split``).  ``Knobs`` override the
kept fraction with each method's own knob: a fixed network-wide ``rank`` (per group) for
low-rank (layers whose full rank it reaches stay dense: factorising would not shrink
them), a tap count ``taps`` (and pattern library and sharing) for kernel patterns;
``dense_layers`` leaves the stem, 1×1 convs and Linear layers dense;
``low-rank-queries`` factorises only the attention query projections with a latent of 64.
No training is involved: the comparison is about shapes and masks, on the model's shipped weights
when ``imcsim.zoo.checkpoints.load_model`` has them, else on its Kaiming initialisation.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn

from imcsim.compression import PRUNINGS, TRANSFORMS
from imcsim.errors import ConfigError
from imcsim.layers import LayerShape
from imcsim.nn.compress.exclusions import dense_layer_names
from imcsim.nn.compress.group import full_rank
from imcsim.nn.compress.kernel_patterns import kernel_pattern_prune
from imcsim.nn.compress.lowrank import low_rank, low_rank_queries, targets
from imcsim.nn.compress.modules import Split
from imcsim.nn.compress.prune import prune
from imcsim.nn.compress.svd import RankRule
from imcsim.nn.extract import extract_layers

__all__ = ["QUERY_LATENT", "Knobs", "build_workloads", "compressed", "resolve_model"]

QUERY_LATENT = 64
"""Latent size of ``low-rank-queries`` (the Tiny ViT paper's MLA setting)."""


def resolve_model(
    model: str | nn.Module, example_input: torch.Tensor | None
) -> tuple[str, nn.Module, torch.Tensor, str]:
    """(name, module, example input, description of its weights)."""
    if isinstance(model, str):
        from imcsim.zoo.checkpoints import load_model
        from imcsim.zoo.models import example_input as model_input

        module, weights = load_model(model)
        return model, module, model_input(model) if example_input is None else example_input, weights
    if example_input is None:
        raise ConfigError("compare: a torch module needs an example_input")
    return type(model).__name__, model, example_input, "weights of the given module"


@dataclass(frozen=True)
class Knobs:
    """Each method's own knob, replacing the common kept fraction where given."""

    rank: int | None = None
    """Low-rank: fixed rank per group in every factorised layer (None: ``keep`` budget)."""
    taps: int | None = None
    """Kernel patterns: taps kept per kernel (None: ⌊keep·K²⌋)."""
    library: str = "patdnn"
    """Kernel patterns: pattern library (patdnn, pconv, random)."""
    share: str = "kernel"
    """Kernel patterns: who shares one pattern choice (kernel, channel, layer)."""
    library_size: int = 8
    """Kernel patterns: patterns in the patdnn / random library."""
    seed: int = 0
    """Kernel patterns: seed of the random library."""
    dense_layers: str = "none"
    """Layers every compression leaves dense (none, stem-1x1-fc)."""


def compressed(
    module: nn.Module, transform: str, keep: float, groups: int, split: Split,
    knobs: Knobs = Knobs(),
) -> nn.Module:
    """``module`` compressed by ``transform`` (a copy; ``dense`` returns it unchanged)."""
    if transform == "dense":
        return module
    exclude = dense_layer_names(module, knobs.dense_layers)
    if transform == "kernel-pattern":
        return kernel_pattern_prune(
            module, knobs.taps, keep=None if knobs.taps is not None else keep,
            library=knobs.library, share=knobs.share, size=knobs.library_size, seed=knobs.seed,
            exclude=exclude,
        ).model
    if transform in PRUNINGS:
        return prune(module, transform, 1 - keep, exclude=exclude).model
    rule = RankRule(rank=knobs.rank) if knobs.rank is not None else RankRule(keep=keep)
    if knobs.rank is not None:
        exclude += _rank_bound(module, knobs.rank, groups if transform == "group-low-rank" else 1,
                               split, exclude)
    if transform == "low-rank":
        return low_rank(module, rule, exclude=exclude).model
    if transform == "group-low-rank":
        return low_rank(module, rule, groups=groups, split=split, exclude=exclude).model
    if transform == "low-rank-queries":  # ``keep`` does not apply: the latent is fixed
        return low_rank_queries(module, QUERY_LATENT).model
    raise ConfigError(f"unknown transform {transform!r} (known: {', '.join(TRANSFORMS)})")


def _rank_bound(module: nn.Module, rank: int, groups: int, split: Split,
                exclude: list[str]) -> list[str]:
    """Layers a fixed ``rank`` would not shrink (rank ≥ their full rank): left dense."""
    out = []
    for name, m in targets(module, exclude):
        shape = tuple(m.weight.shape) if m.weight.dim() == 4 else (*m.weight.shape, 1, 1)
        channels = shape[1] if split == "input" else shape[0]
        g = groups if isinstance(m, nn.Conv2d) and channels % groups == 0 else 1
        if rank >= full_rank(shape, g, split):
            out.append(name)
    return out


def build_workloads(
    module: nn.Module, example_input: torch.Tensor, transforms: Iterable[str], keep: float,
    groups: int = 2, split: Split = "input", knobs: Knobs = Knobs(),
) -> dict[str, tuple[LayerShape, ...]]:
    """Extracted layers of every compressed variant, keyed by transform."""
    out = {}
    for transform in dict.fromkeys(transforms):
        variant = compressed(module, transform, keep, groups, split, knobs)
        out[transform] = extract_layers(variant, example_input).layers
    return out
