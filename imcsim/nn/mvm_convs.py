"""The block convolutions of one tiled MVM (``imcsim.nn.mvm``): the column partial sums of
every (class, row-tile slot) block of a window copy, as one strided grouped convolution.

Two implementations, one result:

* the **float path** — ``F.conv2d`` in the input's floating-point type, on whatever device
  the tensors live (CPU or CUDA; on CUDA with TF32 off, :func:`imcsim.nn.devices.exact_float32`).
  It is the reference: integer partial sums are exact in float32 in any summation order
  while every one stays below 2^24 (:data:`imcsim.nn.devices.EXACT_FLOAT32`);
* the **integer path** (CPU only, the CPU's fast path) — oneDNN u8×s8 convolutions with
  int32 sums and float output, taken when :func:`integer_path` says it gives the float
  path's exact sums: every programmed cell an int8 level, unsigned input slices of at most
  8 bits, ``rows · x_max · |cell|_max < 2^24`` and ``2 · x_max · |cell|_max < 2^15``
  (exact int16 pair sums on CPUs without VNNI).  ``int8_available()`` checks once that the
  op exists and is exact on this machine.  oneDNN has no CUDA kernels: on a CUDA device the
  cells stay floating point (``imcsim.nn.mvm.make_cells``) and the float path runs.
"""

from __future__ import annotations

import functools
import platform
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from imcsim.nn import functional as xf
from imcsim.nn.devices import EXACT_FLOAT32
from imcsim.nn.mvm_data import Cells, InputParts, InputSlices, Layout

__all__ = ["BlockConvs", "Packed", "copy_view", "float_conv", "int8_available", "integer_path",
           "keep_packed", "spread"]

Pair = tuple[int, int]

_PAIR_SUM = 2**15
"""int8 kernels without VNNI add pairs of u8·s8 products in saturating int16."""


@dataclass(frozen=True)
class Packed:
    """oneDNN-prepacked int8 weights of one integer convolution."""

    weight: torch.Tensor
    scales: torch.Tensor
    zero_points: torch.Tensor


@functools.cache
def int8_available() -> bool:
    """Do oneDNN's int8 convolutions run here and return exact integer sums?  (Checked once
    on a small case against the float convolution; x86-64 builds with oneDNN only.)"""
    if platform.machine().lower() not in ("x86_64", "amd64") or \
            not torch.backends.mkldnn.is_available():
        return False
    try:
        # cpu-only (the next three lines): a small probe of the oneDNN kernels
        gen = torch.Generator(device="cpu").manual_seed(0)  # cpu-only
        w = torch.randint(-3, 4, (8, 3, 3, 3), generator=gen, dtype=torch.int8, device="cpu")
        x = torch.randint(0, 4, (2, 6, 7, 7), generator=gen, dtype=torch.uint8,
                          device="cpu")  # cpu-only
        packed = _pack(w, (1, 2), (1, 1), (1, 1), 2)
        got = _qconv(x, packed, (1, 2), (1, 1), (1, 1), 2, torch.float32)
        return torch.equal(got, F.conv2d(x.float(), w.float(), None, (1, 2), 1, 1, 2))
    except (RuntimeError, AttributeError):  # op missing or unsupported on this CPU
        return False


def _pack(w: torch.Tensor, stride: Pair, padding: Pair, dilation: Pair, groups: int) -> Packed:
    w = w.contiguous(memory_format=torch.channels_last)
    ones = torch.ones(w.shape[0], device="cpu")  # cpu-only: oneDNN prepacked weights
    packed = torch.ops.onednn.qconv_prepack(w, ones, 1.0, 0, list(stride), list(padding),
                                            list(dilation), groups, None)
    zero_points = torch.zeros(w.shape[0], dtype=torch.int64, device="cpu")  # cpu-only
    return Packed(packed, ones, zero_points)


def _qconv(x: torch.Tensor, p: Packed, stride: Pair, padding: Pair, dilation: Pair,
           groups: int, out_dtype: torch.dtype | None) -> torch.Tensor:
    """u8 × s8 convolution, int32 sums, output ``out_dtype`` (None: u8, exact for 0..255)."""
    return torch.ops.onednn.qconv2d_pointwise(
        x, 1.0, 0, p.weight, p.scales, p.zero_points, None, list(stride), list(padding),
        list(dilation), groups, 1.0, 0, out_dtype, "none", [], "")


@contextmanager
def keep_packed(cells: Cells) -> Iterator[None]:
    """Within the block, :func:`tiled_conv` prepacks the int8 weights once and reuses them
    for every call (the chunks of one forward pass); they are dropped on exit (memory)."""
    cells.scratch["keep"] = True
    try:
        yield
    finally:
        cells.scratch.clear()


def integer_path(cells: Cells, inputs: InputSlices, lay: Layout) -> bool:
    """Can the block convolutions run in int8 and give the float path's exact sums?  (Only
    CPU cells are ever int8: see ``imcsim.nn.mvm.make_cells``.)"""
    if not cells.integer or inputs.top is None or inputs.top > 255:
        return False
    if inputs.bits == 0 and inputs.signed:  # whole signed inputs: not u8
        return False
    rows = cells.weights[0].shape[1] * lay.kernel[0] * lay.kernel[1]
    return (rows * inputs.top * cells.cell_max < EXACT_FLOAT32
            and 2 * inputs.top * cells.cell_max < _PAIR_SUM)


def copy_view(xs: torch.Tensor, lay: Layout, copy: int) -> torch.Tensor:
    """The (gathered) channels-last float input of window copy ``copy``."""
    xa = xf.copy_input(xs, copy, lay.window, lay.stride)
    selector = lay.selectors[copy]
    return xa if selector is None else F.conv2d(xa, selector.to(xa.dtype))


def float_conv(inp: torch.Tensor, w: torch.Tensor, lay: Layout) -> torch.Tensor:
    return F.conv2d(inp, w.to(inp.dtype), None, lay.step, lay.conv_padding, lay.dilation,
                    lay.classes * lay.slots).permute(0, 2, 3, 1)


class BlockConvs:
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

    def rows(self, xp: torch.Tensor, source: InputParts, copy: int) -> torch.Tensor:
        """Σx over each block's weight rows (the offset correction), (N, B_h, B_w, K·R):
        int8 convolutions of the u8 input magnitudes (signed: positive minus negative
        part) on the integer path, else a float convolution of ``xp``."""
        if not (self.integer and source.parts[0].dtype == torch.uint8):
            return float_conv(copy_view(xp, self.lay, copy), self.cells.presence[copy],
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
            return copy_view(xs, lay, copy)
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
            return float_conv(xa, self.cells.weights[copy], lay)
        v = _qconv(xa, self.packed[copy], lay.step, (0, 0), lay.dilation,
                   lay.classes * lay.slots, torch.float32)
        return v.to(self.dtype).permute(0, 2, 3, 1)


def spread(xa: torch.Tensor, cells: Cells, lay: Layout, copy: int, dtype: torch.dtype,
            integer: bool) -> torch.Tensor:
    """Σ G² x² of every column sum (float convolution of the squares).  On the integer
    path ``xa`` is the gathered input :meth:`BlockConvs.block` reads: already padded."""
    x2, w2 = xa.to(dtype).square(), cells.weights[copy].to(dtype).square()
    if not integer:
        return float_conv(x2, w2, lay)
    return F.conv2d(x2, w2, None, lay.step, (0, 0), lay.dilation,
                    lay.classes * lay.slots).permute(0, 2, 3, 1)
