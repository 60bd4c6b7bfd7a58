"""Cycle simulator: exact cycle counts for every mapper, an independent counter,
agreement with the analytic events, real activations, hooks and the CLI."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from torch import nn

from imcsim.cost import analytic_events, with_cost
from imcsim.cyclesim import (
    layer_program,
    quantize,
    simulate_activations,
    simulate_layer,
)
from imcsim.errors import ConfigError, ImcsimError, MappingError
from imcsim.hardware import ArrayConfig, ChipConfig, PrecisionConfig, load_chip
from imcsim.layers import LayerShape
from imcsim.mappers import get_mapper, mapper_names
from imcsim.network import map_network
from imcsim.nn.activations import capture_activations
from imcsim.nn.extract import extract_layers
from imcsim.nn.simulate import simulate_network
from imcsim.zoo.workloads import model_workload

from cli_helpers import run

ISAAC_COST = load_chip("isaac").cost


def reference_counts(m, q: np.ndarray, slices: int, dac_bits: int, analog: bool) -> np.ndarray:
    """Count events by explicit input coordinates and bounds checks (no flattening)."""
    layer, tiles = m.layer, m.placement.tiles
    (o_h, o_w), (a_h, a_w) = layer.output_size, m.window
    (s_h, s_w), (p_h, p_w) = layer.stride, layer.padding
    n, _, h, w = q.shape
    out = np.zeros((n, 5), dtype=np.int64)
    for wy in range(-(-o_h // a_h)):
        for wx in range(-(-o_w // a_w)):
            for t in tiles:
                c, dy, dx = t.rows.T
                y, x = wy * a_h * s_h - p_h + dy, wx * a_w * s_w - p_w + dx
                inside = (y >= 0) & (y < h) & (x >= 0) & (x < w)
                values = np.zeros((n, len(c)), dtype=np.int64)
                values[:, inside] = q[:, c[inside], y[inside], x[inside]]
                cols = len(t.cols) * m.array.cols_per_weight
                signals = len(t.cols) if analog else cols
                for k in range(slices):
                    rows = (((values >> (k * dac_bits)) & ((1 << dac_bits) - 1)) != 0).sum(axis=1)
                    out[:, 0] += rows > 0
                    out[:, 1] += 1
                    out[:, 2] += rows
                    out[:, 3] += rows * cols
                    out[:, 4] += (rows > 0) * signals
    return out


@st.composite
def tiny_case(draw):
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    cin, cout = groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 3))
    k = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    try:
        layer = LayerShape.conv2d(
            cin, cout, k, (draw(st.integers(2, 8)), draw(st.integers(2, 8))),
            stride=(draw(st.integers(1, 3)), draw(st.integers(1, 3))),
            padding=(draw(st.integers(0, 2)), draw(st.integers(0, 2))),
            dilation=(draw(st.integers(1, 2)), 1), groups=groups, name="tiny",
        )
    except ConfigError:
        assume(False)
    if draw(st.booleans()):  # a pruned weight mask (zero filters, channels and taps)
        seed = draw(st.integers(0, 2**31))
        layer = layer.with_mask(np.random.default_rng(seed).random(layer.weight_shape) < 0.6)
        assume(layer.nonzero_params > 0)
    weight_bits = draw(st.integers(1, 4))
    array = ArrayConfig(
        rows=draw(st.integers(4, 24)), cols=draw(st.integers(8, 24)), weight_bits=weight_bits,
        cell_bits=draw(st.integers(1, weight_bits)), sign=draw(st.sampled_from(["offset", "differential"])),
    )
    bits = draw(st.integers(1, 6))
    precision = PrecisionConfig(input_bits=bits, dac_bits=draw(st.integers(1, bits)))
    cost = ISAAC_COST.model_copy(update={"adc": ISAAC_COST.adc.model_copy(
        update={"weight_combine": draw(st.sampled_from(["digital", "analog"]))})})
    return layer, ChipConfig(array=array, precision=precision, cost=cost), draw(st.integers(0, 2**31))


def mappings_of(layer: LayerShape, array: ArrayConfig):
    for name in mapper_names():
        try:
            yield get_mapper(name).map(layer, array)
        except ImcsimError:
            continue


def relu_inputs(m, seed: int, images: int = 2) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (images, m.layer.in_channels, *m.layer.input_size)
    return np.maximum(rng.standard_normal(shape), 0)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(tiny_case())
def test_every_mapper_exact_cycles_and_reference_counts(case) -> None:
    layer, chip, seed = case
    p, analog = chip.precision, chip.cost.adc.weight_combine == "analog"
    for m in mappings_of(layer, chip.array):
        x = relu_inputs(m, seed)
        off = simulate_layer(m, x, chip, skip_zero_slices=False)
        assert (off.counts[:, 1] == m.cycles * p.input_slices).all(), m.mapper
        assert off.cost.events.stage_cycles == m.cycles * p.input_slices
        on = simulate_layer(m, x, chip)
        assert (on.counts[:, 0] <= on.counts[:, 1]).all()
        q, _ = quantize(x, p.input_bits)
        ref = reference_counts(m, q, p.input_slices, p.dac_bits, analog)
        np.testing.assert_array_equal(on.counts, ref, err_msg=m.mapper)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(tiny_case())
def test_full_inputs_reach_the_analytic_events(case) -> None:
    # Every input at its maximum drives every row in every slice: with no padding and
    # windows that tile the output exactly, the simulator must meet the analytic bound.
    layer, chip, _ = case
    assume(layer.padding == (0, 0) and layer.nonzero is None)
    checked = 0
    for m in mappings_of(layer, chip.array):
        (o_h, o_w), (a_h, a_w) = layer.output_size, m.window
        if o_h % a_h or o_w % a_w:
            continue
        x = np.ones((1, layer.in_channels, *layer.input_size))
        sim, ana = simulate_layer(m, x, chip).cost.events, analytic_events(m, chip)
        assert sim.stage_cycles == ana.stage_cycles
        assert sim.dac_activations == ana.dac_activations
        assert sim.cell_reads == pytest.approx(ana.cell_reads)
        assert sim.adc_conversions == pytest.approx(ana.adc_conversions)
        checked += 1
    assert checked > 0  # im2col's 1x1 window always tiles the output


@pytest.fixture(scope="module")
def resnet20_layers():
    return model_workload("resnet20").layers


@pytest.fixture(scope="module")
def costed_default() -> ChipConfig:
    return with_cost(load_chip("default"), "isaac")


def test_resnet20_every_layer_every_mapper(resnet20_layers, costed_default) -> None:
    slices = costed_default.precision.input_slices
    for name in mapper_names():
        mapper = get_mapper(name)
        for layer in resnet20_layers:
            m = mapper.map(layer, costed_default.array)
            x = relu_inputs(m, seed=len(layer.name), images=1)
            counts = simulate_layer(m, x, costed_default, skip_zero_slices=False).counts
            assert counts[0, 1] == m.cycles * slices, (name, layer.name)
            assert counts[0, 0] <= counts[0, 1]


def test_resnet20_real_images_skip_measurably(costed_default) -> None:
    from imcsim.zoo.checkpoints import load_model, model_inputs

    model, _ = load_model("resnet20")
    images, _, described = model_inputs("resnet20", 1)
    assert "images" in described
    report = map_network(extract_layers(model, images).layers, "vw-sdk", costed_default)
    total = simulate_network(model, report, images, costed_default).total()
    assert total["cycles_no_skip"] == total["analytic_cycles"] == report.cycles * 8
    assert total["cycles"] < 0.95 * total["cycles_no_skip"]
    assert total["energy_pj"] < total["analytic_energy_pj"]
    assert total["latency_ns"] < total["analytic_latency_ns"]


def test_quantize_unsigned_and_offset() -> None:
    q, enc = quantize(np.array([0.0, 0.5, 1.0]), 2)
    assert enc == "unsigned" and q.tolist() == [0, 2, 3]  # round(0.5 * 3) = 2
    q, enc = quantize(np.array([-1.0, 0.0, 1.0]), 3)
    assert enc == "offset" and q.tolist() == [0, 4, 7]  # round(0.5 * 7) = 4
    assert quantize(np.zeros(4), 4)[0].tolist() == [0, 0, 0, 0]
    with pytest.raises(ConfigError, match="input_bits=0"):
        quantize(np.ones(2), 0)


def test_program_window_origins_match_padding() -> None:
    layer = LayerShape.conv2d(1, 1, 3, 5, stride=2, padding=1)
    m = get_mapper("im2col").map(layer, ArrayConfig(rows=16, cols=16))
    prog = layer_program(m)
    assert prog.grid == (1, 7, 7)  # 5 + 2·1; the last window (origin 4, patch 3) ends at 6
    assert prog.bases.tolist() == [y * 7 + x for y in (0, 2, 4) for x in (0, 2, 4)]


def test_wrong_activation_shape_names_layer(costed_default) -> None:
    layer = LayerShape.conv2d(2, 2, 3, 6, padding=1, name="c1")
    m = get_mapper("im2col").map(layer, costed_default.array)
    with pytest.raises(MappingError, match="'c1'.*expected"):
        simulate_layer(m, np.zeros((1, 3, 6, 6)), costed_default)


class TwoLayer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.fc = nn.Linear(4 * 6 * 6, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv(x)).flatten(1))


def test_capture_shapes_and_hooks_removed() -> None:
    model = TwoLayer()
    acts = capture_activations(model, torch.randn(2, 3, 6, 6), ["conv", "fc"])
    assert acts["conv"].shape == (2, 3, 6, 6)
    assert acts["fc"].shape == (2, 144, 1, 1)
    assert (acts["fc"] >= 0).all()
    assert all(not m._forward_hooks for m in model.modules())
    with pytest.raises(MappingError, match="nope"):
        capture_activations(model, torch.randn(1, 3, 6, 6), ["nope"])
    assert all(not m._forward_hooks for m in model.modules())


def test_pruned_channel_gets_no_row_and_the_model_inputs_stay_whole(costed_default) -> None:
    model = TwoLayer()
    with torch.no_grad():
        model.conv.weight[:, 1] = 0  # input channel 1 pruned away
    x = torch.rand(2, 3, 6, 6)
    report = map_network(extract_layers(model, x).layers, "pruned-sdk", costed_default)
    mapping = report.mappings[0]
    assert mapping.layer.in_channels == 3 and list(mapping.layout.kept_channels) == [0, 2]
    placed = np.concatenate([t.rows[:, 0] for t in mapping.placement.tiles])
    assert set(placed.tolist()) == {0, 2}
    total = simulate_network(model, report, x, costed_default).total()
    assert total["cycles_no_skip"] == report.cycles * costed_default.precision.input_slices


def test_cli_simulate_json(capsys) -> None:
    res = run(capsys, "simulate", "--model", "resnet20", "--array", "128x128", "--mapper",
              "vw-sdk", "--images", "2", "--format", "json")
    assert res.code == 0, res.err
    data = res.json()
    total = data["total"]
    assert total["cycles"] <= total["cycles_no_skip"] == total["analytic_cycles"]
    assert total["images"] == 2 and len(total["cycles_per_image"]) == 2
    assert total["cycles"] == pytest.approx(np.mean(total["cycles_per_image"]))
    assert "images" in data["inputs"] and "weights" in data["weights"]
    assert all(r["cycles"] <= r["cycles_no_skip"] for r in data["layers"])


def test_cli_simulate_bad_images(capsys) -> None:
    res = run(capsys, "simulate", "--model", "resnet20", "--array", "128x128", "--images", "0")
    assert res.code == 2 and "--images" in res.err and "\n" not in res.err.strip()


def test_uneven_group_sets_cell_reads(costed_default) -> None:
    # 3 groups of a 3x3 depthwise conv, 9 rows each, on 20-row arrays: 2 groups share
    # one array, the third sits alone.  Cell reads per window and slice:
    # (2·9 rows × 2 columns) + (9 rows × 1 column) = 45, not the mean tile's 27·3/2.
    array = ArrayConfig(rows=20, cols=8)
    chip = costed_default.model_copy(update={"array": array})
    layer = LayerShape.conv2d(3, 3, 3, 5, groups=3)
    m = get_mapper("im2col").map(layer, array)
    assert (m.layout.groups_per_tile, m.tiles, m.windows) == (2, 2, 9)
    slices = chip.precision.input_slices
    assert analytic_events(m, chip).cell_reads == 45 * 9 * slices
    sim = simulate_layer(m, np.ones((1, 3, 5, 5)), chip).cost.events
    assert sim.cell_reads == 45 * 9 * slices


def test_low_rank_factor_pairs_exact_cycles(costed_default) -> None:
    r = LayerShape.conv2d(8, 3, 3, 10, padding=1, name="r").model_copy(
        update={"factor_of": "c", "factor_role": "R"})
    l_ = LayerShape.conv2d(3, 8, 1, 10, name="l").model_copy(
        update={"factor_of": "c", "factor_role": "L"})
    slices = costed_default.precision.input_slices
    for name in ("low-rank-sdk", "low-rank-vw-sdk"):
        report = map_network([r, l_], name, costed_default)
        acts = {m.layer.name: relu_inputs(m, seed=1) for m in report.mappings}
        total = simulate_activations(report, acts, costed_default, skip_zero_slices=False).total()
        assert total["cycles_no_skip"] == report.cycles * slices
        assert total["cycles"] <= total["cycles_no_skip"]
