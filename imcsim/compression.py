"""The compression vocabulary, defined once (torch-free): model transforms, and the
methods ``compare`` puts side by side (a transform plus the mapper that exploits it).

Low-rank vs pruning on IMC arrays: Jeon, Rhe, Ko, DATE 2025; row skipping of pruned
layers: PAIRS (ISLPED 2023), GAROS (JSA 2025).  The transforms themselves live on the
torch side (``imcsim.nn.compress``); sweeps, comparisons and accuracy studies name them
with these words.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from imcsim.errors import ConfigError

__all__ = ["DENSE_LAYERS", "DenseLayers", "METHODS", "Method", "PATTERN_LIBRARIES",
           "PATTERN_SHARES", "PRUNINGS", "PatternLibrary", "PatternShare", "Pruning",
           "TRANSFORMS", "Transform", "method", "transform_of"]

Pruning = Literal["unstructured", "filter", "channel", "pattern", "kernel-pattern"]
"""Pruning schemes (``imcsim.nn.compress.prune``): unstructured magnitude, whole filters,
whole input channels, one K×K edge pattern shared per input channel at a kept fraction
(``pattern``), or n-tap patterns from a pattern library (``kernel-pattern``: PatDNN, Niu
et al., ASPLOS 2020; PConv, Ma et al., AAAI 2020; random), chosen per kernel by default."""
PRUNINGS: tuple[str, ...] = get_args(Pruning)

PatternLibrary = Literal["patdnn", "pconv", "random"]
"""Where the n-tap patterns of ``kernel-pattern`` come from (``nn.compress.kernel_patterns``):
the most frequent top-n-magnitude patterns of the network (PatDNN), the centre plus arms
(PConv), or seeded random patterns (the random baseline of the GAROS code)."""
PATTERN_LIBRARIES: tuple[str, ...] = get_args(PatternLibrary)

PatternShare = Literal["kernel", "channel", "layer"]
"""Which weights share one ``kernel-pattern`` choice: every kernel picks its own (PatDNN),
all filters of an input channel share one, or the whole layer shares one (the
kernel-wise / array-wise / block-wise pattern dimensions of PAIRS, ISLPED 2023)."""
PATTERN_SHARES: tuple[str, ...] = get_args(PatternShare)

DenseLayers = Literal["none", "stem-1x1-fc"]
"""Layers a compression leaves dense: none (imcsim's default), or the first conv, every 1×1
conv and every Linear layer (the low-rank paper group's convention)."""
DENSE_LAYERS: tuple[str, ...] = get_args(DenseLayers)

Transform = Literal["dense", "unstructured", "filter", "channel", "pattern", "kernel-pattern",
                    "low-rank", "group-low-rank", "low-rank-queries"]
"""A model transform: none, a pruning scheme, low-rank or group low-rank factorisation, or
low-rank queries (attention query projections only, latent 64: Multi-Head Latent
Attention's queries, "Powerful Design of Small Vision Transformer on CIFAR10")."""
TRANSFORMS: tuple[str, ...] = get_args(Transform)


def transform_of(name: str, what: str = "compression") -> str:
    """The transform a user's word names: a transform, or ``pruned-<scheme>``; ``what`` is
    how the error calls the value (``method`` for ``--method``)."""
    canonical = name.removeprefix("pruned-") if name.removeprefix("pruned-") in PRUNINGS else name
    if canonical not in TRANSFORMS:
        known = ", ".join((*TRANSFORMS, *(f"pruned-{p}" for p in PRUNINGS)))
        raise ConfigError(f"unknown {what} {name!r} (known: {known})")
    return canonical


@dataclass(frozen=True)
class Method:
    """A compression method of ``compare``: a transform mapped by a mapper (for low-rank
    transforms ``mapper`` is the dense mapper of the K×K factor R)."""

    name: str
    transform: str
    mapper: str

    @property
    def factorised(self) -> bool:
        return self.transform in ("low-rank", "group-low-rank")


def _methods(*rows: tuple[str, str, str]) -> dict[str, Method]:
    return {name: Method(name, transform, mapper) for name, transform, mapper in rows}


METHODS: dict[str, Method] = _methods(
    ("dense-im2col", "dense", "im2col"),
    ("dense-sdk", "dense", "sdk"),
    ("dense-vw-sdk", "dense", "vw-sdk"),
    ("pruned-unstructured-im2col", "unstructured", "pruned-im2col"),
    ("pruned-unstructured-sdk", "unstructured", "pruned-sdk"),
    ("pruned-filter-sdk", "filter", "pruned-sdk"),
    ("pruned-channel-sdk", "channel", "pruned-sdk"),
    ("pruned-pattern-sdk", "pattern", "pruned-sdk"),
    ("pruned-kernel-pattern-sdk", "kernel-pattern", "pruned-sdk"),
    ("low-rank-sdk", "low-rank", "sdk"),
    ("low-rank-vw-sdk", "low-rank", "vw-sdk"),
    ("group-low-rank-sdk", "group-low-rank", "sdk"),
    ("group-low-rank-vw-sdk", "group-low-rank", "vw-sdk"),
)


def method(name: str) -> Method:
    """The compare method called ``name`` (one-line ``ConfigError`` if unknown)."""
    try:
        return METHODS[name]
    except KeyError:
        raise ConfigError(f"unknown method {name!r} (known: {', '.join(METHODS)})") from None
