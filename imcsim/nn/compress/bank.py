"""Factors of every layer at every group count, computed once and sliced to any rank.

``FactorBank`` holds, per layer and group count, the ``Nested`` factors of each weight
block (``imcsim.nn.compress.factorizations``), builds the ``LowRankConv2d`` /
``LowRankLinear`` of any ``Option`` from them, measures its output error on held-out
input statistics, and applies a whole selection to a copy of the model.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

import torch
from torch import nn

from imcsim.errors import ConfigError
from imcsim.nn.compress.calibration import InputStats, output_error
from imcsim.nn.compress.factorizations import Factorizer, Nested
from imcsim.nn.compress.group import assemble, check_split, weight_blocks
from imcsim.nn.compress.modules import LowRankConv2d, LowRankLinear, Split
from imcsim.nn.compress.space import Option

__all__ = ["FactorBank", "folded"]


def folded(module: nn.Module) -> torch.Tensor:
    """The weight as (C_out, C_in·K_h·K_w, 1, 1)-compatible 4-D tensor (Linear: K = 1)."""
    w = module.weight.detach()
    return w if w.dim() == 4 else w[:, :, None, None]


class FactorBank:
    """Nested factors of ``names`` in ``model`` by ``factorizer`` (see module docstring)."""

    def __init__(
        self, model: nn.Module, names: list[str], factorizer: Factorizer,
        stats: Mapping[str, InputStats] | None = None, split: Split = "input",
    ) -> None:
        if factorizer.needs_data and stats is None:
            raise ConfigError(f"factorization {factorizer.name!r} needs calibration images")
        self.model, self.factorizer, self.split = model, factorizer, split
        self.modules = {n: model.get_submodule(n) for n in names}
        self.stats = stats
        self._nested: dict[tuple[str, int], list[Nested]] = {}
        self._built: dict[tuple[str, Option], nn.Module] = {}

    def _block_stats(self, name: str, groups: int) -> list[InputStats | None]:
        if self.stats is None or not self.factorizer.needs_data:
            return [None] * groups
        if name not in self.stats:
            raise ConfigError(f"layer {name!r}: no calibration statistics (never executed?)")
        full = self.stats[name]
        if self.split == "output":
            return [full] * groups
        width = (full.gram.shape[0] - 1) // groups
        return [full.block(j * width, (j + 1) * width) for j in range(groups)]

    def nested(self, name: str, groups: int) -> list[Nested]:
        """One ``Nested`` per weight block of layer ``name`` split into ``groups``."""
        key = (name, groups)
        if key not in self._nested:
            module = self.modules[name]
            w4 = folded(module)
            if groups > 1:
                check_split(name, w4.shape[1], w4.shape[0], groups, self.split)
            blocks = weight_blocks(w4, groups, self.split)
            self._nested[key] = [
                self.factorizer.nested(b.double(), s)
                for b, s in zip(blocks, self._block_stats(name, groups))
            ]
        return self._nested[key]

    def strengths(self, name: str, groups: int) -> list[torch.Tensor]:
        return [n.strengths for n in self.nested(name, groups)]

    def norm(self, name: str) -> float:
        """The largest strength of the unsplit layer (‖W‖₂ for SVD): ALDS's error scale."""
        return float(self.nested(name, 1)[0].strengths[0].clamp_min(1e-300))

    def _offset(self, parts: list[Nested], rank: int) -> torch.Tensor | None:
        offsets = [p.offset(rank) for p in parts]
        if all(o is None for o in offsets):
            return None
        if self.split == "output":
            return torch.cat(offsets)  # type: ignore[arg-type]
        return torch.stack(offsets).sum(0)  # type: ignore[arg-type]

    def approximation(self, name: str, option: Option) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(Ŵ folded to C_out × n, b̂) of ``option`` (the layer itself when dense)."""
        module = self.modules[name]
        w = folded(module).flatten(1).double()
        bias = None if module.bias is None else module.bias.detach().double()
        if option.dense:
            return w, bias
        parts = self.nested(name, option.groups)
        pieces = [p.weight(option.rank) for p in parts]
        approx = torch.cat(pieces, dim=1 if self.split == "input" else 0)
        offset = self._offset(parts, option.rank)
        if offset is not None:
            bias = offset if bias is None else bias + offset
        return approx, bias

    def output_error(self, name: str, option: Option, stats: InputStats) -> float:
        """Relative output error of ``option`` on the inputs of ``stats``."""
        module = self.modules[name]
        approx, bias = self.approximation(name, option)
        bias0 = None if module.bias is None else module.bias.detach()
        return output_error(folded(module).flatten(1), approx, stats, bias0, bias)

    def module(self, name: str, option: Option) -> nn.Module:
        """The module of ``option`` (cached; the original module when dense)."""
        key = (name, option)
        if option.dense:
            return self.modules[name]
        if key not in self._built:
            self._built[key] = self._build(name, option)
        return self._built[key]

    def _build(self, name: str, option: Option) -> nn.Module:
        module = self.modules[name]
        new: nn.Module
        if isinstance(module, nn.Conv2d):
            new = LowRankConv2d(module, option.rank, option.groups, self.split)
        else:
            if option.groups != 1:
                raise ConfigError(f"layer {name!r}: a Linear layer takes groups=1 only")
            new = LowRankLinear(module, option.rank)
        parts = self.nested(name, option.groups)
        new = new.to(dtype=module.weight.dtype)
        assemble(new, [(p.left[:, :option.rank], p.right[:option.rank]) for p in parts])
        _, bias = self.approximation(name, option)
        if bias is not None:  # the original bias, plus feature-based mean compensation
            new.l.bias = nn.Parameter(bias.to(module.weight.dtype).clone())
        return new.eval()

    def apply(self, selection: Mapping[str, Option]) -> nn.Module:
        """A copy of the model with every selected layer replaced (dense ones kept)."""
        model = copy.deepcopy(self.model)
        for name, option in selection.items():
            if option.dense:
                continue
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent) if parent else model, child,
                    copy.deepcopy(self.module(name, option)))
        return model
