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
combination against the tile-by-tile reference and against the float path).  The block
convolutions themselves (float reference path, CPU int8 path) are in
``imcsim.nn.mvm_convs``.

Devices: every tensor of a call lives on the input's device (the layer's device); index
and coefficient tensors are moved with the layer (:meth:`Layout.to`), never per tile or
per call.  On CUDA the cells stay floating point and the float path runs with TF32 off
(:func:`imcsim.nn.devices.exact_float32`): integer partial sums below 2^24 come out
bit-identical to the CPU's (``docs/guide/gpu.md``).  With the ADC
bypassed (the ideal chip, calibration passes) and non-integer cells, sums of non-integers
may differ in the last bit from the former block-diagonal GEMM (summation order).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from imcsim.nn import functional as xf
from imcsim.nn import mvm_convs
from imcsim.nn.devices import exact_float32
from imcsim.nn.mvm_convs import BlockConvs, int8_available, keep_packed, spread
from imcsim.nn.mvm_data import Cells, InputParts, InputSlices, Layout
from imcsim.nn.tileplan import TilePlan

__all__ = ["Cells", "InputSlices", "Layout", "build_layout", "int8_available", "keep_packed",
           "make_cells", "per_image", "tiled_conv"]

Pair = tuple[int, int]
Adc = Callable[[torch.Tensor, int], tuple[torch.Tensor, torch.Tensor | None]]
Analog = Callable[[torch.Tensor, Callable[[], torch.Tensor]], torch.Tensor]

GROUP_ELEMENTS = 2**19
"""Partial sums computed per streamed group of input slices (a cache-sized block)."""


# ---------------------------------------------------------------- cells
def make_cells(cells: torch.Tensor, coef: torch.Tensor, offset: float, scale: torch.Tensor,
               rows: torch.Tensor | None, layout: Layout, gain: float = 1.0) -> Cells:
    """Cells ``(A, K, R, F, S_w, C·K_h·K_w)`` → per-copy convolution weights; int8 and
    prepacked when every cell is an integer level that int8 holds.  ``rows`` (A, K, R, 1,
    C·K_h·K_w): 0/1 weight rows of each block, for the offset encoding (else ``None``)."""
    cell_max = max(float(cells.max()), -float(cells.min())) if cells.numel() else 0.0
    # one weight slice at a time and before the layout copies: no full-size float temporary;
    # int8 cells only on the CPU (oneDNN): on other devices the float path runs
    if cells.device.type == "cpu" and cell_max <= 127 and mvm_convs.int8_available() \
            and all(torch.equal(c, c.round()) for c in cells.unbind(4)):
        cells = cells.to(torch.int8)
    presence = _as_conv(rows, layout.kernel) if rows is not None else None
    return Cells(weights=_as_conv(cells, layout.kernel), presence=presence, w_coef=coef,
                 offset=offset, scale=scale, gain=gain, cell_max=cell_max)


def _as_conv(cells: torch.Tensor, kernel: Pair) -> list[torch.Tensor]:
    """(A, K, R, F, [S_w,] C·kk) → per copy (K·R·F·S_w, C, K_h, K_w) channels-last weights."""
    kh, kw = kernel
    conv = cells.reshape(cells.shape[0], -1, cells.shape[-1] // (kh * kw), kh, kw)
    return [c.contiguous(memory_format=torch.channels_last) for c in conv]


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
    input, so it is computed once on ``x`` rather than per slice.  Runs on ``x``'s device
    (cells, layout and ``inputs`` must be there too), TF32 off on CUDA.
    """
    with exact_float32(x.device):
        return _tiled_conv(x, inputs, cells, layout, adc, analog)


def _tiled_conv(x: torch.Tensor, inputs: InputSlices, cells: Cells, layout: Layout, adc: Adc,
                analog: Analog | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    lay = layout
    xp, out, blocks = _padded(x, lay)
    integer = mvm_convs.integer_path(cells, inputs, lay)
    stream = integer and analog is None
    convs = BlockConvs(cells, lay, integer, x.dtype)
    source = InputParts(convs.pad(xp), inputs, integer)
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
                    v = analog(v, lambda xa=xa, copy=copy: spread(xa, cells, lay, copy, x.dtype,
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
    # cpu-only: built from the numpy plan; Layout.to moves it with the layer
    onehot = torch.zeros(len(channels), in_channels, 1, 1, device="cpu")
    rows = torch.arange(len(channels), device="cpu")  # cpu-only: as above
    onehot[rows, torch.from_numpy(channels), 0, 0] = 1
    return onehot.contiguous(memory_format=torch.channels_last)
