"""The crossbar layer itself: :class:`CrossbarConv2d` (and :class:`CrossbarLinear`), the
module ``imcsim.nn.crossbar.to_crossbar`` puts in place of a Conv2d / Linear.  It turns its
weights into programmed cells, quantizes its inputs, runs the tiled MVM
(``imcsim.nn.mvm``) chunk by chunk, and applies the ADC and the non-idealities.

Devices: the layer computes on the device of its parameters.  ``module.to(device)`` moves
its parameters and buffers and, through :meth:`CrossbarConv2d._apply`, the index tensors
of its layout and column map (once per layer, never per tile or per call); the cached
cells and ADC transfer function are rebuilt there on the next forward pass.  Seeded random
draws (programming noise, faults, drift, read noise, ADC deviations) come from CPU
generators and are moved to the layer's device once per draw, so the random numbers are
the same on every device (``docs/guide/gpu.md``).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from imcsim.nn import device_models  # noqa: F401  (registers drift, IR drop, ADC deviations)
from imcsim.nn import functional as xf
from imcsim.nn.adc import AdcCounts, adc_step, build_column_map, convert, transfer_function
from imcsim.nn.crossbar_config import LayerSettings
from imcsim.nn.mvm import (
    Cells,
    InputSlices,
    build_layout,
    keep_packed,
    make_cells,
    per_image,
    tiled_conv,
)
from imcsim.nn.nonideal import CellContext, ReadContext, build_nonidealities, mixed_seed
from imcsim.nn.tileplan import TilePlan

__all__ = ["CrossbarConv2d", "CrossbarLinear"]


class CrossbarConv2d(nn.Module):
    """A Conv2d mapped on crossbar tiles (see the module docstring)."""

    def __init__(self, conv: nn.Conv2d | nn.Linear, plan: TilePlan, settings: LayerSettings,
                 mask: np.ndarray | None, layer_id: int, name: str = "") -> None:
        super().__init__()
        weight = conv.weight.detach()
        weight = weight.view(*weight.shape, 1, 1) if weight.dim() == 2 else weight
        keep = torch.from_numpy(plan.on_chip if mask is None else plan.on_chip & mask)
        device, weight = weight.device, weight.cpu()  # cpu-only: built here, moved at the end
        self.name, self.settings, self.layer_id = name, settings, layer_id
        self.weight = nn.Parameter(weight * keep)
        self.bias = None if conv.bias is None else nn.Parameter(conv.bias.detach().clone())
        for key, default in (("stride", (1, 1)), ("padding", (0, 0)), ("dilation", (1, 1))):
            setattr(self, key, tuple(getattr(conv, key, default)))
        self.groups = getattr(conv, "groups", 1)
        self.register_buffer("weight_mask", keep)  # bool: a quarter of a float mask
        index = _compact(plan.weight_index, np.int32)
        self.register_buffer("weight_index", torch.from_numpy(index))
        self.register_buffer("input_max", torch.zeros((), dtype=weight.dtype))
        self.register_buffer("input_signed", torch.zeros((), dtype=torch.bool))
        self.columns = build_column_map(plan, self._weight_slices(), settings.cols_per_weight,
                                        max(settings.cols, 1), max(settings.cols_per_adc, 1))
        scales = () if settings.adc_scope == "layer" else (self.columns.tiles,)
        self.register_buffer("adc_full_scale", torch.full(scales, self._fixed_full_scale(),
                                                          dtype=weight.dtype))
        self.register_buffer("reads", torch.zeros((), dtype=torch.int64))
        for key in ("row_position", "col_position", "tile_position", "channels"):  # placement
            small = key != "channels"  # one entry per cell: int16 when it fits
            value = getattr(plan, key)
            self.register_buffer(key, torch.from_numpy(_compact(value) if small else value),
                                 persistent=False)
        self.nonideal = build_nonidealities(settings)
        self._readers = tuple(n for n in self.nonideal if n.reads)
        self.layout = build_layout(plan, weight.shape[1] * self.groups, tuple(weight.shape[-2:]),
                              self.stride, self.padding, self.dilation)
        # calibration pass (imcsim.nn.calibration): "" off, "inputs" / "bits" float passes
        # (input ranges / input slice statistics), "adc" (ADC bypassed, sums observed)
        self.calibrating = ""
        self.observer: Callable | None = None
        self.adc_counts = AdcCounts()
        self.calibration_info = None  # CalibrationInfo of the last calibration
        self._cells_cache: tuple[tuple[int, int, bool], Cells] | None = None
        self._converter: tuple[Callable | None] | None = None
        self.to(device)

    def _apply(self, fn, recurse=True):  # noqa: ANN001 (torch.nn.Module's signature)
        """``nn.Module._apply`` (``.to``, ``.cuda``, ``.double`` …) that also moves the
        layout's and column map's index tensors and drops what was built on the old device."""
        super()._apply(fn, recurse)
        device = self.weight.device
        self.layout, self.columns = self.layout.to(device), self.columns.to(device)
        self._cells_cache, self._converter = None, None
        return self

    def _weight_slices(self) -> int:
        s = self.settings
        if s.ideal or not s.sliced:
            return 1
        return math.ceil(s.weight_bits / s.cell_bits) * (2 if s.sign == "differential" else 1)

    @classmethod
    def adopt(cls, module: nn.Module, conv: nn.Conv2d | nn.Linear, plan: TilePlan,
              settings: LayerSettings, mask: np.ndarray | None, layer_id: int,
              name: str = "") -> CrossbarConv2d:
        """The crossbar layer replacing ``module`` (``conv``: its array form)."""
        return cls(conv, plan, settings, mask, layer_id, name)

    def _fixed_full_scale(self) -> float:
        """Worst case of one column: every array row at the top input level and conductance."""
        s = self.settings
        if s.sliced:
            return s.rows * (2**s.dac_bits - 1) * (2**s.cell_bits - 1)
        return s.rows * xf.qmax(s.input_bits, False) * xf.qmax(s.weight_bits, True)

    def extra_repr(self) -> str:
        s, lay = self.settings, self.layout
        mode = "ideal" if s.ideal else (
            f"w{s.weight_bits}/c{s.cell_bits} {s.sign}, in{s.input_bits}/dac{s.dac_bits}, "
            f"adc{s.adc_bits} ({s.adc_range}), slicing={'full' if s.sliced else 'none'}"
        )
        return f"{self.name!r}, window={lay.window}, row_tiles={lay.slots}, {mode}"

    # -- weights → cells -------------------------------------------------------------------
    def cells(self, at_t0: bool | None = None) -> Cells:
        """The programmed cells (quantized, sliced, non-ideal), cached while the weight is
        unchanged.  At t₀ (``at_t0``; by default while calibrating) time-dependent effects
        (drift) are left out: the ADC ranges are set at programming time."""
        at_t0 = bool(self.calibrating) if at_t0 is None else at_t0
        key = (self.weight._version, self.weight.data_ptr(), at_t0)
        if self._cells_cache is None or self._cells_cache[0] != key:
            with torch.no_grad():
                self._cells_cache = (key, self._compute_cells(self.weight * self.weight_mask,
                                                              at_t0))
        return self._cells_cache[1]

    def _compute_cells(self, w: torch.Tensor, at_t0: bool = False) -> Cells:
        s = self.settings
        one = torch.ones((), dtype=w.dtype, device=w.device)
        if s.ideal:
            scale, q = one, w
        else:
            scale = w.abs().max() / xf.qmax(s.weight_bits, True)
            scale = torch.where(scale > 0, scale, one)
            q = xf.quantize(w, scale, s.weight_bits, True)
        flat = torch.cat([q.reshape(-1), q.new_zeros(1)])
        real = (self.weight_index < flat.numel() - 1).to(w.dtype)
        blocks = flat[self.weight_index]
        del q, flat  # peak memory: the cells of the largest layer are built here
        if s.sliced and not s.ideal:
            cells, coef, offset = xf.encode_weights(blocks, s.weight_bits, s.cell_bits, s.sign)
            top = 2**s.cell_bits - 1
        else:
            cells, coef, offset = blocks.unsqueeze(0), one.view(1), 0.0
            top = xf.qmax(s.weight_bits, True)
        cells = cells.mul_(real)  # a fresh tensor either way
        gain = 1.0
        for effect in self.nonideal:
            if effect.time_dependent and at_t0:
                continue
            ctx = CellContext(real=real, top=top, row=self.row_position.long(),
                              col=self.col_position.long(), tile=self.tile_position.long(),
                              coef=coef,  # cpu-only: seeded draws, the same on every device
                              generator=torch.Generator(device="cpu").manual_seed(mixed_seed(
                                  s.seed, self.layer_id, 0, zlib.crc32(effect.name.encode()))))
            before, cells = cells, effect.program(cells, ctx)
            gain *= effect.gain(before, cells, ctx)
        rows = real[:, :, :, :1] if offset else None
        return make_cells(cells.permute(1, 2, 3, 4, 0, 5), coef, offset, scale, rows,
                          self.layout, gain)

    # -- inputs ------------------------------------------------------------------------------
    def _quantize_input(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, bool]:
        """(integer inputs, scale broadcastable to the output, signed?)."""
        s = self.settings
        if s.ideal:
            return x, torch.ones((), dtype=x.dtype, device=x.device), False
        flat = per_image(x.detach())
        low, high = flat.amin(dim=1), flat.amax(dim=1)  # (aminmax is ~10x slower on CPU)
        signed = bool(self.input_signed) or bool(low.min() < 0)
        top = xf.qmax(s.input_bits, signed)
        if s.input_range == "calibrated" and self.calibrating != "inputs":
            amax = self.input_max.expand(x.shape[0])
        else:
            amax = torch.maximum(low.abs(), high)
        if self.calibrating == "inputs":
            self.input_max.copy_(torch.maximum(self.input_max, amax.max()))
            self.input_signed |= signed
        scale = torch.where(amax > 0, amax / top, torch.ones_like(amax)).view(-1, 1, 1, 1)
        return xf.quantize(x, scale, s.input_bits, signed), scale, signed

    # -- the MVM -------------------------------------------------------------------------------
    def _adc(self, v: torch.Tensor, copy: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """ADC codes of copy ``copy``'s partial sums ``v`` (in place) and the step that turns
        codes into values (``None``: per-tile steps, ``v`` returned in integer units)."""
        s = self.settings
        if s.ideal or self.calibrating:  # ADC bypassed; the digital gain still applies
            if self.observer is not None:
                self.observer(self, v, copy)
            gain = 1.0 if s.ideal else self.cells().gain
            return (v if gain == 1.0 else v.mul_(gain)), None
        step = adc_step(self.adc_full_scale, s.adc_bits, not s.sliced, s.adc_step == "unit")
        gain = self.cells().gain
        clip = s.adc_range == "calibrated" or any(n.may_exceed_range for n in self.nonideal)
        transfer = self._transfer()
        convert_copy = None if transfer is None else (lambda t: transfer(t, copy))
        if step.dim() == 0:
            v = convert(v, step, s.adc_bits, not s.sliced, clip, self.adc_counts, convert_copy)
            return v, (step * gain).to(v.dtype)
        cols = step[self.columns.tile[copy].clamp(min=0)]
        v = convert(v, cols, s.adc_bits, not s.sliced, clip, self.adc_counts, convert_copy)
        return v.mul_((cols * gain).to(v.dtype)), None

    def _transfer(self) -> Callable | None:
        """The ADC transfer function a non-ideality provides (built once), or None."""
        if self._converter is None:
            self._converter = (transfer_function(self.nonideal, self.columns, self.settings,
                                                 self.layer_id, self.name),)
        return self._converter[0]

    def _read(self, v: torch.Tensor, spread: Callable[[], torch.Tensor]) -> torch.Tensor:
        """Every read-time non-ideality on the analog column sums ``v`` of one MVM."""
        self.reads += 1
        # cpu-only: seeded draws on the CPU (the same numbers on every device), moved once
        ctx = ReadContext(spread=spread, generator=torch.Generator(device="cpu").manual_seed(
            mixed_seed(self.settings.seed, self.layer_id, int(self.reads))))
        for effect in self._readers:
            v = effect.read(v, ctx)
        return v

    def _chunk(self, x: torch.Tensor, signed: bool) -> int:
        """Images per chunk so one copy's partial-sum tensor stays under the memory bound."""
        s, lay = self.settings, self.layout
        bits = s.input_bits - 1 if signed else s.input_bits
        n_x = 1 if s.ideal or not s.sliced else (2 if signed else 1) * -(-bits // s.dac_bits)
        out = xf.output_size(tuple(x.shape[-2:]), lay.kernel, lay.stride, lay.padding,
                             lay.dilation)
        positions = -(-out[0] // lay.window[0]) * -(-out[1] // lay.window[1])
        per_image = self.cells().weights[0].shape[0] * n_x * positions
        return max(1, s.max_block_elements // max(per_image, 1))

    def _mvm(self, x: torch.Tensor, signed: bool) -> torch.Tensor:
        s = self.settings
        if s.ideal:
            inputs = InputSlices.whole(None, signed, x.dtype, x.device)
        elif s.sliced:
            inputs = InputSlices.sliced(s.input_bits, s.dac_bits, signed, x.dtype, x.device)
        else:
            inputs = InputSlices.whole(xf.qmax(s.input_bits, signed), signed, x.dtype,
                                       x.device)
        analog = self._read if self._readers else None
        y, lsb = tiled_conv(x, inputs, self.cells(), self.layout, self._adc, analog)
        return y if lsb is None else y.mul_(lsb)

    def simulate(self, x: torch.Tensor) -> torch.Tensor:
        """The chip's output for a 4-D input (no autograd)."""
        with torch.no_grad():
            if self.calibrating in ("inputs", "bits"):  # float pass, statistics only
                xq, _, signed = self._quantize_input(x)
                if self.observer is not None:
                    self.observer(self, xq, signed)
                return F.conv2d(x, self.weight * self.weight_mask, self.bias, self.stride,
                                self.padding, self.dilation, self.groups)
            xq, x_scale, signed = self._quantize_input(x)
            step = self._chunk(x, signed)
            with keep_packed(self.cells()):  # int8 weights packed once for all chunks
                y = self._mvm(xq[:step], signed)
                if step < len(x):  # chunks written into the output (no list + cat: memory)
                    first, y = y, torch.empty((len(x), *y.shape[1:]), dtype=y.dtype,
                                              device=y.device,
                                              memory_format=torch.channels_last)
                    y[:step] = first
                    for i in range(step, len(x), step):
                        y[i : i + step] = self._mvm(xq[i : i + step], signed)
            y = y.mul_(self.cells().scale * x_scale)
            return y if self.bias is None else y.add_(self.bias.view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.simulate(x)
        if torch.is_grad_enabled() and self.training and self.weight.requires_grad:
            exact = F.conv2d(x, self.weight * self.weight_mask, self.bias, self.stride,
                             self.padding, self.dilation, self.groups)
            return exact + (y - exact).detach()
        return y


def _compact(index: np.ndarray, smallest: type = np.int16) -> np.ndarray:
    """``index`` in the smallest integer type from ``smallest`` up that holds it (int64
    index buffers of a large network take several times the memory of its weights)."""
    for dtype in (np.int16, np.int32)[(np.int16, np.int32).index(smallest):]:
        info = np.iinfo(dtype)
        if index.size == 0 or (index.min() >= info.min and index.max() <= info.max):
            return index.astype(dtype)
    return index


class CrossbarLinear(CrossbarConv2d):
    """A Linear layer on crossbar tiles: a 1×1 convolution over its positions (tokens)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        n = lead[0] if len(lead) else 1
        x4 = x.reshape(n, -1, x.shape[-1]).transpose(1, 2).unsqueeze(2)
        y = super().forward(x4)
        return y.squeeze(2).transpose(1, 2).reshape(*lead, -1)
