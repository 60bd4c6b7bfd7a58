"""Pruning masks: unstructured magnitude, filter, channel and pattern pruning.

* ``unstructured`` — the smallest |w| of each layer (Han et al., NeurIPS 2015).
* ``filter`` — whole output channels with the smallest L2 norm (Li et al., ICLR 2017).
* ``channel`` — whole input channels with the smallest L2 norm (He et al., ICCV 2017).
* ``pattern`` — one K×K pattern per input channel or kernel (see ``patterns``).
* ``kernel-pattern`` — n-tap patterns from a library, n = ⌊keep·K²⌋ (see ``kernel_patterns``;
  ``kernel_pattern_prune`` takes the tap count, library and sharing directly).

Each layer keeps ``1 − sparsity`` of its weights (rounded, at least one filter /
channel / weight).  Masks use ``torch.nn.utils.prune``: the module gets a
``weight_orig`` parameter and a ``weight_mask`` buffer and ``weight = weight_orig ·
weight_mask``, so pruned weights are exact zeros (which the extractor records as the
layer's nonzero mask) and stay zero when training goes on.  ``torch.save(model)``
keeps the reparametrisation; a state dict loads back with ``load_pruned``.
Filter/channel pruning keep the layer shapes; the pruned mapper drops all-zero
filters and channels from the mapped shape.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn.utils import prune as torch_prune

from imcsim.compression import PRUNINGS
from imcsim.errors import ConfigError
from imcsim.nn.compress.kernel_patterns import (
    assign_patterns,
    kernel_pattern_prune,
    pattern_library,
    taps_for,
)
from imcsim.nn.compress.patterns import Shared, check_patterns, default_patterns, pattern_mask
from imcsim.nn.compress.pruning import LayerPruning, Pruning
from imcsim.nn.ops import weight_modules

__all__ = ["LayerPruning", "Pruning", "channel_mask", "check_sparsity", "filter_mask",
           "layer_mask", "load_pruned", "magnitude_mask", "prune"]


def check_sparsity(sparsity: float) -> None:
    if isinstance(sparsity, bool) or not isinstance(sparsity, (int, float)) or not 0 <= sparsity < 1:
        raise ConfigError(f"sparsity must be in [0, 1) (got {sparsity!r})")


def _kept(n: int, sparsity: float) -> int:
    return max(1, n - round(sparsity * n))


def magnitude_mask(weight: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Keep the ``1 − sparsity`` largest |w| of the tensor."""
    flat = weight.detach().abs().flatten()
    mask = torch.zeros_like(flat, dtype=torch.bool)
    mask[torch.topk(flat, _kept(flat.numel(), sparsity)).indices] = True
    return mask.reshape(weight.shape)


def _slice_mask(weight: torch.Tensor, sparsity: float, dim: int) -> torch.Tensor:
    other = [d for d in range(weight.dim()) if d != dim]
    norms = weight.detach().double().pow(2).sum(dim=other)
    keep = torch.topk(norms, _kept(norms.numel(), sparsity)).indices
    shape = [1] * weight.dim()
    shape[dim] = -1
    chosen = torch.zeros_like(norms, dtype=torch.bool)
    chosen[keep] = True
    return chosen.reshape(shape).expand_as(weight).clone()


