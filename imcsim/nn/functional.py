"""Crossbar MVM arithmetic: quantizers, bit slicing, the ADC, and the window-copy layout.

The encodings follow ISAAC (Shafiee et al., ISCA 2016) and PUMA (Ankit et al., ASPLOS
2019):

* **Weights** are quantized per layer to signed integers ``q ∈ [−(2^(b−1)−1), 2^(b−1)−1]``
  (symmetric scale ``max|W| / (2^(b−1)−1)``) and split into ``ceil(b / cell_bits)``
  digits of ``cell_bits`` bits, one cell each, least significant first.  Signs use either
  ``differential`` pairs (``q⁺ = max(q, 0)`` and ``q⁻ = max(−q, 0)`` on two columns,
  subtracted after the ADC) or an ``offset`` (ISAAC's bias: ``q + 2^(b−1)`` is stored and
  ``2^(b−1)·Σx`` over the column's weight rows is subtracted digitally).
* **Inputs** are quantized to ``input_bits`` and applied in ``dac_bits`` slices (bit
  serial).  Unsigned inputs (after a ReLU) use all ``input_bits``.  Signed inputs (the
  normalised image into the first layer, the input of a low-rank factor's second conv) are
  applied as two unsigned passes, first the positive parts then the negative parts, each
  with ``input_bits − 1`` magnitude bits; the two results are subtracted digitally.
* The **ADC** rounds each column's partial sum to ``2^adc_bits − 1`` steps over
  ``[0, full_scale]`` (signed sums: ``2^(adc_bits−1) − 1`` steps each side) and clips.

Every tensor of integers is held in floating point: sums stay below 2^24 for any array
of up to 2^24 / ((2^dac_bits − 1)(2^cell_bits − 1)) rows, so float32 stays exact.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["Pair", "adc", "adc_levels_", "adc_lsb", "copy_input", "digit_weights", "digits",
           "encode_inputs", "encode_weights", "fold_copies", "input_slicing", "output_size",
           "pad_for_copies", "qmax", "quantize"]

Pair = tuple[int, int]


def qmax(bits: int, signed: bool) -> int:
    """Largest integer level: ``2^(bits−1) − 1`` signed (symmetric), ``2^bits − 1`` unsigned."""
    return 2 ** (bits - 1) - 1 if signed else 2**bits - 1


def quantize(t: torch.Tensor, scale: torch.Tensor, bits: int, signed: bool) -> torch.Tensor:
    """Round ``t / scale`` to the integer grid of ``bits`` (clipped); returns integers as floats."""
    top = qmax(bits, signed)
    return torch.div(t, scale).round_().clamp_(-top if signed else 0, top)


def digits(u: torch.Tensor, digit_bits: int, count: int) -> torch.Tensor:
    """Base-2^digit_bits digits of non-negative integers ``u``, least significant first.

    Returns ``(count, *u.shape)``.
    """
    scale = digit_weights(digit_bits, count, u.dtype, u.device).view(-1, *[1] * u.dim())
    # floor division by a power of two and a remainder are exact on integer-valued floats:
    # one output-sized tensor, no integer copies (this runs on whole weight tensors)
    return torch.div(u.unsqueeze(0), scale, rounding_mode="floor").remainder_(2**digit_bits)


def digit_weights(digit_bits: int, count: int, dtype: torch.dtype,
                  device: torch.device | None = None) -> torch.Tensor:
    """Shift-and-add coefficients ``2^(digit_bits·k)`` of ``count`` digits."""
    return (2.0 ** (digit_bits * torch.arange(count, device=device))).to(dtype)


def encode_weights(
    q: torch.Tensor, weight_bits: int, cell_bits: int, sign: str
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Signed integer weights → (cells ``(S, *q.shape)``, coefficients ``(S,)``, offset).

    ``Σ_s coef[s]·cells[s] − offset == q`` for every weight (the offset is zero for
    differential pairs, ``2^(weight_bits−1)`` for the offset encoding).
    """
    count = math.ceil(weight_bits / cell_bits)
    coef = digit_weights(cell_bits, count, q.dtype, q.device)
    if sign == "differential":
        cells = torch.cat([digits(q.clamp(min=0), cell_bits, count),
                           digits((-q).clamp(min=0), cell_bits, count)])
        return cells, torch.cat([coef, -coef]), 0.0
    offset = float(2 ** (weight_bits - 1))
    return digits(q + offset, cell_bits, count), coef, offset


