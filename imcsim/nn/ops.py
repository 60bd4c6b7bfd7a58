"""The one registry of torch module types imcsim supports, used by every torch-side walker.

Capture (``imcsim.nn.capture``) finds every multiply-accumulate at the operator level,
whatever module issued it; this table says what imcsim can *do* with the modules that
own weights:

* ``weight`` — the module's weight in the *array form* its ``LayerShape`` describes,
  ``(out, in/groups, K_h, K_w)`` (pruning masks, nonzero masks, conversion);
* ``as_conv`` — an equivalent ``nn.Conv2d``/``nn.Linear`` holding that array-form weight,
  which the crossbar layers are built from;
* ``crossbar`` — the crossbar class that replaces the module in ``to_crossbar``
  (``None``: the module stays in float and ``to_crossbar`` says so);
* ``factorizable`` / ``prunable`` — whether low-rank factorisation and pruning take it.

Module types are matched by class (subclasses included) or, for optional packages that
must not be imported here, by ``module.qualname`` (transformers' ``Conv1D``).
``register_module`` adds a type; a duplicate is refused.  ``DIGITAL`` lists modules that
hold weights but compute no multiply-accumulate (norms, embeddings: digital periphery).

``as_nchw`` presents a captured activation to the cycle simulator as (N, C, H, W) in
the layout the layer's ``LayerShape`` describes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from imcsim.errors import ConfigError

__all__ = [
    "DIGITAL", "FUNCTIONAL_PARENTS", "MatMul", "ModuleEntry", "as_nchw", "module_entry",
    "register_module", "set_array_weight", "weight_modules",
]


class MatMul(nn.Module):
    """``torch.matmul(a, b)`` of two activations as a module, so that a model's activation
    products (QKᵀ, A·V) have a name and ``to_crossbar`` can place them on the chip."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.matmul(a, b)


@dataclass(frozen=True)
class ModuleEntry:
    """What imcsim does with one supported module type (see the module docstring)."""

    kind: str
    weight: Callable[[nn.Module], torch.Tensor]
    as_conv: Callable[[nn.Module], nn.Module]
    crossbar: str | None
    """Name of the crossbar class in ``imcsim.nn.crossbar`` (``None``: stays float)."""
    from_array: Callable[[nn.Module, torch.Tensor], torch.Tensor] | None = None
    """Array-form weight → the module's own weight layout (``None``: a plain reshape)."""
    factorizable: bool = False
    prunable: bool = True


def _conv_weight(m: nn.Module) -> torch.Tensor:
    return m.weight


def _linear_weight(m: nn.Module) -> torch.Tensor:
    return m.weight.reshape(*m.weight.shape, 1, 1)


def _conv1d_weight(m: nn.Module) -> torch.Tensor:
    return m.weight.unsqueeze(2)


