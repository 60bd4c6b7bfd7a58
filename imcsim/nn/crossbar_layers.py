"""Crossbar layers of the registry's other module types (``imcsim.nn.ops``).

* ``CrossbarConv1d`` — a Conv1d is a 1×K convolution over a 1×L image.
* ``CrossbarConvTranspose2d`` — the arrays compute the 1×1 convolution C_in →
  C_out·K_h·K_w over the input (``LayerShape.conv_transpose2d``); the K_h·K_w partial
  outputs of every input pixel are overlap-added digitally (col2im, ``F.fold``) and the
  bias added after.
* ``CrossbarMatMul`` — an activation product A·B placed on crossbars: B is quantized to
  ``weight_bits`` (per matrix), sliced into cells and written; A is quantized to
  ``input_bits`` (per matrix) and applied in DAC slices; the reduction is cut every
  ``rows`` array rows and each row tile's column sums go through the ADC (fixed worst-case
  full scale) before the digital shift-and-add, as for a weight layer.  Device noise and
  faults of the rewritten cells are not modelled.  Ideal settings give ``torch.matmul``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from imcsim.nn import functional as xf
from imcsim.nn.crossbar_config import LayerSettings
from imcsim.nn.crossbar_conv import CrossbarConv2d
from imcsim.nn.devices import exact_float32
from imcsim.nn.tileplan import TilePlan

__all__ = ["CrossbarConv1d", "CrossbarConvTranspose2d", "CrossbarMatMul"]


class CrossbarConv1d(CrossbarConv2d):
    """A Conv1d on crossbar tiles: a 1×K convolution over (N, C, 1, L)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.unsqueeze(2)).squeeze(2)


class CrossbarConvTranspose2d(CrossbarConv2d):
    """A ConvTranspose2d on crossbar tiles: per-pixel MVM C_in → C_out·K², then col2im."""

    @classmethod
    def adopt(cls, module: nn.Module, conv: nn.Conv2d | nn.Linear, plan: TilePlan,
              settings: LayerSettings, mask: np.ndarray | None, layer_id: int,
              name: str = "") -> CrossbarConvTranspose2d:
        layer = cls(conv, plan, settings, mask, layer_id, name)
        layer.fold = {"kernel_size": tuple(module.kernel_size), "dilation": tuple(module.dilation),
                      "padding": tuple(module.padding), "stride": tuple(module.stride)}
        layer.output_padding = tuple(module.output_padding)
        layer.out_bias = None if module.bias is None else nn.Parameter(module.bias.detach().clone())
        return layer

    def _output_size(self, x: torch.Tensor) -> tuple[int, int]:
        f = self.fold
        return tuple(  # type: ignore[return-value]
            (i - 1) * s - 2 * p + d * (k - 1) + op + 1
            for i, s, p, d, k, op in zip(x.shape[-2:], f["stride"], f["padding"], f["dilation"],
                                          f["kernel_size"], self.output_padding))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        columns = super().forward(x)
        y = F.fold(columns.flatten(2), self._output_size(x), **self.fold)
        return y if self.out_bias is None else y + self.out_bias.view(1, -1, 1, 1)


class CrossbarMatMul(nn.Module):
    """``torch.matmul(a, b)`` of two activations computed with b written into crossbars."""

    def __init__(self, settings: LayerSettings, name: str = "") -> None:
        super().__init__()
        self.settings, self.name = settings, name

    def extra_repr(self) -> str:
        return f"{self.name!r}, {'ideal' if self.settings.ideal else 'written per input'}"

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        s = self.settings
        if s.ideal:
            return torch.matmul(a, b)
        with torch.no_grad(), exact_float32(a.device):  # integer sums: no TF32 on CUDA
            a_int, a_scale, signed = _quantize(a, s.input_bits, a.amin() < 0)
            b_int, b_scale, _ = _quantize(b, s.weight_bits, True)
            y = sum(self._tile(a_int[..., r:r + s.rows], b_int[..., r:r + s.rows, :], signed)
                    for r in range(0, a.shape[-1], s.rows))
            return y * a_scale * b_scale

    def _tile(self, a: torch.Tensor, b: torch.Tensor, signed: bool) -> torch.Tensor:
        """Σ over DAC and cell slices of the ADC-read column sums of one row tile."""
        s = self.settings
        if not s.sliced:
            full = s.rows * xf.qmax(s.input_bits, signed) * xf.qmax(s.weight_bits, True)
            return xf.adc(torch.matmul(a, b), full, s.adc_bits, True)
        x_slices, x_coef = xf.encode_inputs(a, s.input_bits, s.dac_bits, signed)
        cells, w_coef, offset = xf.encode_weights(b, s.weight_bits, s.cell_bits, s.sign)
        full = s.rows * (2**s.dac_bits - 1) * (2**s.cell_bits - 1)
        y = sum(xc * wc * xf.adc(torch.matmul(xs, cs), full, s.adc_bits, False)
                for xs, xc in zip(x_slices, x_coef) for cs, wc in zip(cells, w_coef))
        return y - offset * a.sum(dim=-1, keepdim=True) if offset else y


def _quantize(t: torch.Tensor, bits: int, signed: bool) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """Integers on a symmetric (or unsigned) grid with one scale per matrix."""
    top = xf.qmax(bits, bool(signed))
    amax = t.abs().amax(dim=(-2, -1), keepdim=True)
    scale = torch.where(amax > 0, amax / top, torch.ones_like(amax))
    return xf.quantize(t, scale, bits, bool(signed)), scale, bool(signed)
