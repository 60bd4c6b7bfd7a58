"""The tiled MVM of one layer: per window copy, one strided grouped convolution computes the
column partial sums of every (class, row-tile slot) block and every weight slice; then the
ADC, shift-and-add, offset removal and the digital sum over row tiles.  Tensors stay
channels-last (oneDNN's fast layout).

Exact shortcuts, each with the condition under which it runs (else the plain path):

* **Integer convolutions** run when every programmed cell is an integer level int8 holds
  (quantized, sliced weights, stuck-at faults included; not with programming noise or
  any other non-integer ``program`` hook), the inputs are unsigned integer slices of at
  most 8 bits (bit-serial slices, or whole unsigned inputs of at most 8 bits), every
  partial sum is bounded below 2^24 (``rows · x_max · |cell|_max``) and ``2 · x_max ·
  |cell|_max < 2^15`` (exact int16 pair sums on CPUs without VNNI).  The block
  convolutions, channel gathers and offset rows then run as oneDNN u8×s8 convolutions
  with int32 sums and float output: the same integers the float convolution gives, about
  3× faster, with int8 cells (a quarter of the memory).  ``int8_available()`` checks once
  that the op exists and is exact on this machine.
* **Streaming** (integer path, no read-time non-ideality): input slices are cut from the
  integer input on demand and the partial sums are computed for a group of slices and a
  band of output rows at a time, sized to stay under :data:`GROUP_ELEMENTS`; each
  group's ADC codes are shift-and-added into the output before the next: the full
  (slices × tiles × columns × positions) tensor of partial sums never exists.  With a
  read-time non-ideality, or on the float path, every slice and row goes in one call, so
  the ``analog`` hook sees the same tensor and draws the same random numbers as before.
* **Shift-and-add as two GEMVs** (weight slices, then the group's input slices): on
  integer ADC codes exact in any order below 2^24.

All of them give bit-identical outputs (``tests/test_mvm_paths.py`` checks every
combination against the tile-by-tile reference and against the float path).  With the ADC
bypassed (the ideal chip, calibration passes) and non-integer cells, sums of non-integers
may differ in the last bit from the former block-diagonal GEMM (summation order).
"""

from __future__ import annotations

import functools
import platform
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from imcsim.nn import functional as xf
from imcsim.nn.tileplan import TilePlan

__all__ = ["Cells", "InputSlices", "Layout", "build_layout", "int8_available", "keep_packed",
           "make_cells", "per_image", "tiled_conv"]

Pair = tuple[int, int]
Adc = Callable[[torch.Tensor, int], tuple[torch.Tensor, torch.Tensor | None]]
Analog = Callable[[torch.Tensor, Callable[[], torch.Tensor]], torch.Tensor]

_EXACT_SUM = 2**24
"""Every integer below this is a float32: integer partial sums stay exact in any order."""
_PAIR_SUM = 2**15
"""int8 kernels without VNNI add pairs of u8·s8 products in saturating int16."""
GROUP_ELEMENTS = 2**19
"""Partial sums computed per streamed group of input slices (a cache-sized block)."""


@dataclass(frozen=True)
class Packed:
    """oneDNN-prepacked int8 weights of one integer convolution."""

    weight: torch.Tensor
    scales: torch.Tensor
    zero_points: torch.Tensor


@dataclass(frozen=True)
class Cells:
    """A layer's programmed array contents, ready for the grouped convolutions."""

    weights: list[torch.Tensor]
    """Per copy: (K·R·F·S_w, C, K_h, K_w) cell values, block-major, weight slice innermost;
    int8 when every cell is an integer level that int8 holds, else floating point."""
    presence: list[torch.Tensor] | None
    """Per copy: (K·R, C, K_h, K_w) 0/1 weight rows of each block (offset encoding only)."""
    w_coef: torch.Tensor
    """(S_w,) shift-and-add coefficients of the weight slices."""
    offset: float
    scale: torch.Tensor
    """Weight quantization step."""
    gain: float = 1.0
    """Digital gain on the column sums (non-idealities' ``gain`` hooks, e.g. drift
    compensation): applied with the ADC step, before the offset correction."""
    cell_max: float = 0.0
    """Largest |cell| (bounds the integer partial sums)."""
    scratch: dict = field(default_factory=dict, repr=False, compare=False)
    """Prepacked int8 weights while :func:`keep_packed` is active (else empty)."""

    @property
    def integer(self) -> bool:
        """Are the cells int8 levels (the integer convolutions may run)?"""
        return self.weights[0].dtype == torch.int8


