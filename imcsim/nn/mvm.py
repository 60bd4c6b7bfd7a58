"""The tiled MVM of one layer: per window copy, one strided grouped convolution computes the
column partial sums of every (class, row-tile slot) block, every input slice and every
weight slice at once; then the ADC, shift-and-add, offset removal and the digital sum over
row tiles.  Tensors stay channels-last (oneDNN's fast layout); reductions over slices are
matrix products so each pass over the partial sums is a single memory sweep.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from imcsim.nn import functional as xf
from imcsim.nn.tileplan import TilePlan

Pair = tuple[int, int]


@dataclass(frozen=True)
class Cells:
    """A layer's programmed array contents, ready for the grouped convolutions."""

    weights: list[torch.Tensor]
    """Per copy: (K·R·F·S_w, C, K_h, K_w) cell values, block-major, weight slice innermost."""
    presence: list[torch.Tensor] | None
    """Per copy: (K·R, C, K_h, K_w) 0/1 weight rows of each block (offset encoding only)."""
    reducer: torch.Tensor | None
    """Block-diagonal shift-and-add matrix over weight slices (None: one slice)."""
    offset: float
    scale: torch.Tensor
    """Weight quantization step."""
    gain: float = 1.0
    """Digital gain on the column sums (non-idealities' ``gain`` hooks, e.g. drift
    compensation): applied with the ADC step, before the offset correction."""


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


def reducer(w_coef: torch.Tensor, block: int = 4) -> torch.Tensor | None:
    """``block`` copies of the shift-and-add column ``w_coef`` on a diagonal: one GEMM sums
    the weight slices of ``block`` outputs (a GEMV over 2–8 slices runs far slower)."""
    if len(w_coef) == 1:
        return None
    return torch.block_diag(*[w_coef[:, None]] * block)


def _shift_add(v: torch.Tensor, cells: Cells, n_w: int) -> torch.Tensor:
    """(…, F·S_w) ADC codes → (…, F) weighted over weight slices."""
    if cells.reducer is None:
        return v
    block = cells.reducer.shape[1]
    flat = v.reshape(-1)
    if flat.numel() % (block * n_w):
        return torch.matmul(v.unflatten(-1, (-1, n_w)), cells.reducer[:n_w, 0])
    return (flat.view(-1, block * n_w) @ cells.reducer).view(*v.shape[:-1], -1)


def _padded(x: torch.Tensor, lay: Layout) -> tuple[torch.Tensor, Pair, Pair, Pair]:
    """(channels-last input padded for the window copies, conv padding left, output, blocks)."""
    if lay.window == (1, 1):
        out = xf.output_size(tuple(x.shape[-2:]), lay.kernel, lay.stride, lay.padding,
                             lay.dilation)
        xp, pad, blocks = x, lay.padding, out
    else:
        xp, out, blocks = xf.pad_for_copies(x, lay.kernel, lay.stride, lay.padding,
                                            lay.dilation, lay.window)
        pad = (0, 0)
    return xp.contiguous(memory_format=torch.channels_last), pad, out, blocks


def _copy_view(xp: torch.Tensor, lay: Layout, copy: int) -> torch.Tensor:
    """The (gathered) channels-last input of window copy ``copy``."""
    xa = xf.copy_input(xp, copy, lay.window, lay.stride)
    selector = lay.selectors[copy]
    return xa if selector is None else F.conv2d(xa, selector.to(xa.dtype))


def tiled_conv(
    x: torch.Tensor, slices: torch.Tensor, x_coef: torch.Tensor, cells: Cells, layout: Layout,
    adc: Callable[[torch.Tensor, int], tuple[torch.Tensor, torch.Tensor | None]],
    analog: Callable[[torch.Tensor, Callable[[], torch.Tensor]], torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Output (N, C_out, O_h, O_w) of integer inputs ``x`` (N, C, H, W) applied as
    ``slices`` (S_x, N, C, H, W) with shift-and-add weights ``x_coef``, in ADC code units,
    and the code step (``None``: no ADC, plain integer units).

    ``adc(v, copy)`` turns copy ``copy``'s partial sums into codes (in place) and returns
    the code step (``None``: it returned values in integer units);
    ``analog(v, spread)`` applies the read-time non-idealities (``imcsim.nn.nonideal``) to
    the analog column sums; ``spread()`` computes ``Σ G² x²`` of every sum on demand.  The
    offset correction Σx of each block is linear in the input, so it is computed once on
    ``x`` rather than per slice.
    """
    lay = layout
    xp, pad, out, blocks = _padded(slices.flatten(0, 1), lay)
    xp_int = _padded(x, lay)[0] if cells.presence is not None else None
    step = (lay.window[0] * lay.stride[0], lay.window[1] * lay.stride[1])
    groups = lay.classes * lay.slots

    def conv(inp: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return F.conv2d(inp, w, None, step, pad, lay.dilation, groups).permute(0, 2, 3, 1)

    res, lsb = None, None
    for copy, weight in enumerate(cells.weights):
        xa = _copy_view(xp, lay, copy)
        v = conv(xa, weight)
        if analog is not None:
            v = analog(v, lambda xa=xa, weight=weight: conv(xa.square(), weight.square()))
        v, lsb = adc(v, copy)
        rows = conv(_copy_view(xp_int, lay, copy), cells.presence[copy]) if xp_int is not None \
            else None
        y = _combine(v, rows, x_coef, cells, lay, copy, lsb)
        if lay.window == (1, 1):
            return y.permute(0, 3, 1, 2), lsb
        if res is None:
            res = y.new_empty(y.shape[0], blocks[0], lay.window[0], blocks[1], lay.window[1],
                              y.shape[-1])
        oy, ox = divmod(copy, lay.window[1])
        res[:, :, oy, :, ox] = y
    res = res.view(res.shape[0], blocks[0] * lay.window[0], blocks[1] * lay.window[1], -1)
    return res[:, : out[0], : out[1]].permute(0, 3, 1, 2), lsb


def _sum_slots(y: torch.Tensor) -> torch.Tensor:
    """Digital accumulation over row tiles: (…, K, R, F) → (…, K, F), by adds (a reduction
    over a short middle axis runs several times slower)."""
    out = y[..., 0, :] + y[..., 1, :]
    for r in range(2, y.shape[-2]):
        out.add_(y[..., r, :])
    return out


def _combine(
    v: torch.Tensor, rows: torch.Tensor | None, x_coef: torch.Tensor, cells: Cells,
    lay: Layout, copy: int, lsb: torch.Tensor | None,
) -> torch.Tensor:
    """Shift-and-add of ADC codes over weight then input slices, offset removal (in code
    units), sum over row tiles, filter order: (S_x·N, B_h, B_w, K·R·F·S_w) → (N, B_h, B_w, C_out)."""
    n_x = len(x_coef)
    n_w = 1 if cells.reducer is None else cells.reducer.shape[0] // cells.reducer.shape[1]
    y = _shift_add(v, cells, n_w)
    if n_x > 1:
        y = torch.matmul(x_coef, y.reshape(n_x, -1)).view(-1, *y.shape[1:])
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
