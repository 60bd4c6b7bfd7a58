"""Captured products → ``LayerShape``s: the rules ``imcsim.nn.extract`` applies to each
operator (see its docstring), one ``_Builder`` per extraction.

A routed expert product (``_grouped_mm``) becomes a ``linear`` layer over the routed
positions (tokens × top-k) with ``experts`` = the experts stored: its MACs are the
executed ones, whatever the split of the positions across experts (uniform load is the
stated assumption wherever the split matters: ``imcsim.capacity``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from imcsim.errors import UnsupportedLayerError
from imcsim.layers import LayerShape
from imcsim.nn.capture import Product
from imcsim.nn.compress.modules import FACTORIZED
from imcsim.nn.ops import MatMul, transposed_weight

__all__ = ["Builder", "factor_names", "layer_name"]


def factor_names(model: nn.Module) -> dict[str, dict[str, str]]:
    """``{"<name>.r": {factor_of: name, factor_role: "R"}, "<name>.l": …"L"}`` for every
    low-rank factorised module."""
    return {
        f"{name}.{child}": {"factor_of": name, "factor_role": role}
        for name, module in model.named_modules() if isinstance(module, FACTORIZED)
        for child, role in (("r", "R"), ("l", "L"))
    }


def layer_name(weight: str, model_name: str) -> str:
    """Layer name of a weight tensor: its module's name (``layer1.0.conv1`` for
    ``layer1.0.conv1.weight``, also for a pruned ``weight_orig`` or a parametrized weight),
    with the tensor's own name when it is not ``weight`` (``attn.in_proj``)."""
    if ".parametrizations." in f".{weight}":
        return f".{weight}".split(".parametrizations.")[0][1:] or model_name
    module, _, local = weight.rpartition(".")
    if local in ("weight", "weight_orig"):
        return module or model_name
    local = local.removesuffix("_weight")
    return f"{module}.{local}" if module else local


def _per_example(total: int, batch: int) -> int | None:
    return total // batch if total % batch == 0 else None


@dataclass
class Builder:
    """Turns captured products into layers and unmapped entries (one extraction)."""

    model: nn.Module
    batch: int
    factors: dict[str, dict[str, str]]

    def __post_init__(self) -> None:
        self.model_name = type(self.model).__name__
        self.layers: list[tuple[str, LayerShape, torch.Tensor | None]] = []
        self.sources: list[list[Product]] = []
        self.current: list[Product] = []
        self.unmapped: list[tuple[str, str, int]] = []
        self.weight_macs = self.matmul_macs = 0

    def add(self, base: str, shape: LayerShape | None, macs: int, weight: torch.Tensor | None,
            reason: str = "") -> None:
        if shape is None:
            self.unmapped.append((base, reason, macs))
            return
        self.layers.append((base, shape, weight))
        self.sources.append(self.current)
        if shape.kind == "matmul":
            self.matmul_macs += macs
        else:
            self.weight_macs += macs

    def product(self, p: Product) -> None:
        g = p.args
        if g["side"] is None:
            return self.add(*self._matmul(p))
        base = self._weight_layer_name(p)
        if g["side"] == 2:
            return self.add(base, None, p.macs, None,
                            "product of two weight tensors (a constant: compute it offline)")
        out, k = (g["cols"], g["reduction"]) if g["side"] == 1 else (g["rows"], g["reduction"])
        tokens = g["groups"] * (g["rows"] if g["side"] == 1 else g["cols"])
        if not g["shared"]:
            return self.add(base, None, p.macs, None,
                            f"batched product of {g['groups']} distinct weight matrices")
        per = _per_example(tokens, self.batch)
        if per is None:
            return self.add(base, None, p.macs, None, self._split_reason(tokens))
        shape = LayerShape.linear(k, out, positions=per, name=base)
        if "experts" in g:
            shape = shape.model_copy(update={"experts": g["experts"]})
        self.add(base, shape, p.macs, p.weight_tensor)

    def _matmul(self, p: Product) -> tuple[str, LayerShape | None, int, None, str]:
        g = p.args
        base = p.owner if isinstance(p.owner_module, MatMul) else (
            f"{p.owner}.matmul" if p.owner else "matmul")
        groups, rows = g["groups"], g["rows"]
        if groups % self.batch == 0:
            groups //= self.batch
        elif groups == 1 and rows % self.batch == 0:
            rows //= self.batch
        else:
            return base, None, p.macs, None, self._split_reason(groups * rows)
        return base, LayerShape.matmul(g["reduction"], g["cols"], rows, groups, name=base), \
            p.macs, None, ""

    def _split_reason(self, total: int) -> str:
        return f"{total} rows do not split into {self.batch} examples (use a batch of 1)"

    def _weight_layer_name(self, p: Product) -> str:
        if p.weight in (None, "?"):
            return f"{p.owner}.linear" if p.owner else "linear"
        return layer_name(p.weight, self.model_name)

    def convolution(self, p: Product) -> None:
        g = p.args
        base = self._weight_layer_name(p) if not g["dynamic"] else (p.owner or "conv")
        if g["dynamic"]:
            return self.add(base, None, p.macs, None, "convolution whose kernel is an activation")
        images = g["input"][0]
        if images != self.batch:
            return self.add(base, None, p.macs, None,
                            f"runs on {images} images for {self.batch} example(s): imcsim maps "
                            "one convolution per example")
        try:
            shape, weight = _conv_shape(base, g, p.weight_tensor)
        except UnsupportedLayerError as exc:
            return self.add(base, None, p.macs, None, str(exc))
        self.add(base, shape, p.macs, weight)


def _conv_shape(name: str, g: dict[str, Any], w: torch.Tensor) -> tuple[LayerShape, torch.Tensor]:
    x, groups, dims = g["input"], g["groups"], len(g["input"]) - 2
    if g["transposed"] and dims == 2:
        shape = LayerShape.conv_transpose2d(
            x[1], w.shape[1] * groups, tuple(w.shape[2:]), tuple(x[2:]), g["stride"],
            g["padding"], g["output_padding"], g["dilation"], groups, name=name)
        return shape, transposed_weight(w, groups)
    if g["transposed"] or dims not in (1, 2):
        kind = "transposed " if g["transposed"] else ""
        raise UnsupportedLayerError(f"{kind}{dims}-d convolution has no crossbar mapping")
    if dims == 1:
        shape = LayerShape.conv1d(x[1], w.shape[0], w.shape[2], x[2], g["stride"][0],
                                  g["padding"][0], g["dilation"][0], groups, name=name)
        return shape, w.unsqueeze(2)
    shape = LayerShape.conv2d(x[1], w.shape[0], tuple(w.shape[2:]), tuple(x[2:]),
                              stride=g["stride"], padding=g["padding"],
                              dilation=g["dilation"], groups=groups, name=name)
    return shape, w
