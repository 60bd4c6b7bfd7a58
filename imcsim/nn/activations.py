"""Capture the input activations of mapped layers (operator level, one forward pass).

Layers are named as ``imcsim.nn.extract`` names them: the module's qualified name
(``layer1.0.conv1``), ``name#k`` for its k-th call; the inputs are captured at the
operator level by the same pass (``imcsim.nn.extract.layer_inputs``).  They come back as
numpy (N, C, H, W) (``imcsim.nn.ops.as_nchw``): a Linear layer's (N, …, F) input is
(N, F, 1, tokens), the geometry of ``LayerShape.linear``.  A mapping's placement speaks
of the layer's own channels (a pruned mapping simply places no row of a channel it left
out), so inputs are passed on whole.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from imcsim.errors import MappingError
from imcsim.mappers.mapping import LayerMapping
from imcsim.nn.extract import layer_inputs

__all__ = ["capture_activations", "mapped_inputs"]


def capture_activations(
    model: nn.Module, inputs: torch.Tensor, names: Sequence[str]
) -> dict[str, np.ndarray]:
    """Run ``inputs`` through ``model`` once and return the input of each named layer."""
    captured = layer_inputs(model, inputs, names)
    missing = [n for n in names if n not in captured]
    if missing:
        raise MappingError(f"layer(s) {', '.join(missing)} never ran on these inputs")
    return captured


def mapped_inputs(
    model: nn.Module, inputs: torch.Tensor, mappings: Sequence[LayerMapping]
) -> dict[str, np.ndarray]:
    """The input of every mapped layer, keyed by layer name."""
    return capture_activations(model, inputs, [m.layer.name for m in mappings])