@dataclass(frozen=True)
class InputSlices:
    """How a layer applies its inputs: bit-serial DAC slices of their magnitudes or whole."""

    coef: torch.Tensor
    """(S_x,) shift-and-add coefficient of each slice (the negative pass of signed inputs
    has negative coefficients)."""
    bits: int
    """Bits per slice (``dac_bits``); 0: the inputs are applied whole, as one slice."""
    count: int
    """Slices per sign pass."""
    signed: bool
    top: int | None
    """Largest slice value; ``None`` for real-valued inputs (the ideal chip)."""

    @classmethod
    def sliced(cls, input_bits: int, dac_bits: int, signed: bool,
               dtype: torch.dtype) -> InputSlices:
        count, coef = xf.input_slicing(input_bits, dac_bits, signed, dtype)
        return cls(coef=coef, bits=dac_bits, count=count, signed=signed, top=2**dac_bits - 1)

    @classmethod
    def whole(cls, top: int | None, signed: bool, dtype: torch.dtype) -> InputSlices:
        return cls(coef=torch.ones(1, dtype=dtype), bits=0, count=1, signed=signed, top=top)


@dataclass(frozen=True)
class Layout:
    """Geometry and block structure of one mapped layer."""

    kernel: Pair
    stride: Pair
    padding: Pair
    dilation: Pair
    window: Pair
    classes: int
    slots: int
    selectors: tuple[torch.Tensor | None, ...]
    """Per copy: (K·R·C, C_in, 1, 1) one-hot 1×1 conv that gathers the blocks' input
    channels (a GEMM, exact, and far faster than indexing a channels-last tensor), or
    ``None`` when the blocks read channels 0..C_in−1 in order."""
    inverse: torch.Tensor
    """(A, C_out) position of every filter among a copy's K·F class members."""
    select: tuple[bool, ...]
    """Per copy: does the output need reordering (False: members are the filters in order)."""
    pads_output: bool

    @property
    def step(self) -> Pair:
        """Stride of one copy's convolution: the window advances by a whole window."""
        return (self.window[0] * self.stride[0], self.window[1] * self.stride[1])

    @property
    def conv_padding(self) -> Pair:
        """Padding left to the convolution (window copies get an explicitly padded input)."""
        return self.padding if self.window == (1, 1) else (0, 0)


# ---------------------------------------------------------------- cells
@functools.cache
def int8_available() -> bool:
    """Do oneDNN's int8 convolutions run here and return exact integer sums?  (Checked once
    on a small case against the float convolution; x86-64 builds with oneDNN only.)"""
    if platform.machine().lower() not in ("x86_64", "amd64") or \
            not torch.backends.mkldnn.is_available():
        return False
    try:
        gen = torch.Generator().manual_seed(0)
        w = torch.randint(-3, 4, (8, 3, 3, 3), generator=gen, dtype=torch.int8)
        x = torch.randint(0, 4, (2, 6, 7, 7), generator=gen, dtype=torch.uint8)
        packed = _pack(w, (1, 2), (1, 1), (1, 1), 2)
        got = _qconv(x, packed, (1, 2), (1, 1), (1, 1), 2, torch.float32)
        return torch.equal(got, F.conv2d(x.float(), w.float(), None, (1, 2), 1, 1, 2))
    except (RuntimeError, AttributeError):  # op missing or unsupported on this CPU
        return False


def _pack(w: torch.Tensor, stride: Pair, padding: Pair, dilation: Pair, groups: int) -> Packed:
    w = w.contiguous(memory_format=torch.channels_last)
    ones = torch.ones(w.shape[0])
    packed = torch.ops.onednn.qconv_prepack(w, ones, 1.0, 0, list(stride), list(padding),
                                            list(dilation), groups, None)
    return Packed(packed, ones, torch.zeros(w.shape[0], dtype=torch.int64))


def _qconv(x: torch.Tensor, p: Packed, stride: Pair, padding: Pair, dilation: Pair,
           groups: int, out_dtype: torch.dtype | None) -> torch.Tensor:
    """u8 × s8 convolution, int32 sums, output ``out_dtype`` (None: u8, exact for 0..255)."""
    return torch.ops.onednn.qconv2d_pointwise(
        x, 1.0, 0, p.weight, p.scales, p.zero_points, None, list(stride), list(padding),
        list(dilation), groups, 1.0, 0, out_dtype, "none", [], "")


