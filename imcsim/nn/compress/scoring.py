"""Score a rank assignment without fine-tuning: the network's loss on a calibration batch.

BSR scores truncated networks on held-out data, BO and HALOC optimise the same kind of
loss.  ``Scorer`` keeps one working copy of the model and swaps only the layers whose
option changed between two calls, so a search that moves one layer at a time pays one
module swap and one forward pass per candidate.  With labels the loss is cross-entropy;
without, the mean squared error to the dense model's outputs (distillation).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from imcsim.nn.compress.bank import FactorBank
from imcsim.nn.compress.space import Option

__all__ = ["Scorer"]


class Scorer:
    """Loss of the model with a selection applied, on fixed calibration images."""

    def __init__(
        self, bank: FactorBank, names: Sequence[str], images: torch.Tensor,
        labels: torch.Tensor | None = None, batch_size: int = 256,
    ) -> None:
        self.bank, self.names = bank, tuple(names)
        self.images, self.batch_size = images, batch_size
        self.work = copy.deepcopy(bank.model).eval()
        self._current: dict[str, Option | None] = dict.fromkeys(self.names)
        if labels is None:
            with torch.no_grad():
                labels = bank.model.eval()(images)
        self.targets = labels
        self._cache: dict[tuple[Option, ...], float] = {}
        self.evaluations = 0

    def criterion(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Cross-entropy against labels, MSE against dense outputs."""
        if target.dtype == torch.long:
            return F.cross_entropy(output, target)
        return F.mse_loss(output, target)

    def _set(self, name: str, option: Option) -> None:
        if self._current[name] == option:
            return
        parent, _, child = name.rpartition(".")
        setattr(self.work.get_submodule(parent) if parent else self.work, child,
                self.bank.module(name, option))
        self._current[name] = option

    def install(self, selection: Sequence[Option]) -> nn.Module:
        """The working copy with ``selection`` (one option per name) in place."""
        for name, option in zip(self.names, selection, strict=True):
            self._set(name, option)
        return self.work

    @torch.no_grad()
    def loss(self, selection: Sequence[Option]) -> float:
        """Mean loss over the calibration images (cached per selection)."""
        key = tuple(selection)
        if key not in self._cache:
            model = self.install(key)
            total = 0.0
            for start in range(0, len(self.images), self.batch_size):
                out = model(self.images[start:start + self.batch_size])
                target = self.targets[start:start + self.batch_size]
                total += float(self.criterion(out, target)) * len(out)
            self._cache[key] = total / len(self.images)
            self.evaluations += 1
        return self._cache[key]
