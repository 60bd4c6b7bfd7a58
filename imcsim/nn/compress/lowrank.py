"""Low-rank (and group low-rank) factorisation of a whole model, and low-rank queries.

Every ungrouped ``nn.Conv2d`` and every ``nn.Linear`` (minus ``exclude``) is replaced
by a ``LowRankConv2d`` / ``LowRankLinear`` initialised by truncated SVD (see
``svd``).  With ``groups > 1`` a conv whose split axis ``groups`` does not divide
(e.g. the 3-channel stem under an input split) is factorised plainly (g = 1), and
Linear layers are always plain; the per-layer records say which ``groups`` each got.
The input model is left untouched: a deep copy is transformed.

``low_rank_queries`` factorises only the query projections of attention blocks,
q = W_up·W_down·x with a latent of 64, the query half of Multi-Head Latent Attention
as "Powerful Design of Small Vision Transformer on CIFAR10" uses it (REFERENCES.md):
W_down = ``r`` (dim → latent), W_up = ``l`` (latent → dim), from the truncated SVD.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

from torch import nn

from imcsim.errors import ConfigError
from imcsim.nn.compress.group import check_options
from imcsim.nn.compress.modules import FACTORIZED, Split
from imcsim.nn.compress.svd import LayerFactor, RankRule, factorize_conv, factorize_linear
from imcsim.nn.ops import weight_modules

__all__ = ["QUERY_NAMES", "Factorization", "low_rank", "low_rank_queries", "targets"]


@dataclass(frozen=True)
class Factorization:
    """A factorised copy of a model and what happened to each layer."""

    model: nn.Module
    layers: tuple[LayerFactor, ...]

    @property
    def params(self) -> int:
        """Weights of the factorised layers before factorisation."""
        return sum(f.params for f in self.layers)

    @property
    def factored_params(self) -> int:
        return sum(f.factored_params for f in self.layers)


def targets(model: nn.Module, exclude: Sequence[str] = ()) -> list[tuple[str, nn.Module]]:
    """Factorizable modules of the registry (``imcsim.nn.ops``: ungrouped Conv2d, Linear),
    by qualified name, factor children excluded."""
    inside = {
        f"{name}.{child}" for name, m in model.named_modules() if isinstance(m, FACTORIZED)
        for child in ("r", "l")
    }
    unknown = set(exclude) - {n for n, _ in model.named_modules()}
    if unknown:
        raise ConfigError(f"exclude: no module named {sorted(unknown)[0]!r} in the model")
    return [
        (name, m) for name, m, _ in weight_modules(
            model, where=lambda entry, m: entry.factorizable and getattr(m, "groups", 1) == 1)
        if name not in inside and name not in exclude
    ]


def _groups_for(module: nn.Module, groups: int, split: str) -> int:
    if not isinstance(module, nn.Conv2d):
        return 1
    channels = module.in_channels if split == "input" else module.out_channels
    return groups if channels % groups == 0 else 1


def low_rank(
    model: nn.Module, rule: RankRule | int, *, groups: int = 1, split: Split = "input",
    exclude: Sequence[str] = (),
) -> Factorization:
    """A copy of ``model`` with every Conv2d/Linear factorised by ``rule`` (see module doc)."""
    rule = RankRule(rank=rule) if isinstance(rule, int) else rule
    check_options(groups, split)
    model = copy.deepcopy(model)
    records = []
    chosen = targets(model, exclude)
    if groups > 1 and not any(_groups_for(m, groups, split) == groups for _, m in chosen):
        raise ConfigError(
            f"groups={groups} divides the {split} channels of no conv layer: group low-rank "
            "would equal plain low-rank (pick a divisor of the channel counts, e.g. 2)"
        )
    for name, module in chosen:
        if isinstance(module, nn.Conv2d):
            g = _groups_for(module, groups, split)
            new, record = factorize_conv(module, rule, groups=g, split=split, name=name)
        else:
            new, record = factorize_linear(module, rule, name=name)
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent), child, new)
        records.append(record)
    return Factorization(model=model, layers=tuple(records))


QUERY_NAMES = ("q", "query", "q_proj")
"""Module names of query projections (Tiny ViT, BERT, GPT-NeoX/LLaMA conventions)."""


def low_rank_queries(
    model: nn.Module, latent: int = 64, names: Sequence[str] = QUERY_NAMES
) -> Factorization:
    """A copy of ``model`` whose ``nn.Linear`` query projections (modules named ``names``)
    become q = W_up·W_down·x with a ``latent``-dimensional bottleneck (truncated SVD)."""
    model = copy.deepcopy(model)
    records = []
    chosen = [(n, m) for n, m in targets(model) if n.rpartition(".")[2] in names]
    if not chosen:
        raise ConfigError(f"low-rank queries: no nn.Linear named {', '.join(names)} in the model")
    for name, module in chosen:
        if not isinstance(module, nn.Linear):
            raise ConfigError(f"low-rank queries: {name!r} is a {type(module).__name__}, not nn.Linear")
        new, record = factorize_linear(module, latent, name=name)
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent), child, new)
        records.append(record)
    return Factorization(model=model, layers=tuple(records))