def make_cells(cells: torch.Tensor, coef: torch.Tensor, offset: float, scale: torch.Tensor,
               rows: torch.Tensor | None, layout: Layout, gain: float = 1.0) -> Cells:
    """Cells ``(A, K, R, F, S_w, C·K_h·K_w)`` → per-copy convolution weights; int8 and
    prepacked when every cell is an integer level that int8 holds.  ``rows`` (A, K, R, 1,
    C·K_h·K_w): 0/1 weight rows of each block, for the offset encoding (else ``None``)."""
    cell_max = max(float(cells.max()), -float(cells.min())) if cells.numel() else 0.0
    # one weight slice at a time and before the layout copies: no full-size float temporary
    if cell_max <= 127 and all(torch.equal(c, c.round()) for c in cells.unbind(4)) \
            and int8_available():
        cells = cells.to(torch.int8)
    presence = _as_conv(rows, layout.kernel) if rows is not None else None
    return Cells(weights=_as_conv(cells, layout.kernel), presence=presence, w_coef=coef,
                 offset=offset, scale=scale, gain=gain, cell_max=cell_max)


@contextmanager
def keep_packed(cells: Cells) -> Iterator[None]:
    """Within the block, :func:`tiled_conv` prepacks the int8 weights once and reuses them
    for every call (the chunks of one forward pass); they are dropped on exit (memory)."""
    cells.scratch["keep"] = True
    try:
        yield
    finally:
        cells.scratch.clear()