def filter_mask(weight: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Keep the output channels (dim 0) with the largest L2 norm."""
    return _slice_mask(weight, sparsity, 0)


def channel_mask(weight: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Keep the input channels (dim 1) with the largest L2 norm."""
    return _slice_mask(weight, sparsity, 1)


def layer_mask(
    weight: torch.Tensor, method: str, sparsity: float, patterns: np.ndarray | None = None,
    shared: Shared = "channel",
) -> torch.Tensor:
    """Mask of one weight (conv (C_out, C_in/g, kh, kw) or linear (out, in))."""
    check_sparsity(sparsity)
    if method == "unstructured":
        return magnitude_mask(weight, sparsity)
    if method == "filter":
        return filter_mask(weight, sparsity)
    if method == "channel":
        return channel_mask(weight, sparsity)
    if method == "kernel-pattern":
        return _kernel_pattern_mask(weight, sparsity)
    if method != "pattern":
        raise ConfigError(f"pruning method {method!r} unknown (known: {', '.join(PRUNINGS)})")
    w4 = weight.detach() if weight.dim() == 4 else weight.detach().reshape(*weight.shape, 1, 1)
    kernel = tuple(w4.shape[2:])
    pats = default_patterns(*kernel, 1 - sparsity) if patterns is None else patterns
    mask = pattern_mask(w4.cpu().double().numpy(), sparsity, pats, shared)
    return torch.from_numpy(mask).reshape(weight.shape).to(weight.device)


def _kernel_pattern_mask(weight: torch.Tensor, sparsity: float) -> torch.Tensor:
    """One layer's n-tap PatDNN patterns (library from this layer), n = ⌊(1 − sparsity)·K²⌋."""
    kernel = tuple(weight.shape[2:])
    if weight.dim() != 4 or taps_for(kernel, None, 1 - sparsity) >= kernel[0] * kernel[1]:
        return torch.ones_like(weight, dtype=torch.bool)
    w = weight.detach().cpu().double().numpy()
    lib = pattern_library("patdnn", taps_for(kernel, None, 1 - sparsity), kernel, weights=[w])
    return torch.from_numpy(assign_patterns(w, lib)).to(weight.device)


def _patterns_by_kernel(
    patterns: Sequence[np.ndarray] | None, modules: list[tuple[str, nn.Module]]
) -> dict[tuple[int, ...], np.ndarray]:
    if patterns is None:
        return {}
    first = np.asarray(patterns[0]) if len(patterns) else np.zeros((0, 0))
    kernels = {tuple(m.weight.shape[2:]) or (1, 1) for _, m in modules}
    if first.shape not in kernels:
        shown = ", ".join(f"{k[0]}x{k[1]}" for k in sorted(kernels))
        raise ConfigError(f"pattern shape {first.shape} matches no layer kernel ({shown})")
    return {first.shape: check_patterns(patterns, first.shape, "model")}


def prune(
    model: nn.Module, method: str, sparsity: float, *, patterns: Sequence[np.ndarray] | None = None,
    shared: Shared = "channel", exclude: Sequence[str] = (),
) -> Pruning:
    """A copy of ``model`` with every prunable module (``imcsim.nn.ops``: Conv2d, Linear)
    pruned by ``method`` to ``sparsity``.

    ``patterns`` (pattern pruning) apply to the layers whose kernel has their shape;
    the others use ``default_patterns`` of their own kernel.
    """
    check_sparsity(sparsity)
    if method not in PRUNINGS:
        raise ConfigError(f"pruning method {method!r} unknown (known: {', '.join(PRUNINGS)})")
    if method == "kernel-pattern":
        return kernel_pattern_prune(model, keep=1 - sparsity, exclude=exclude)
    model = copy.deepcopy(model)
    modules = [(n, m) for n, m, _ in weight_modules(model, where=lambda e, _m: e.prunable)
               if n not in exclude]
    given = _patterns_by_kernel(patterns, modules)
    records = []
    for name, module in modules:
        kernel = tuple(module.weight.shape[2:]) or (1, 1)
        mask = layer_mask(module.weight, method, sparsity, given.get(kernel), shared)
        torch_prune.custom_from_mask(module, "weight", mask)
        records.append(LayerPruning(name, method, mask.numel(), int(mask.sum())))
    return Pruning(model=model, layers=tuple(records))


def load_pruned(model: nn.Module, state: Mapping[str, torch.Tensor]) -> nn.Module:
    """Load a pruned model's state dict (``*.weight_orig`` / ``*.weight_mask``) into ``model``."""
    for key in state:
        if key == "weight_mask" or key.endswith(".weight_mask"):
            module = model.get_submodule(key.removesuffix("weight_mask").removesuffix("."))
            if not torch_prune.is_pruned(module):
                torch_prune.identity(module, "weight")
    model.load_state_dict(state)
    return model