def transposed_weight(weight: torch.Tensor, groups: int) -> torch.Tensor:
    """ConvTranspose2d weight (C_in, C_out/g, K_h, K_w) → array form (C_out·K_h·K_w, C_in/g, 1, 1):
    output column (f, ky, kx) of group j holds W[c, f − j·C_out/g, ky, kx] on input row c."""
    c_in, out_g, kh, kw = weight.shape
    per_group = weight.reshape(groups, c_in // groups, out_g * kh * kw)
    return per_group.permute(0, 2, 1).reshape(groups * out_g * kh * kw, c_in // groups, 1, 1)


def _transposed_from_array(m: nn.Module, w: torch.Tensor) -> torch.Tensor:
    c_in, out_g, kh, kw = m.weight.shape
    g = m.groups
    return w.reshape(g, out_g * kh * kw, c_in // g).permute(0, 2, 1).reshape(c_in, out_g, kh, kw)


def _hf_from_array(m: nn.Module, w: torch.Tensor) -> torch.Tensor:
    return w.reshape(m.weight.shape[1], m.weight.shape[0]).t()


def set_array_weight(module: nn.Module, weight: torch.Tensor) -> None:
    """Write an array-form weight back into ``module`` (into ``weight_orig`` when pruned)."""
    entry = module_entry(module)
    if entry is None:
        raise ConfigError(f"{type(module).__name__} is not a supported weight module")
    target = getattr(module, "weight_orig", module.weight)
    value = entry.from_array(module, weight) if entry.from_array else weight.reshape(target.shape)
    with torch.no_grad():
        target.copy_(value)


def _hf_conv1d_weight(m: nn.Module) -> torch.Tensor:
    return m.weight.t().reshape(m.weight.shape[1], m.weight.shape[0], 1, 1)


def _same(m: nn.Module) -> nn.Module:
    return m


def _linear_from(weight: torch.Tensor, bias: torch.Tensor | None) -> nn.Linear:
    fc = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
    with torch.no_grad():
        fc.weight.copy_(weight)
        if bias is not None:
            fc.bias.copy_(bias)
    return fc.to(weight.dtype)


def _conv1d_as_conv(m: nn.Conv1d) -> nn.Conv2d:
    conv = nn.Conv2d(m.in_channels, m.out_channels, (1, m.kernel_size[0]),
                     stride=(1, m.stride[0]), padding=(0, _int_padding(m)[0]),
                     dilation=(1, m.dilation[0]), groups=m.groups, bias=m.bias is not None)
    with torch.no_grad():
        conv.weight.copy_(_conv1d_weight(m))
        if m.bias is not None:
            conv.bias.copy_(m.bias)
    return conv.to(m.weight.dtype)


def _transposed_as_conv(m: nn.ConvTranspose2d) -> nn.Conv2d:
    """The 1×1 convolution C_in → C_out·K_h·K_w the arrays compute (bias added after col2im)."""
    kh, kw = m.kernel_size
    conv = nn.Conv2d(m.in_channels, m.out_channels * kh * kw, 1, groups=m.groups, bias=False)
    with torch.no_grad():
        conv.weight.copy_(transposed_weight(m.weight, m.groups))
    return conv.to(m.weight.dtype)


def _hf_conv1d_as_linear(m: nn.Module) -> nn.Linear:
    return _linear_from(m.weight.t(), m.bias)


def _int_padding(m: nn.Module) -> tuple[int, ...]:
    if isinstance(m.padding, str) or getattr(m, "padding_mode", "zeros") != "zeros":
        raise ConfigError(
            f"{type(m).__name__} with padding={m.padding!r}, padding_mode="
            f"{getattr(m, 'padding_mode', 'zeros')!r} has no crossbar layer yet"
        )
    return tuple(m.padding)


_BY_CLASS: dict[type[nn.Module], ModuleEntry] = {}
_BY_NAME: dict[str, ModuleEntry] = {}


def register_module(cls: type[nn.Module] | str, entry: ModuleEntry) -> None:
    """Support a module type (a class, or ``"package.module.QualName"``); duplicates refused."""
    table: dict = _BY_NAME if isinstance(cls, str) else _BY_CLASS
    if cls in table:
        raise ConfigError(f"module type {cls!r} is already registered")
    table[cls] = entry


def module_entry(module: nn.Module) -> ModuleEntry | None:
    """The registry entry of ``module``'s type (nearest registered base class), or ``None``."""
    for cls in type(module).__mro__:
        if cls in _BY_CLASS:
            return _BY_CLASS[cls]
        name = f"{cls.__module__}.{cls.__qualname__}"
        if name in _BY_NAME:
            return _BY_NAME[name]
    return None


def weight_modules(
    model: nn.Module, *, where: Callable[[ModuleEntry, nn.Module], bool] | None = None
) -> Iterator[tuple[str, nn.Module, ModuleEntry]]:
    """``(qualified name, module, entry)`` of every supported weight module of ``model``
    (``where`` filters), in ``named_modules`` order."""
    for name, module in model.named_modules():
        entry = module_entry(module)
        if entry is not None and (where is None or where(entry, module)):
            yield name, module, entry


register_module(nn.Conv2d, ModuleEntry("conv2d", _conv_weight, _same, "CrossbarConv2d",
                                       factorizable=True))
register_module(nn.Linear, ModuleEntry("linear", _linear_weight, _same, "CrossbarLinear",
                                       factorizable=True))
register_module(nn.Conv1d, ModuleEntry("conv1d", _conv1d_weight, _conv1d_as_conv,
                                       "CrossbarConv1d", prunable=False))
register_module(nn.ConvTranspose2d, ModuleEntry(
    "conv_transpose2d", lambda m: transposed_weight(m.weight, m.groups), _transposed_as_conv,
    "CrossbarConvTranspose2d", _transposed_from_array, prunable=False))
register_module("transformers.pytorch_utils.Conv1D", ModuleEntry(
    "linear", _hf_conv1d_weight, _hf_conv1d_as_linear, "CrossbarLinear", _hf_from_array,
    prunable=False))
register_module(nn.RNNBase, ModuleEntry("rnn", _conv_weight, _same, None, prunable=False))
register_module(MatMul, ModuleEntry("matmul", _conv_weight, _same, "CrossbarMatMul",
                                    prunable=False))

DIGITAL: tuple[type[nn.Module], ...] = (
    nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm, nn.Embedding,
    nn.EmbeddingBag, nn.PReLU,
)
"""Modules whose weights are applied element-wise or looked up, not multiplied-accumulated."""

FUNCTIONAL_PARENTS: tuple[type[nn.Module], ...] = (nn.MultiheadAttention,)
"""Modules that read their children's weights through ``F.linear`` instead of calling
them (``nn.MultiheadAttention.out_proj``): the children cannot be swapped for crossbar
layers, so ``to_crossbar`` leaves them in float and says so."""


def _tokens(x: torch.Tensor, batch: int) -> torch.Tensor:
    """(…, F) rows → (batch, F, 1, rows/batch): the 1×tokens image of a Linear."""
    rows = x.reshape(batch, -1, x.shape[-1])
    return rows.transpose(1, 2).unsqueeze(2)


_NCHW: dict[str, Callable[[torch.Tensor, int], torch.Tensor]] = {
    "conv2d": lambda x, _b: x,
    "conv_transpose2d": lambda x, _b: x,
    "conv1d": lambda x, _b: x.unsqueeze(2),
    "linear": _tokens,
    "rnn": _tokens,
    "matmul": _tokens,
}


def as_nchw(kind: str, x: torch.Tensor, batch: int) -> np.ndarray:
    """A captured activation as numpy (N, C, H, W) in the layout of its ``LayerShape``:
    a conv input as is, a Conv1d input as one row, a Linear's (…, F) rows as
    (N, F, 1, tokens) with N = ``batch`` examples."""
    return _NCHW[kind](x.detach().float().cpu(), batch).numpy()
