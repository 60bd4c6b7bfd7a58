"""What a pruning returns: the pruned copy of the model and what each layer kept.

The record types sit below both pruners (``prune`` for the mask families, ``kernel_patterns``
for n-tap pattern libraries), so neither has to import the other to build one.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

__all__ = ["LayerPruning", "Pruning"]


@dataclass(frozen=True)
class LayerPruning:
    name: str
    method: str
    params: int
    kept: int
    """Nonzero weights after pruning."""


@dataclass(frozen=True)
class Pruning:
    """A pruned copy of a model and what each layer kept."""

    model: nn.Module
    layers: tuple[LayerPruning, ...]

    @property
    def params(self) -> int:
        return sum(p.params for p in self.layers)

    @property
    def kept(self) -> int:
        return sum(p.kept for p in self.layers)
