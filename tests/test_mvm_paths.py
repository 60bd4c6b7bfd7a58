"""The exact shortcuts of the tiled MVM (``imcsim.nn.mvm``): int8 block convolutions,
streamed input-slice groups and the GEMV shift-and-add.  Each combination is checked
against the tile-by-tile reference of ``test_crossbar`` and bit for bit against the plain
float path; the tests also check which path ran, so an equality is never vacuous."""

from __future__ import annotations

import pytest
import torch
from test_crossbar import Wrap, reference
from torch import nn

from imcsim.hardware import ArrayConfig, ChipConfig, PrecisionConfig
from imcsim.layers import LayerShape
from imcsim.network import map_network
from imcsim.nn import functional as xf
from imcsim.nn import mvm, mvm_convs
from imcsim.nn.crossbar import CrossbarConfig, CrossbarConv2d, to_crossbar

# (C_in, C_out, kernel, input, stride, padding, groups, mapper, rows, cols): window copies
# with channel gathers and two row tiles; a grouped layer on SDK.
CASES = [(5, 4, 3, 7, 1, 1, 1, "vw-sdk", 48, 64), (6, 6, 3, 6, 1, 1, 3, "sdk", 24, 48)]


def converted(case, sign: str, slicing: str, dtype=torch.float64, **cfg):
    c_in, c_out, k, size, stride, pad, groups, mapper, rows, cols = case
    torch.manual_seed(3)
    conv = nn.Conv2d(c_in, c_out, k, stride=stride, padding=pad, groups=groups).to(dtype)
    shape = LayerShape.conv2d(c_in, c_out, k, size, stride=stride, padding=pad, groups=groups,
                              name="conv")
    array = ArrayConfig(rows=rows, cols=cols, cell_bits=2, weight_bits=5, sign=sign)
    chip = ChipConfig(array=array,
                      precision=PrecisionConfig(input_bits=5, dac_bits=2, adc_bits=3))
    report = map_network([shape], mapper, chip)
    config = CrossbarConfig(slicing=slicing, **cfg)
    return conv, report, chip, config, to_crossbar(Wrap(conv), report, config)


class Spy:
    """Counts int8 convolutions and ADC calls (to know which path ran)."""

    def __init__(self, monkeypatch) -> None:
        self.qconv = self.adc = 0
        real_qconv, real_adc = mvm_convs._qconv, CrossbarConv2d._adc

        def qconv(*args):
            self.qconv += 1
            return real_qconv(*args)

        def adc(layer, v, copy):
            self.adc += 1
            return real_adc(layer, v, copy)

        monkeypatch.setattr(mvm_convs, "_qconv", qconv)
        monkeypatch.setattr(CrossbarConv2d, "_adc", adc)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("sign,slicing", [("offset", "full"), ("differential", "full"),
                                          ("offset", "none")])
def test_every_path_equals_reference_and_float_path(case, sign, slicing, monkeypatch) -> None:
    spy = Spy(monkeypatch)
    gen = torch.Generator().manual_seed(0)
    size = case[3]
    for x in (torch.randn(2, case[0], size, size, generator=gen, dtype=torch.float64),
              torch.rand(2, case[0], size, size, generator=gen, dtype=torch.float64)):
        conv, report, chip, config, _ = converted(case, sign, slicing)
        want = reference(conv, report.mappings[0], chip, config, x)
        outputs = {}
        for int8 in (True, False):
            for group in (1, 2**30):  # one input slice per group / every slice at once
                monkeypatch.setattr(mvm_convs, "int8_available", lambda int8=int8: int8)
                monkeypatch.setattr(mvm, "GROUP_ELEMENTS", group)
                spy.qconv = spy.adc = 0
                sim = converted(case, sign, slicing)[-1]
                outputs[int8, group] = sim(x)
                layer = sim.conv
                signed_whole = slicing == "none" and bool((x < 0).any())
                assert (spy.qconv > 0) == (int8 and mvm_convs.int8_available() and not signed_whole)
                lay, streamed = layer.layout, int8 and group == 1 and not signed_whole
                slices = 1 if slicing == "none" else (4 if bool((x < 0).any()) else 3)
                out = xf.output_size((size, size), lay.kernel, lay.stride, lay.padding,
                                     lay.dilation)
                block_rows = -(-out[0] // lay.window[0])
                # streamed: one ADC call per input slice and output block row (band)
                assert spy.adc == lay.window[0] * lay.window[1] * (
                    slices * block_rows if streamed else 1)
        for got in outputs.values():
            assert torch.allclose(got, want, atol=1e-9, rtol=1e-9)
            assert torch.equal(got, outputs[False, 2**30])  # bit for bit the float path


def test_float32_int8_path_is_bit_identical_to_float_path(monkeypatch) -> None:
    x = torch.rand(3, 5, 7, 7, generator=torch.Generator().manual_seed(1))
    got = converted(CASES[0], "offset", "full", torch.float32)[-1](x)
    monkeypatch.setattr(mvm_convs, "int8_available", lambda: False)
    monkeypatch.setattr(mvm, "GROUP_ELEMENTS", 2**30)
    assert torch.equal(got, converted(CASES[0], "offset", "full", torch.float32)[-1](x))


def test_noisy_cells_take_the_float_path_and_read_noise_sees_every_slice(monkeypatch) -> None:
    spy = Spy(monkeypatch)
    x = torch.rand(2, 5, 7, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    sim = converted(CASES[0], "offset", "full", programming_noise=0.05)[-1]
    sim(x)
    assert not sim.conv.cells().integer and spy.qconv == 0
    outputs = []
    for group in (1, 2**30):  # streaming is off with a read-time non-ideality
        monkeypatch.setattr(mvm, "GROUP_ELEMENTS", group)
        spy.qconv = spy.adc = 0
        sim = converted(CASES[0], "offset", "full", read_noise=0.1, seed=4)[-1]
        outputs.append(sim(x))
        copies = sim.conv.layout.window[0] * sim.conv.layout.window[1]
        assert spy.qconv > 0 and spy.adc == copies  # int8 cells, one ADC call per copy
    assert torch.equal(outputs[0], outputs[1])  # the same draws whatever the group size
    monkeypatch.setattr(mvm_convs, "int8_available", lambda: False)
    float_path = converted(CASES[0], "offset", "full", read_noise=0.1, seed=4)[-1](x)
    assert torch.allclose(outputs[0], float_path, atol=1e-9)  # the spread of the int8 path


def test_read_noise_spread_on_the_int8_path_with_padding_and_strides(monkeypatch) -> None:
    x = torch.rand(2, 6, 6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    noisy = converted(CASES[1], "offset", "full", read_noise=0.1, seed=4)[-1]
    got = noisy(x)
    assert noisy.conv.cells().integer
    monkeypatch.setattr(mvm_convs, "int8_available", lambda: False)
    want = converted(CASES[1], "offset", "full", read_noise=0.1, seed=4)[-1](x)
    assert torch.allclose(got, want, atol=1e-9)
