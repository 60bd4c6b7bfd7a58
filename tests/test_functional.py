"""Crossbar arithmetic: quantizers, bit slicing round trips, the ADC, the window-copy layout."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from imcsim.nn import functional as xf


@given(bits=st.integers(2, 10), cell=st.integers(1, 4), seed=st.integers(0, 10**6),
       sign=st.sampled_from(["offset", "differential"]))
@settings(max_examples=60, deadline=None)
def test_weight_slices_reassemble_the_integer(bits: int, cell: int, seed: int, sign: str) -> None:
    cell = min(cell, bits)
    top = 2 ** (bits - 1) - 1
    q = torch.randint(-top, top + 1, (50,), generator=torch.Generator().manual_seed(seed)).double()
    cells, coef, offset = xf.encode_weights(q, bits, cell, sign)
    slices = math.ceil(bits / cell) * (2 if sign == "differential" else 1)
    assert cells.shape == (slices, 50)
    assert cells.min() >= 0 and cells.max() <= 2**cell - 1
    assert torch.equal(cells == cells.round(), torch.ones_like(cells, dtype=torch.bool))
    assert torch.equal(torch.einsum("s,sn->n", coef, cells) - offset, q)


@given(bits=st.integers(2, 9), dac=st.integers(1, 4), seed=st.integers(0, 10**6),
       signed=st.booleans())
@settings(max_examples=60, deadline=None)
def test_input_slices_reassemble_the_integer(bits: int, dac: int, seed: int, signed: bool) -> None:
    dac = min(dac, bits - 1 if signed else bits) or 1
    top = xf.qmax(bits, signed)
    low = -top if signed else 0
    x = torch.randint(low, top + 1, (40,), generator=torch.Generator().manual_seed(seed)).double()
    slices, coef = xf.encode_inputs(x, bits, dac, signed)
    mag_bits = bits - 1 if signed else bits
    assert len(slices) == math.ceil(mag_bits / dac) * (2 if signed else 1)
    assert slices.min() >= 0 and slices.max() <= 2**dac - 1
    assert torch.equal(torch.einsum("s,sn->n", coef, slices), x)


def test_quantize_is_symmetric_and_clipped() -> None:
    t = torch.tensor([-3.0, -1.0, -0.26, 0.0, 0.24, 1.0, 5.0])
    q = xf.quantize(t, torch.tensor(0.5), 3, signed=True)
    assert q.tolist() == [-3, -2, -1, 0, 0, 2, 3]
    assert xf.quantize(t, torch.tensor(1.0), 2, signed=False).tolist() == [0, 0, 0, 0, 0, 1, 3]


def test_adc_levels_clip_and_error_bound() -> None:
    v = torch.linspace(-5, 40, 1000, dtype=torch.float64)
    out = xf.adc(v, 31.0, 5, signed=False)  # 31 steps of 1 over [0, 31]
    assert out.min() == 0 and out.max() == 31
    inside = (v >= 0) & (v <= 31)
    assert (out[inside] - v[inside]).abs().max() <= 0.5 + 1e-12
    assert torch.all(out[1:] >= out[:-1])  # monotone
    signed = xf.adc(v, 30.0, 3, signed=True)  # 3 steps of 10 each side
    assert set(signed.unique().tolist()) <= {-30.0, -20.0, -10.0, 0.0, 10.0, 20.0, 30.0}
    assert xf.adc(torch.tensor([7.3]), 0.0, 4, signed=False).item() == 7.0  # zero range: unit step


@pytest.mark.parametrize("window", [(1, 1), (2, 3), (3, 2), (4, 4)])
@pytest.mark.parametrize("stride,padding,dilation", [(1, 1, 1), (2, 1, 1), (1, 2, 2), (3, 0, 1)])
def test_copy_layout_reproduces_conv(window, stride, padding, dilation) -> None:
    """Each window copy's strided conv on its shifted input gives exactly its outputs."""
    x = torch.randn(2, 3, 11, 9, dtype=torch.float64)
    w = torch.randn(4, 3, 3, 3, dtype=torch.float64)
    pair = lambda v: (v, v)  # noqa: E731
    xp, out, blocks = xf.pad_for_copies(x, (3, 3), pair(stride), pair(padding), pair(dilation),
                                        window)
    step = (window[0] * stride, window[1] * stride)
    copies = []
    for copy in range(window[0] * window[1]):
        xa = xf.copy_input(xp, copy, window, pair(stride))
        y = F.conv2d(xa, w, stride=step, dilation=dilation)[:, :, : blocks[0], : blocks[1]]
        assert y.shape[-2:] == blocks
        copies.append(y.permute(0, 2, 3, 1))
    got = xf.fold_copies(torch.stack(copies), window, out)
    want = F.conv2d(x, w, stride=stride, padding=padding, dilation=dilation)
    assert got.shape == want.shape
    assert torch.allclose(got, want, atol=1e-12)