def encode_inputs(
    x: torch.Tensor, input_bits: int, dac_bits: int, signed: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Integer inputs → (DAC slices ``(S, *x.shape)``, coefficients ``(S,)``).

    ``Σ_s coef[s]·slices[s] == x``; signed inputs are split into positive and negative
    passes of ``input_bits − 1`` magnitude bits each.
    """
    count, coef = input_slicing(input_bits, dac_bits, signed, x.dtype, x.device)
    if not signed:
        return digits(x, dac_bits, count), coef
    return torch.cat([digits(x.clamp(min=0), dac_bits, count),
                      digits((-x).clamp(min=0), dac_bits, count)]), coef


def input_slicing(
    input_bits: int, dac_bits: int, signed: bool, dtype: torch.dtype,
    device: torch.device | None = None,
) -> tuple[int, torch.Tensor]:
    """(digits per sign pass, coefficients ``(S,)``) of :func:`encode_inputs`: unsigned
    inputs use ``input_bits``, signed ones a positive then a negative pass of
    ``input_bits − 1`` magnitude bits (negative coefficients)."""
    count = math.ceil((input_bits - 1 if signed else input_bits) / dac_bits)
    coef = digit_weights(dac_bits, count, dtype, device)
    return count, torch.cat([coef, -coef]) if signed else coef


def adc_lsb(full_scale: torch.Tensor | float, bits: int, signed: bool,
            device: torch.device | None = None) -> torch.Tensor:
    """One ADC step: ``full_scale / (2^bits − 1)`` (signed: ``/ (2^(bits−1) − 1)`` per side)."""
    full = torch.as_tensor(full_scale, device=device)
    lsb = (full if full.is_floating_point() else full.double()) / _adc_top(bits, signed)
    return torch.where(lsb > 0, lsb, torch.ones_like(lsb))


def _adc_top(bits: int, signed: bool) -> int:
    return qmax(bits, True) if signed and bits > 1 else 2**bits - 1


def adc_levels_(
    v: torch.Tensor, lsb: torch.Tensor, bits: int, signed: bool, clip: bool = True
) -> torch.Tensor:
    """In place: partial sums → ADC output codes (integers; multiply by ``lsb`` for values).

    ``clip=False`` skips the clipping pass when the sums provably lie inside the range (a
    fixed worst-case full scale without noise).
    """
    top = _adc_top(bits, signed)
    v = v.div_(lsb).round_()
    return v.clamp_(-top if signed else 0, top) if clip else v


def adc(v: torch.Tensor, full_scale: torch.Tensor | float, bits: int, signed: bool) -> torch.Tensor:
    """Quantize partial sums to the ADC's levels over ``[0, fs]`` (or ``[−fs, fs]``), clipping."""
    lsb = adc_lsb(full_scale, bits, signed, v.device).to(v.dtype)
    return adc_levels_(v.clone(), lsb, bits, signed) * lsb


def output_size(size: Pair, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair) -> Pair:
    """torch's ⌊(I + 2p − d(K − 1) − 1)/s⌋ + 1 per axis."""
    return tuple(  # type: ignore[return-value]
        (i + 2 * p - d * (k - 1) - 1) // s + 1
        for i, k, s, p, d in zip(size, kernel, stride, padding, dilation)
    )


def pad_for_copies(
    x: torch.Tensor, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair, window: Pair
) -> tuple[torch.Tensor, Pair, Pair]:
    """Zero-pad ``x`` so the output covers whole windows: (padded input, (O_h, O_w), (B_h, B_w)).

    Output position (y, x) belongs to window copy ``(y mod a_h)·a_w + (x mod a_w)`` and
    block (y div a_h, x div a_w).  The output is extended to B_h·a_h × B_w·a_w positions —
    the partial windows at the border that the chip also computes — and cropped again by
    :func:`fold_copies`.
    """
    out = output_size(tuple(x.shape[-2:]), kernel, stride, padding, dilation)
    blocks = (-(-out[0] // window[0]), -(-out[1] // window[1]))
    need = [(b * a - 1) * s + d * (k - 1) + 1
            for b, a, s, d, k in zip(blocks, window, stride, dilation, kernel)]
    extra = [nd - (i + 2 * p) for nd, i, p in zip(need, x.shape[-2:], padding)]
    xp = F.pad(x, (padding[1], padding[1] + extra[1], padding[0], padding[0] + extra[0]))
    return xp, out, blocks


def copy_input(xp: torch.Tensor, copy: int, window: Pair, stride: Pair) -> torch.Tensor:
    """The padded input seen by window copy ``copy``: a strided conv on it gives its outputs."""
    oy, ox = divmod(copy, window[1])
    return xp[:, :, oy * stride[0] :, ox * stride[1] :]


def fold_copies(y: torch.Tensor, window: Pair, out: Pair) -> torch.Tensor:
    """``(A, N, B_h, B_w, C_out)`` per-copy outputs → ``(N, C_out, O_h, O_w)``."""
    (a_h, a_w), (_, n, b_h, b_w, c) = window, y.shape
    y = y.view(a_h, a_w, n, b_h, b_w, c).permute(2, 5, 3, 0, 4, 1)
    y = y.reshape(n, c, b_h * a_h, b_w * a_w)
    return y[:, :, : out[0], : out[1]]
