"""Functional crossbar simulation: ideal = float model, mapping-driven ADC reads, a slow
tile-by-tile reference, non-idealities, save/load, straight-through training."""

from __future__ import annotations

import io
import math
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from imcsim.errors import ConfigError, MappingError
from imcsim.hardware import ArrayConfig, ChipConfig, PrecisionConfig
from imcsim.layers import LayerShape
from imcsim.mappers import get_mapper, mapper_names
from imcsim.mappers.placement import kernel_taps, tile_weights
from imcsim.network import map_network
from imcsim.nn import functional as xf
from imcsim.nn.crossbar import CrossbarConfig, CrossbarConv2d, to_crossbar
from imcsim.nn.crossbar_config import resolve_settings
from imcsim.nn.extract import extract_layers


class Tiny(nn.Module):
    """Every geometry the mappers meet: bias, stride, dilation, depthwise, grouped, linear."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 12, 3, stride=2, padding=1, bias=False)
        self.dw = nn.Conv2d(12, 12, 3, padding=2, dilation=2, groups=12, bias=False)
        self.pw = nn.Conv2d(12, 16, 1, groups=4)
        self.fc = nn.Linear(16, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv1(x))
        x = self.pw(F.relu(self.dw(F.relu(self.conv2(x)))))
        return self.fc(x.mean(dim=(2, 3)))


def chip(rows: int = 32, cols: int = 32, **prec: int) -> ChipConfig:
    array = ArrayConfig(rows=rows, cols=cols, cell_bits=2, weight_bits=4)
    return ChipConfig(array=array, precision=PrecisionConfig(input_bits=4, dac_bits=2, **prec))


def tiny_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return Tiny().eval()


def images(n: int = 3, size: int = 9, seed: int = 1) -> torch.Tensor:
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def report_for(model: nn.Module, mapper: str, c: ChipConfig, x: torch.Tensor):
    return map_network(extract_layers(model, x[:1]).layers, mapper, c)


# ------------------------------------------------------------------ ideal == float model
@pytest.mark.parametrize("mapper", mapper_names())
def test_ideal_reproduces_float_model_for_every_mapper(mapper: str) -> None:
    model, x = tiny_model(), images()
    for rows in (16, 64):
        sim = to_crossbar(model, report_for(model, mapper, chip(rows, 48), x),
                          CrossbarConfig(ideal=True))
        assert (sim(x) - model(x)).abs().max().item() <= 1e-5


@pytest.mark.parametrize("groups", [1, 2])
def test_ideal_reproduces_factorized_models(groups: int) -> None:
    from imcsim.nn.compress import RankRule, low_rank

    model, x = tiny_model(), images()
    factored = low_rank(model, RankRule(keep=0.5), groups=groups,
                        exclude=["dw", "pw"] if groups > 1 else ()).model.eval()
    names = [n for n, m in factored.named_modules() if isinstance(m, nn.Conv2d)]
    assert any(n.endswith(".r") for n in names) and any(n.endswith(".l") for n in names)
    for mapper in ("low-rank-sdk", "low-rank-vw-sdk", "im2col"):
        sim = to_crossbar(factored, report_for(factored, mapper, chip(), x),
                          CrossbarConfig(ideal=True))
        assert (sim(x) - factored(x)).abs().max().item() <= 1e-5


@pytest.mark.parametrize("method", ["unstructured", "filter", "channel", "pattern"])
def test_ideal_reproduces_pruned_models(method: str) -> None:
    from imcsim.nn.compress import prune

    model, x = tiny_model(), images()
    pruned = prune(model, method, 0.6).model.eval()
    for mapper in ("pruned-im2col", "pruned-sdk"):
        report = report_for(pruned, mapper, chip(), x)
        sim = to_crossbar(pruned, report, CrossbarConfig(ideal=True))
        assert (sim(x) - pruned(x)).abs().max().item() <= 1e-5
    assert model.conv2.weight.count_nonzero() == model.conv2.weight.numel()  # original untouched


def test_skipped_rows_hold_no_weight_and_change_the_partition() -> None:
    conv = nn.Conv2d(6, 4, 3, padding=1, bias=False).double()
    with torch.no_grad():
        conv.weight[:, :, 0, :] = 0  # top kernel row pruned everywhere: rows become skippable
    shape = LayerShape.conv2d(6, 4, 3, 6, padding=1, name="conv").with_mask(
        (conv.weight != 0).numpy())
    array = ArrayConfig(rows=32, cols=64)
    dense = get_mapper("sdk").map(shape, array)
    skip_layout = replace(dense.layout, skip_zero_rows=True)
    skipping = skip_layout.placement(shape, array).to_mapping("sdk-skipping")
    part_dense = dense.placement.reduction_partition()
    part_skip = skipping.placement.reduction_partition()
    assert (part_dense >= 0).all()
    assert ((part_skip < 0) <= (conv.weight == 0).numpy()[None]).all()
    assert (part_skip < 0).any()
    model, x = Wrap(conv), torch.randn(2, 6, 6, 6, dtype=torch.float64)
    report = map_network([shape], "sdk", ArrayConfig(rows=32, cols=64))
    report = replace(report, mappings=(skipping,))
    sim = to_crossbar(model, report, CrossbarConfig(ideal=True))
    assert torch.allclose(sim(x), model(x), atol=1e-12)


# ------------------------------------------------------------------ slow reference
class Wrap(nn.Module):
    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        self.conv = conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def reference(conv: nn.Conv2d, mapping, c: ChipConfig, cfg: CrossbarConfig, x: torch.Tensor):
    """Loop over windows and tiles: one column sum per input slice and weight slice."""
    s = resolve_settings(c, cfg)
    layer, (a_h, a_w) = mapping.layer, mapping.window
    w = conv.weight.detach()
    signed = bool((x < 0).any())
    x_scale = x.abs().amax(dim=(1, 2, 3), keepdim=True) / xf.qmax(s.input_bits, signed)
    w_scale = w.abs().max() / xf.qmax(s.weight_bits, True)
    xq = xf.quantize(x, x_scale, s.input_bits, signed)
    q = xf.quantize(w, w_scale, s.weight_bits, True)
    if s.sliced:
        cells, w_coef, offset = xf.encode_weights(q, s.weight_bits, s.cell_bits, s.sign)
        xs, x_coef = xf.encode_inputs(xq, s.input_bits, s.dac_bits, signed)
        full = s.rows * (2**s.dac_bits - 1) * (2**s.cell_bits - 1)
    else:
        cells, w_coef, offset = q[None], torch.ones(1, dtype=x.dtype), 0.0
        xs, x_coef = xq[None], torch.ones(1, dtype=x.dtype)
        full = s.rows * xf.qmax(s.input_bits, False) * xf.qmax(s.weight_bits, True)
    if s.adc_step == "unit":  # a whole multiple or fraction of the unit current per step
        top = 2**s.adc_bits - 1 if s.sliced else xf.qmax(s.adc_bits, True)
        step = math.ceil(full / top) if full > top else 1 / math.floor(top / full)
        full = step * top
    (ph, pw), (sh, sw) = layer.padding, layer.stride
    oh, ow = xf.output_size(tuple(x.shape[-2:]), layer.kernel_size, layer.stride,
                            layer.padding, layer.dilation)
    big = F.pad(xs.flatten(0, 1), (pw, pw + 4 * a_w * sw + 8, ph, ph + 4 * a_h * sh + 8))
    big = big.view(len(xs), len(x), *big.shape[1:])
    out = torch.zeros(len(x), layer.out_channels, oh, ow, dtype=x.dtype)
    tiles = mapping.placement.tiles
    for wy in range(math.ceil(oh / a_h)):
        for wx in range(math.ceil(ow / a_w)):
            y0, x0 = wy * a_h * sh, wx * a_w * sw
            for tile in tiles:
                rows, cols = tile.rows, tile.cols
                xin = big[:, :, rows[:, 0], y0 + rows[:, 1], x0 + rows[:, 2]]
                acc = torch.zeros(len(x), len(cols), dtype=x.dtype)
                for k in range(len(cells)):
                    g = torch.from_numpy(tile_weights(layer, mapping.window, tile, cells[k].numpy()))
                    v = xf.adc(xin @ g, full, s.adc_bits, signed=not s.sliced)
                    acc += w_coef[k] * torch.einsum("s,snc->nc", x_coef, v)
                if offset:
                    valid = torch.from_numpy(kernel_taps(layer, mapping.window, rows, cols)[0])
                    acc -= offset * torch.einsum("s,snc->nc", x_coef, xin @ valid.to(x.dtype))
                for ci, (copy, f) in enumerate(cols):
                    oy, ox = wy * a_h + copy // a_w, wx * a_w + copy % a_w
                    if oy < oh and ox < ow:
                        out[:, f, oy, ox] += acc[:, ci]
    out = out * w_scale * x_scale
    return out if conv.bias is None else out + conv.bias.detach().view(1, -1, 1, 1)


REFERENCE_CASES = [
    # (C_in, C_out, kernel, input, stride, padding, groups, mapper, rows, cols)
    (5, 6, 3, 7, 1, 1, 1, "im2col", 16, 32),
    (5, 6, 3, 7, 1, 1, 1, "sdk", 40, 48),
    (5, 4, 3, 7, 1, 1, 1, "vw-sdk", 48, 64),
    (4, 6, 3, 8, 2, 1, 1, "vw-sdk", 40, 64),
    (6, 6, 3, 6, 1, 1, 3, "sdk", 24, 48),
    (4, 8, 1, 5, 1, 0, 1, "sdk-unconstrained", 16, 64),
]


@pytest.mark.parametrize("case", REFERENCE_CASES)
@pytest.mark.parametrize("sign,slicing,step", [
    ("offset", "full", "unit"), ("differential", "full", "unit"), ("offset", "none", "unit"),
    ("offset", "full", "exact")])
def test_vectorized_equals_tile_loop_reference(case, sign: str, slicing: str, step: str) -> None:
    c_in, c_out, k, size, stride, pad, groups, mapper, rows, cols = case
    torch.manual_seed(3)
    conv = nn.Conv2d(c_in, c_out, k, stride=stride, padding=pad, groups=groups).double()
    shape = LayerShape.conv2d(c_in, c_out, k, size, stride=stride, padding=pad, groups=groups,
                              name="conv")
    array = ArrayConfig(rows=rows, cols=cols, cell_bits=2, weight_bits=5, sign=sign)
    c = ChipConfig(array=array, precision=PrecisionConfig(input_bits=5, dac_bits=2, adc_bits=3))
    report = map_network([shape], mapper, c)
    cfg = CrossbarConfig(slicing=slicing, adc_step=step)
    model = Wrap(conv)
    for x in (torch.randn(2, c_in, size, size, dtype=torch.float64),
              torch.rand(2, c_in, size, size, dtype=torch.float64)):  # signed and unsigned inputs
        got = to_crossbar(model, report, cfg)(x)
        want = reference(conv, report.mappings[0], c, cfg, x)
        assert torch.allclose(got, want, atol=1e-9, rtol=1e-9)
        ideal = model(x)
        assert not torch.allclose(got, ideal, atol=1e-3)  # 3-bit ADC: not the float result


def test_more_row_tiles_mean_more_adc_error() -> None:
    """Same layer, weights, inputs, chip and ADC; only the mapping changes.  SDK's 2×2
    window splits each column's 144 weights over two row tiles, so every output is the sum
    of two coarse ADC reads instead of one: a few-bit ADC gives a larger error, a fine ADC
    makes the two mappings agree (what is left is weight/input quantization)."""
    torch.manual_seed(0)
    conv = nn.Conv2d(16, 8, 3, padding=1, bias=False)
    shape = LayerShape.conv2d(16, 8, 3, 6, padding=1, name="conv")
    x = torch.rand(8, 16, 6, 6)
    model, ideal = Wrap(conv), conv(x).detach()
    errors = {}
    for adc_bits in (5, 12):
        c = ChipConfig(array=ArrayConfig(rows=160, cols=256, cell_bits=2, weight_bits=8),
                       precision=PrecisionConfig(adc_bits=adc_bits))
        for mapper, row_tiles in (("im2col", 1), ("sdk-unconstrained", 2)):
            report = map_network([shape], mapper, c)
            assert report.mappings[0].row_tiles == row_tiles
            sim = to_crossbar(model, report, CrossbarConfig())
            assert sim.conv.layout.slots == row_tiles  # ADC reads per output and slice
            errors[adc_bits, mapper] = ((sim(x) - ideal).norm() / ideal.norm()).item()
    assert errors[5, "sdk-unconstrained"] > 1.2 * errors[5, "im2col"]
    assert errors[12, "im2col"] < 0.05 * errors[5, "im2col"]
    assert errors[12, "sdk-unconstrained"] < 1.2 * errors[12, "im2col"]


def test_adc_error_grows_as_bits_drop() -> None:
    model, x = tiny_model(), images(4)
    report = report_for(model, "vw-sdk", chip(48, 64), x)
    ideal = model(x)
    err = [((to_crossbar(model, report, CrossbarConfig(adc_bits=b, adc_range="calibrated"),
                         calibration=x)(x) - ideal).norm() / ideal.norm()).item()
           for b in (10, 6, 3)]
    assert err[0] < err[1] < err[2]


# ------------------------------------------------------------------ non-idealities
def test_noise_and_faults_are_seeded_and_grow_the_error() -> None:
    model, x = tiny_model(), images()
    report = report_for(model, "sdk", chip(48, 64, adc_bits=8), x)
    ideal = model(x)

    def run(**kw):
        return to_crossbar(model, report, CrossbarConfig(**kw))(x)

    assert torch.equal(run(programming_noise=0.1, seed=1), run(programming_noise=0.1, seed=1))
    assert not torch.equal(run(programming_noise=0.1, seed=1), run(programming_noise=0.1, seed=2))
    base = (run() - ideal).norm()
    assert base < (run(programming_noise=0.3) - ideal).norm()
    assert base < (run(stuck_off_rate=0.2) - ideal).norm()
    sim = to_crossbar(model, report, CrossbarConfig(read_noise=0.1))
    assert not torch.equal(sim(x), sim(x))  # fresh read noise at every MVM


@pytest.mark.parametrize("field", ["stuck_on_rate", "stuck_off_rate"])
def test_every_cell_stuck_cancels_in_differential_pairs(field: str) -> None:
    conv = nn.Conv2d(4, 3, 3, padding=1)
    shape = LayerShape.conv2d(4, 3, 3, 5, padding=1, name="conv")
    c = ChipConfig(array=ArrayConfig(rows=64, cols=64, cell_bits=2, weight_bits=4,
                                     sign="differential"))
    sim = to_crossbar(Wrap(conv), map_network([shape], "im2col", c), CrossbarConfig(**{field: 1.0}))
    out = sim(torch.rand(2, 4, 5, 5))
    assert torch.allclose(out, conv.bias.detach().view(1, -1, 1, 1).expand_as(out))


# ------------------------------------------------------------------ persistence, training
def test_state_dict_roundtrip_with_weights_only_load() -> None:
    model, x = tiny_model(), images()
    report = report_for(model, "vw-sdk", chip(48, 64), x)
    cfg = CrossbarConfig(adc_range="calibrated", input_range="calibrated", read_noise=0.05,
                         programming_noise=0.05)
    sim = to_crossbar(model, report, cfg, calibration=x)
    sim(x)
    buf = io.BytesIO()
    torch.save(sim.state_dict(), buf)
    expected = sim(x)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    fresh = to_crossbar(tiny_model(seed=5), report, cfg, calibration=images(seed=9))
    fresh.load_state_dict(state)
    assert torch.equal(fresh(x), expected)


def test_original_model_untouched_and_report_must_match() -> None:
    model, x = tiny_model(), images()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    report = report_for(model, "sdk", chip(), x)
    to_crossbar(model, report, CrossbarConfig())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(isinstance(m, (nn.Conv2d, nn.Linear)) for m in (model.conv1, model.fc))
    other = nn.Sequential(nn.Conv2d(3, 4, 3))
    with pytest.raises(MappingError, match="no mapping"):
        to_crossbar(other, report, CrossbarConfig())


@pytest.mark.parametrize("kwargs", [{"adc_bits": 0}, {"programming_noise": -0.1},
                                    {"stuck_on_rate": 0.7, "stuck_off_rate": 0.5},
                                    {"slicing": "half"}])
def test_bad_config_is_one_line_error(kwargs: dict) -> None:
    with pytest.raises(ConfigError) as err:
        CrossbarConfig(**kwargs)
    assert "\n" not in str(err.value)


def test_calibration_needs_images() -> None:
    model, x = tiny_model(), images()
    with pytest.raises(ConfigError, match="calibration"):
        to_crossbar(model, report_for(model, "sdk", chip(), x), CrossbarConfig(adc_range="calibrated"))


def test_straight_through_gradient_is_the_float_gradient() -> None:
    model, x = tiny_model(), images()
    sim = to_crossbar(model, report_for(model, "sdk", chip(), x), CrossbarConfig()).train()
    layer = sim.conv1
    assert isinstance(layer, CrossbarConv2d)
    xin = x.clone().requires_grad_(True)
    layer(xin).sum().backward()
    xref = x.clone().requires_grad_(True)
    F.conv2d(xref, layer.weight.detach(), layer.bias.detach(), padding=1).sum().backward()
    assert torch.allclose(xin.grad, xref.grad, atol=1e-6)
    assert layer.weight.grad is not None


def test_linear_over_token_positions() -> None:
    fc = nn.Linear(6, 4)
    x = torch.randn(2, 5, 6)
    shape = LayerShape.linear(6, 4, positions=5, name="conv")
    array = ArrayConfig(rows=32, cols=64)
    model = Wrap(fc)
    for mapper in ("im2col", "sdk-unconstrained"):
        sim = to_crossbar(model, map_network([shape], mapper, array), CrossbarConfig(ideal=True))
        assert torch.allclose(sim(x), fc(x), atol=1e-6)
    assert np.prod(map_network([shape], "sdk-unconstrained", array).mappings[0].window) >= 1
