"""Capture the input activations of mapped layers with forward hooks.

Layers are named as ``imcsim.nn.extract`` names them: the module's qualified name
(``layer1.0.conv1``), ``name#k`` for its k-th call.  Hooks are removed in ``finally``.
Inputs come back as numpy (N, C, H, W): a Linear layer's (N, F) input is
(N, F, 1, 1) and an (N, …, F) sequence input is (N, F, 1, tokens), the geometry of
``LayerShape.linear``.  A mapping's placement speaks of the layer's own channels (a
pruned mapping simply places no row of a channel it left out), so inputs are passed on
whole.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from imcsim.errors import MappingError
from imcsim.mappers.mapping import LayerMapping
from imcsim.nn.extract import run_with_hooks

__all__ = ["as_nchw", "capture_activations", "mapped_inputs"]


def as_nchw(module: nn.Module, x: torch.Tensor) -> np.ndarray:
    """A layer input as numpy (N, C, H, W) in the layout its ``LayerShape`` describes."""
    x = x.detach().float().cpu()
    if isinstance(module, nn.Linear):
        tokens = x.reshape(x.shape[0], -1, module.in_features)
        x = tokens.transpose(1, 2).unsqueeze(2)
    return x.numpy()


def capture_activations(
    model: nn.Module, inputs: torch.Tensor, names: Sequence[str]
) -> dict[str, np.ndarray]:
    """Run ``inputs`` through ``model`` once and return the input of each named layer."""
    wanted, captured = set(names), {}

    def visit(label: str, module: nn.Module, x: torch.Tensor) -> None:
        if label in wanted:
            captured[label] = as_nchw(module, x)

    layers = [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    run_with_hooks(model, inputs, layers, visit)
    missing = [n for n in names if n not in captured]
    if missing:
        raise MappingError(f"layer(s) {', '.join(missing)} never ran on these inputs")
    return captured


def mapped_inputs(
    model: nn.Module, inputs: torch.Tensor, mappings: Sequence[LayerMapping]
) -> dict[str, np.ndarray]:
    """The input of every mapped layer, keyed by layer name."""
    return capture_activations(model, inputs, [m.layer.name for m in mappings])
