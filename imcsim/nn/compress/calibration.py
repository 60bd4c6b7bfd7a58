"""Input statistics of the layers to factorise, and output errors measured with them.

Data-aware factorisations (DRONE, feature-based) and the per-layer output reconstruction
error need the activations each layer really sees.  Storing them is not necessary: every
quantity they need is a function of the second moments of the layer's inputs, augmented
by a constant 1 so that biases and means come along,

    G = Σ x̃ x̃ᵀ,   x̃ = [x; 1],

over every input vector x of the layer (every im2col patch of a conv — padding zeros
included, exactly what the crossbar rows see — and every row of a Linear).  Then for a
layer W̃ = [W b] and an approximation Ŵ̃, ‖(W̃ − Ŵ̃) X̃‖_F² = tr((W̃ − Ŵ̃) G (W̃ − Ŵ̃)ᵀ).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from imcsim.errors import ConfigError

__all__ = ["InputStats", "capture_input_stats", "output_error"]


@dataclass(frozen=True)
class InputStats:
    """Augmented second moments G = Σ x̃ x̃ᵀ of one layer's inputs (float64, (n+1)×(n+1))."""

    gram: torch.Tensor

    @property
    def count(self) -> float:
        """Input vectors seen (im2col patches or rows)."""
        return float(self.gram[-1, -1])

    @property
    def second(self) -> torch.Tensor:
        """Σ x xᵀ (n × n)."""
        return self.gram[:-1, :-1]

    @property
    def mean(self) -> torch.Tensor:
        """E[x] (n)."""
        return self.gram[:-1, -1] / self.count

    def block(self, start: int, stop: int) -> InputStats:
        """Statistics of the input entries ``start:stop`` (one input-split block)."""
        idx = torch.cat([torch.arange(start, stop), torch.tensor([self.gram.shape[0] - 1])])
        return InputStats(self.gram[idx][:, idx])


def _columns(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The layer's input vectors as the columns of (batch, n, positions) (im2col for a conv)."""
    if isinstance(module, nn.Conv2d):
        return F.unfold(x, module.kernel_size, dilation=module.dilation,
                        padding=module.padding, stride=module.stride)
    return x.reshape(1, -1, x.shape[-1]).transpose(1, 2)


def _augmented(cols: torch.Tensor) -> torch.Tensor:
    """Σ x̃ x̃ᵀ of the columns of ``cols`` (float64)."""
    n = cols.shape[1]
    flat = cols.permute(1, 0, 2).reshape(n, -1)
    gram = torch.zeros(n + 1, n + 1, dtype=torch.float64)
    gram[:n, :n] = (flat @ flat.T).double()
    gram[:n, n] = gram[n, :n] = flat.sum(dim=1, dtype=torch.float64)
    gram[n, n] = flat.shape[1]
    return gram


def capture_input_stats(
    model: nn.Module, names: Sequence[str], images: torch.Tensor, batch_size: int = 64
) -> dict[str, InputStats]:
    """``{name: InputStats}`` of the Conv2d/Linear modules ``names`` over ``images``.

    A module called several times per forward pass accumulates every call.
    """
    if len(images) == 0:
        raise ConfigError("calibration: no images")
    modules = dict(model.named_modules())
    missing = [n for n in names if n not in modules]
    if missing:
        raise ConfigError(f"calibration: no module named {missing[0]!r} in the model")
    grams: dict[str, torch.Tensor] = {}

    def visit(name: str, module: nn.Module, x: torch.Tensor) -> None:
        part = _augmented(_columns(module, x.detach().float()))
        grams[name] = grams[name] + part if name in grams else part

    targets = [(n, modules[n]) for n in names]
    for start in range(0, len(images), batch_size):
        _run_with_hooks(model, images[start:start + batch_size], targets, visit)
    return {n: InputStats(grams[n]) for n in names if n in grams}


def _run_with_hooks(model: nn.Module, inputs: torch.Tensor,
                    modules: list[tuple[str, nn.Module]],
                    visit: Callable[[str, nn.Module, torch.Tensor], None]) -> None:
    """Run ``inputs`` once (eval mode, no grad), calling ``visit(name, module, input)`` at
    every call of ``modules``; hooks removed and the training mode restored in ``finally``."""
    def hook(name: str):
        return lambda module, args, _out: visit(name, module, args[0])

    handles = [m.register_forward_hook(hook(n)) for n, m in modules]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(inputs)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()


def output_error(
    weight: torch.Tensor, approx: torch.Tensor, stats: InputStats,
    bias: torch.Tensor | None = None, approx_bias: torch.Tensor | None = None,
) -> float:
    """Relative output error ‖(W̃ − Ŵ̃) X̃‖_F / ‖W̃ X̃‖_F over the inputs of ``stats``.

    ``weight``/``approx`` are (C_out, n) matrices (conv weights folded to C_out × C_in·K²);
    biases default to zero.
    """
    rows = weight.shape[0]
    zero = torch.zeros(rows, dtype=torch.float64)
    w = torch.cat([weight.double(), (zero if bias is None else bias.double())[:, None]], dim=1)
    a = torch.cat([approx.double(), (zero if approx_bias is None else approx_bias.double())[:, None]],
                  dim=1)
    diff = w - a
    num = torch.einsum("ij,jk,ik->", diff, stats.gram, diff).clamp_min(0)
    den = torch.einsum("ij,jk,ik->", w, stats.gram, w).clamp_min(1e-300)
    return float((num / den).sqrt())