def _as_conv(cells: torch.Tensor, kernel: Pair) -> list[torch.Tensor]:
    """(A, K, R, F, [S_w,] C·kk) → per copy (K·R·F·S_w, C, K_h, K_w) channels-last weights."""
    kh, kw = kernel
    conv = cells.reshape(cells.shape[0], -1, cells.shape[-1] // (kh * kw), kh, kw)
    return [c.contiguous(memory_format=torch.channels_last) for c in conv]


def _integer_path(cells: Cells, inputs: InputSlices, lay: Layout) -> bool:
    """Can the block convolutions run in int8 and give the float path's exact sums?"""
    if not cells.integer or inputs.top is None or inputs.top > 255:
        return False
    if inputs.bits == 0 and inputs.signed:  # whole signed inputs: not u8
        return False
    rows = cells.weights[0].shape[1] * lay.kernel[0] * lay.kernel[1]
    return (rows * inputs.top * cells.cell_max < _EXACT_SUM
            and 2 * inputs.top * cells.cell_max < _PAIR_SUM)


# ---------------------------------------------------------------- inputs
def _padded(x: torch.Tensor, lay: Layout) -> tuple[torch.Tensor, Pair, Pair]:
    """(channels-last input padded for the window copies, output, blocks)."""
    if lay.window == (1, 1):
        out = xf.output_size(tuple(x.shape[-2:]), lay.kernel, lay.stride, lay.padding,
                             lay.dilation)
        xp, blocks = x, out
    else:
        xp, out, blocks = xf.pad_for_copies(x, lay.kernel, lay.stride, lay.padding,
                                            lay.dilation, lay.window)
    return xp.contiguous(memory_format=torch.channels_last), out, blocks


class _Slices:
    """The padded input's slices, cut on demand (u8 for the integer path)."""

    def __init__(self, xp: torch.Tensor, inputs: InputSlices, integer: bool) -> None:
        self.inputs, self.dtype = inputs, torch.uint8 if integer else xp.dtype
        if inputs.bits == 0:
            self.parts = [xp.to(self.dtype)]
            return
        mag = torch.uint8 if float(xp.abs().max()) <= 255 else torch.int32
        self.parts = [xp.clamp(min=0).to(mag)]
        if inputs.signed:
            self.parts.append(xp.neg().clamp_(min=0).to(mag))

    def take(self, index: range) -> torch.Tensor:
        """Slices ``index`` stacked along the batch: (len·N, C, H, W) channels-last."""
        inp = self.inputs
        if inp.bits == 0:
            return self.parts[0]
        out = []
        for s in index:
            part, digit = divmod(s, inp.count)
            d = (self.parts[part] >> (inp.bits * digit)) & (2**inp.bits - 1)
            out.append(d.to(self.dtype))
        return out[0] if len(out) == 1 else torch.cat(out)


# ---------------------------------------------------------------- the MVM
def tiled_conv(
    x: torch.Tensor, inputs: InputSlices, cells: Cells, layout: Layout, adc: Adc,
    analog: Analog | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Output (N, C_out, O_h, O_w) of inputs ``x`` (N, C, H, W: integers, or real values
    on the ideal chip) applied as ``inputs`` says, in ADC code units, and the code step
    (``None``: no ADC, plain integer units).

    ``adc(v, copy)`` turns copy ``copy``'s partial sums into codes (in place) and returns
    the code step (``None``: values in integer units); ``v`` holds a group of input
    slices along the batch axis (slice-major), all of them when ``analog`` is given.  ``analog(v, spread)`` applies the read-time non-idealities
    (``imcsim.nn.nonideal``) to the analog column sums; ``spread()`` computes ``Σ G² x²``
    of every sum on demand.  The offset correction Σx of each block is linear in the
    input, so it is computed once on ``x`` rather than per slice.
    """
    lay = layout
    xp, out, blocks = _padded(x, lay)
    integer = _integer_path(cells, inputs, lay)
    stream = integer and analog is None
    convs = _Convs(cells, lay, integer, x.dtype)
    source = _Slices(convs.pad(xp), inputs, integer)
    n_w = len(cells.w_coef)
    acc: list[torch.Tensor | None] = [None] * len(cells.weights)
    lsb = None
    for index in _slice_groups(len(inputs.coef), x, cells, lay, not stream):
        xs, x_coef = source.take(index), inputs.coef[index[0]: index[-1] + 1]
        bands = _bands(len(index) * len(x) * blocks[1] * cells.weights[0].shape[0], blocks[0],
                       stream)
        for copy in range(len(cells.weights)):
            if len(bands) > 1 and acc[copy] is None:
                acc[copy] = x.new_zeros(len(x), *blocks, cells.weights[copy].shape[0] // n_w)
            for band in bands:
                xa = convs.gather(xs, copy, band)
                v = convs.block(xa, copy)
                if analog is not None:
                    v = analog(v, lambda xa=xa, copy=copy: _spread(xa, cells, lay, copy, x.dtype,
                                                                  integer))
                v, lsb = adc(v, copy)
                part = acc[copy] if len(bands) == 1 else acc[copy][:, band]  # type: ignore[index]
                part = _accumulate(part, v, x_coef, cells.w_coef)
                if len(bands) == 1:
                    acc[copy] = part
    res = None
    for copy, y in enumerate(acc):
        rows = None if cells.presence is None else convs.rows(xp, source, copy)
        y = _finish(y, rows, cells, lay, copy, lsb)
        if lay.window == (1, 1):
            return y.permute(0, 3, 1, 2), lsb
        if res is None:
            res = y.new_empty(y.shape[0], blocks[0], lay.window[0], blocks[1], lay.window[1],
                              y.shape[-1])
        oy, ox = divmod(copy, lay.window[1])
        res[:, :, oy, :, ox] = y
    res = res.view(res.shape[0], blocks[0] * lay.window[0], blocks[1] * lay.window[1], -1)
    return res[:, : out[0], : out[1]].permute(0, 3, 1, 2), lsb


def _slice_groups(n_x: int, x: torch.Tensor, cells: Cells, lay: Layout,
                  whole: bool) -> list[range]:
    """Input slices per group: all of them when ``whole``, else as many as keep one copy's
    partial sums under :data:`GROUP_ELEMENTS`."""
    if whole:
        return [range(n_x)]
    out = xf.output_size(tuple(x.shape[-2:]), lay.kernel, lay.stride, lay.padding, lay.dilation)
    positions = -(-out[0] // lay.window[0]) * -(-out[1] // lay.window[1])
    per_slice = len(x) * positions * cells.weights[0].shape[0]
    size = max(1, min(n_x, GROUP_ELEMENTS // max(per_slice, 1)))
    return [range(s, min(s + size, n_x)) for s in range(0, n_x, size)]


def _bands(per_row: int, rows: int, stream: bool) -> list[slice]:
    """Output block rows per band: all of them unless streaming, else as many as keep the
    partial sums of a band under :data:`GROUP_ELEMENTS` (at least one)."""
    size = max(1, GROUP_ELEMENTS // max(per_row, 1)) if stream else rows
    return [slice(r, min(r + size, rows)) for r in range(0, rows, size)]


def _copy_view(xs: torch.Tensor, lay: Layout, copy: int) -> torch.Tensor:
    """The (gathered) channels-last float input of window copy ``copy``."""
    xa = xf.copy_input(xs, copy, lay.window, lay.stride)
    selector = lay.selectors[copy]
    return xa if selector is None else F.conv2d(xa, selector.to(xa.dtype))


def _float_conv(inp: torch.Tensor, w: torch.Tensor, lay: Layout) -> torch.Tensor:
    return F.conv2d(inp, w.to(inp.dtype), None, lay.step, lay.conv_padding, lay.dilation,
                    lay.classes * lay.slots).permute(0, 2, 3, 1)


class _Convs:
    """The block convolutions of one call: float, or int8 on an explicitly padded input, cut
    into bands of output rows, with weights and channel gathers prepacked for oneDNN once
    per call (the packed copies are not kept: memory)."""

    def __init__(self, cells: Cells, lay: Layout, integer: bool, dtype: torch.dtype) -> None:
        self.cells, self.lay, self.integer, self.dtype = cells, lay, integer, dtype
        if integer:
            packs = cells.scratch.get("packs") or self._pack()
            if cells.scratch.get("keep"):
                cells.scratch["packs"] = packs
            self.packed, self.selectors, self.presence = packs

    def _pack(self) -> tuple[list[Packed], list[Packed | None], list[Packed] | None]:
        lay, groups, cells = self.lay, self.lay.classes * self.lay.slots, self.cells
        def pack(w): return _pack(w.to(torch.int8), lay.step, (0, 0), lay.dilation, groups)
        return ([pack(w) for w in cells.weights],
                [None if s is None else _pack(s.to(torch.int8), (1, 1), (0, 0), (1, 1), 1)
                 for s in lay.selectors],
                None if cells.presence is None else [pack(p) for p in cells.presence])

    def rows(self, xp: torch.Tensor, source: _Slices, copy: int) -> torch.Tensor:
        """Σx over each block's weight rows (the offset correction), (N, B_h, B_w, K·R):
        int8 convolutions of the u8 input magnitudes (signed: positive minus negative
        part) on the integer path, else a float convolution of ``xp``."""
        if not (self.integer and source.parts[0].dtype == torch.uint8):
            return _float_conv(_copy_view(xp, self.lay, copy), self.cells.presence[copy],
                               self.lay)  # type: ignore[index]
        every = slice(0, None)
        sums = [_qconv(self.gather(part, copy, every), self.presence[copy], self.lay.step,
                       (0, 0), self.lay.dilation, self.lay.classes * self.lay.slots,
                       torch.float32) for part in source.parts]
        out = sums[0] if len(sums) == 1 else sums[0].sub_(sums[1])
        return out.to(self.dtype).permute(0, 2, 3, 1)

    def pad(self, xp: torch.Tensor) -> torch.Tensor:
        """The input the slices are cut from (integer path: conv padding made explicit)."""
        (ph, pw) = self.lay.conv_padding
        if not self.integer or (ph, pw) == (0, 0):
            return xp
        return F.pad(xp, (pw, pw, ph, ph)).contiguous(memory_format=torch.channels_last)

    def gather(self, xs: torch.Tensor, copy: int, band: slice) -> torch.Tensor:
        """The (gathered) channels-last input of window copy ``copy`` for output block
        rows ``band`` (float path, or ``band.stop`` None: every row)."""
        lay = self.lay
        if not self.integer:
            return _copy_view(xs, lay, copy)
        xa = xf.copy_input(xs, copy, lay.window, lay.stride)
        step, reach = lay.step[0], lay.dilation[0] * (lay.kernel[0] - 1) + 1
        if band.stop is not None:
            xa = xa[:, :, band.start * step: (band.stop - 1) * step + reach]
        if self.selectors[copy] is None:
            return xa
        return _qconv(xa, self.selectors[copy], (1, 1), (0, 0), (1, 1), 1, None)

    def block(self, xa: torch.Tensor, copy: int) -> torch.Tensor:
        """Column partial sums (slices·N, B_h, B_w, K·R·F·S_w) of copy ``copy``."""
        lay = self.lay
        if not self.integer:
            return _float_conv(xa, self.cells.weights[copy], lay)
        v = _qconv(xa, self.packed[copy], lay.step, (0, 0), lay.dilation,
                   lay.classes * lay.slots, torch.float32)
        return v.to(self.dtype).permute(0, 2, 3, 1)


def _spread(xa: torch.Tensor, cells: Cells, lay: Layout, copy: int, dtype: torch.dtype,
            integer: bool) -> torch.Tensor:
    """Σ G² x² of every column sum (float convolution of the squares).  On the integer
    path ``xa`` is the gathered input :meth:`_Convs.block` reads: already padded."""
    x2, w2 = xa.to(dtype).square(), cells.weights[copy].to(dtype).square()
    if not integer:
        return _float_conv(x2, w2, lay)
    return F.conv2d(x2, w2, None, lay.step, (0, 0), lay.dilation,
                    lay.classes * lay.slots).permute(0, 2, 3, 1)


def _accumulate(acc: torch.Tensor | None, v: torch.Tensor, x_coef: torch.Tensor,
                w_coef: torch.Tensor) -> torch.Tensor:
    """``acc`` + the shift-and-add of the codes ``v`` (S·N, B_h, B_w, J·S_w) over weight then
    input slices → (N, B_h, B_w, J); ``v`` itself for a single slice pair of weight 1.

    Two GEMVs, each one pass over its operand (MKL's GEMV with 2–8 columns runs at memory
    speed; a block-diagonal GEMM or strided adds run 5–8× slower).  Codes and coefficients
    are integers, so the sums are exact in any order below 2^24."""
    n_x, n_w = len(x_coef), len(w_coef)
    if acc is None and n_x == 1 and n_w == 1 and float(x_coef[0]) == 1 and float(w_coef[0]) == 1:
        return v
    shape = (v.shape[0] // n_x, *v.shape[1:-1], v.shape[-1] // n_w)
    y = (v.reshape(-1, n_w) @ w_coef.to(v.dtype)).view(n_x, -1)
    y = x_coef.to(v.dtype) @ y if n_x > 1 else y[0].mul_(x_coef[0].to(v.dtype))
    return y.view(shape) if acc is None else acc.add_(y.view(shape))


def _sum_slots(y: torch.Tensor) -> torch.Tensor:
    """Digital accumulation over row tiles: (…, K, R, F) → (…, K, F), by adds (a reduction
    over a short middle axis runs several times slower)."""
    out = y[..., 0, :] + y[..., 1, :]
    for r in range(2, y.shape[-2]):
        out.add_(y[..., r, :])
    return out


def _finish(y: torch.Tensor, rows: torch.Tensor | None, cells: Cells, lay: Layout, copy: int,
            lsb: torch.Tensor | None) -> torch.Tensor:
    """Offset removal (in code units), sum over row tiles, filter order:
    (N, B_h, B_w, K·R·F) → (N, B_h, B_w, C_out)."""
    y = y.unflatten(-1, (lay.classes * lay.slots, -1))
    if rows is not None:
        y = y - rows.unsqueeze(-1) * (cells.offset / (1.0 if lsb is None else lsb))
    if lay.slots > 1:
        y = _sum_slots(y.unflatten(-2, (lay.classes, lay.slots)))
    y = y.flatten(-2)
    if lay.pads_output:
        y = F.pad(y, (0, 1))
    return y[..., lay.inverse[copy]] if lay.select[copy] else y


def per_image(x: torch.Tensor) -> torch.Tensor:
    """(N, C·H·W) view of ``x`` without a copy for NCHW or channels-last tensors."""
    if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        return x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)
    return x.reshape(x.shape[0], -1)


def build_layout(plan: TilePlan, in_channels: int, kernel: Pair, stride: Pair, padding: Pair,
            dilation: Pair) -> Layout:
    """Index tensors of the grouped convolutions, and which gathers are identities."""
    a, k, r, _ = plan.channels.shape
    channels = plan.channels.reshape(a, -1)
    c_out, members = plan.inverse.shape[1], k * plan.filters.shape[2]
    pads = bool((plan.inverse >= members).any())
    selectors = tuple(None if np.array_equal(row, np.arange(in_channels)) else
                      _selector(row, in_channels) for row in channels)
    select = tuple(pads or members != c_out or not np.array_equal(inv, np.arange(c_out))
                   for inv in plan.inverse)
    return Layout(kernel=kernel, stride=stride, padding=padding, dilation=dilation,
                  window=plan.window, classes=k, slots=r,
                  selectors=selectors, inverse=torch.from_numpy(plan.inverse), select=select,
                  pads_output=pads)


def _selector(channels: np.ndarray, in_channels: int) -> torch.Tensor:
    """One-hot (len, C_in, 1, 1) 1×1-conv weight that picks ``channels``."""
    onehot = torch.zeros(len(channels), in_channels, 1, 1)
    onehot[torch.arange(len(channels)), torch.from_numpy(channels), 0, 0] = 1
    return onehot.contiguous(memory_format=torch.channels_last)
