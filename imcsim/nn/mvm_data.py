"""What the crossbar MVM works on: a layer's programmed cells, its input slicing, its tile
layout and the input's slices cut on demand.  Plain data below both the dispatch
(``imcsim.nn.mvm``) and the block convolutions (``imcsim.nn.mvm_convs``) that read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch

from imcsim.layers import Pair
from imcsim.nn import functional as xf

__all__ = ["Cells", "InputParts", "InputSlices", "Layout"]


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
    def sliced(cls, input_bits: int, dac_bits: int, signed: bool, dtype: torch.dtype,
               device: torch.device | None = None) -> InputSlices:
        count, coef = xf.input_slicing(input_bits, dac_bits, signed, dtype, device)
        return cls(coef=coef, bits=dac_bits, count=count, signed=signed, top=2**dac_bits - 1)

    @classmethod
    def whole(cls, top: int | None, signed: bool, dtype: torch.dtype,
              device: torch.device | None = None) -> InputSlices:
        return cls(coef=torch.ones(1, dtype=dtype, device=device), bits=0, count=1,
                   signed=signed, top=top)


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

    def to(self, device: torch.device) -> Layout:
        """This layout with its index tensors on ``device`` (moved once, with the layer)."""
        return replace(self, inverse=self.inverse.to(device), selectors=tuple(
            None if s is None else s.to(device) for s in self.selectors))


class InputParts:
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
