"""Cost model: presets against the papers, hand-counted events, monotonicity, errors."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest

from imcsim.cost import analytic_events, estimate, estimate_network, stage_ns, with_cost
from imcsim.errors import ConfigError
from imcsim.hardware import ChipConfig, PrecisionConfig, load_chip
from imcsim.layers import LayerShape
from imcsim.mappers import get_mapper
from imcsim.network import map_network
from imcsim.periphery import AdcConfig

from cli_helpers import run

ISAAC = load_chip("isaac")

# ISAAC Table I (Shafiee et al., ISCA 2016), per IMA of 8 arrays, power in mW:
# ADC 16, DAC 4, S+H 0.01, memristor arrays 2.4, S+A 0.2, IR 1.24, OR 0.23.
ISAAC_IMA_MW = 16 + 4 + 0.01 + 2.4 + 0.2 + 1.24 + 0.23  # = 24.08
ISAAC_IMA_AREA_UM2 = 0.157e6 / 12  # 12 IMAs take 0.157 mm²
ISAAC_TILE_MW, ISAAC_TILE_AREA_UM2 = 330.0, 0.372e6  # one tile: 12 IMAs = 96 arrays
# Tile rows whose power the event model does not cover (not crossbar work):
# router 42/4, sigmoid 0.52, tile S+A 0.05, max-pool 0.4, tile OR 1.68 (mW).
ISAAC_UNMODELLED_MW = 42 / 4 + 0.52 + 0.05 + 0.4 + 1.68
EDRAM_BUS_PJ_PER_BIT = (20.7 + 7.0) * 100 / (96 * (128 + 16))  # mW × 100 ns / bits per stage


def full_array(chip: ChipConfig, rows: int, outputs: int):
    """One array filled exactly (a Linear layer), run over 10 positions."""
    m = get_mapper("im2col").map(LayerShape.linear(rows, outputs, positions=10), chip.array)
    assert m.tiles == 1 and m.utilization == 1.0
    return m, estimate(m, chip)


def test_isaac_reproduces_table_i_power_and_area() -> None:
    _, cost = full_array(ISAAC, 128, 16)  # 16 16-bit weights × 8 columns = 128 columns
    array_mw = cost.energy_pj / cost.latency_ns  # pJ/ns = mW, one busy array
    edram_bus_pj = (cost.events.input_bits + cost.events.output_bits) * EDRAM_BUS_PJ_PER_BIT
    ima_mw = 8 * (cost.energy_pj - edram_bus_pj) / cost.latency_ns
    assert ima_mw == pytest.approx(ISAAC_IMA_MW, rel=0.01)
    tile_mw = 96 * array_mw  # ≈ 316.7 mW: 12 × 24.08 + 20.7 + 7
    assert tile_mw == pytest.approx(ISAAC_TILE_MW, rel=0.10)
    assert tile_mw + ISAAC_UNMODELLED_MW == pytest.approx(ISAAC_TILE_MW, rel=0.01)
    a = cost.area_breakdown_um2
    ima_area = 8 * sum(a[k] for k in ("arrays", "adc", "sample_hold", "dac", "shift_add", "registers"))
    assert ima_area == pytest.approx(ISAAC_IMA_AREA_UM2, rel=0.01)
    assert 96 * cost.area_um2 == pytest.approx(ISAAC_TILE_AREA_UM2, rel=0.01)


def test_isaac_chip_efficiency_matches_table_iv() -> None:
    # 168 tiles + HyperTransport (10.4 W) at full activity vs ISAAC-CE's 627.5 GOPS/W.
    _, cost = full_array(ISAAC, 128, 16)
    arrays = 168 * 96
    ops_per_s = arrays * 2 * cost.macs / (cost.latency_ns * 1e-9)
    watts = arrays * cost.energy_pj / cost.latency_ns * 1e-3 + 168 * ISAAC_UNMODELLED_MW * 1e-3 + 10.4
    assert ops_per_s / watts / 1e9 == pytest.approx(627.5, rel=0.02)


def test_isaac_stage_is_the_100ns_read() -> None:
    m, _ = full_array(ISAAC, 128, 16)
    assert stage_ns(m, ISAAC) == pytest.approx(100.0)  # max(100 ns read, 128 × 0.78125 ns)


def test_wang_macro_reproduces_tops_per_w_and_area() -> None:
    chip = load_chip("wang2022")
    _, cost = full_array(chip, 64, 16)  # one activation: 64 rows × 16 8-bit weights
    assert cost.tops_per_w == pytest.approx(32.2, rel=0.01)  # Table III, 0.7 V
    assert cost.tops == pytest.approx(0.3, rel=0.01)  # Fig. 23, 0.7 V
    assert 8 * cost.area_um2 == pytest.approx(0.124e6, rel=0.01)  # 8 row groups = 1 macro
    share = cost.energy_breakdown_pj["adc"] / cost.energy_pj
    assert share == pytest.approx(0.34, abs=0.01)  # Fig. 22a


def test_adc_scaling_follows_isaac_table() -> None:
    # ISAAC's scaled 32 nm SAR ADC (hwcomponents-library isaac.py), 4..10 bits.
    energy = {4: 0.79, 5: 0.99, 6: 1.20, 7: 1.42, 8: 1.67, 9: 1.969, 10: 2.379}
    area = {4: 361.04, 5: 476.91, 6: 626.91, 7: 845.18, 8: 1200.0, 9: 1827.9, 10: 3002.0}
    adc = ISAAC.cost.adc
    for bits in energy:
        ratio = adc.energy_at(bits) / adc.energy_at(8)
        assert ratio == pytest.approx(energy[bits] / energy[8], rel=0.01)
        assert adc.area_at(bits) == pytest.approx(area[bits], rel=0.001)
    assert adc.conversion_at(4) == pytest.approx(adc.conversion_ns / 2)


def conv_isaac():
    layer = LayerShape.conv2d(16, 16, 3, 8, padding=1, name="c")
    return get_mapper("im2col").map(layer, ISAAC.array)


def test_hand_counted_events_and_latency() -> None:
    # 3x3 16->16 on 8x8 (pad 1), im2col: 144 rows -> 2 row tiles, 16 weights × 8
    # columns = 128 columns -> 1 column tile; 64 windows; 16 one-bit input slices.
    m = conv_isaac()
    assert (m.windows, m.tiles, m.row_tiles) == (64, 2, 2)
    e = analytic_events(m, ISAAC)
    assert e.stage_cycles == 64 * 2 * 16
    assert e.dac_activations == 64 * 144 * 16
    assert e.cell_reads == 64 * 144 * 128 * 16
    assert e.adc_conversions == 64 * 2 * 128 * 16
    assert e.accumulations == 64 * (2 * 16 - 16)
    assert (e.input_bits, e.output_bits) == (64 * 144 * 16, 64 * 16 * 16)
    cost = estimate(m, ISAAC)
    assert cost.latency_ns == pytest.approx(2048 * 100 + 64 * 1 * 0.8333333333)
    assert cost.energy_breakdown_pj["adc"] == pytest.approx(64 * 2 * 128 * 16 * 1.5625)
    assert cost.energy_breakdown_pj["index"] == 0
    assert cost.area_breakdown_um2["arrays"] == 2 * 25.0
    assert cost.tops_per_w == pytest.approx(2 * m.layer.macs / cost.energy_pj)


def with_adc(chip: ChipConfig, **update) -> ChipConfig:
    adc = chip.cost.adc.model_copy(update=update)
    return chip.model_copy(update={"cost": chip.cost.model_copy(update={"adc": adc})})


def test_more_adc_bits_cost_more() -> None:
    m = conv_isaac()
    costs = [
        estimate(m, ISAAC.model_copy(update={"precision": PrecisionConfig(input_bits=16, adc_bits=b)}))
        for b in range(4, 11)
    ]
    for low, high in zip(costs, costs[1:], strict=False):
        assert high.energy_breakdown_pj["adc"] > low.energy_breakdown_pj["adc"]
        assert high.energy_pj > low.energy_pj
        assert high.area_breakdown_um2["adc"] > low.area_breakdown_um2["adc"]
        assert high.latency_ns >= low.latency_ns


@pytest.mark.parametrize("overlap", [True, False])
def test_sharing_an_adc_lowers_area_raises_latency(overlap: bool) -> None:
    m = conv_isaac()
    shares = [1, 2, 4, 8, 16, 32, 64, 128]
    costs = [estimate(m, with_adc(ISAAC, cols_per_adc=s, overlap_read=overlap)) for s in shares]
    for low, high in zip(costs, costs[1:], strict=False):
        assert high.area_um2 < low.area_um2
        assert high.latency_ns >= low.latency_ns
    if overlap:  # conversions hide behind the 100 ns read until 128 × 0.78 ns
        assert costs[-1].latency_ns == costs[0].latency_ns
        slow = with_adc(ISAAC, cols_per_adc=128, conversion_ns=1.0)
        assert estimate(m, slow).latency_ns > costs[-1].latency_ns
    else:
        assert all(h.latency_ns > lo.latency_ns for lo, h in zip(costs, costs[1:], strict=False))


def test_row_skipping_saves_array_energy_but_pays_index_logic() -> None:
    dense = conv_isaac()
    skipped, routed = 40, 104  # per window: 40 all-zero rows left out, 104 rows routed
    pruned = replace(dense, skipped_rows=skipped, index_rows=routed,  # one 128-column tile
                     driven_rows=dense.driven_rows - skipped,
                     cell_slots=dense.cell_slots - skipped * 128)
    d, p = estimate(dense, ISAAC), estimate(pruned, ISAAC)
    assert p.energy_breakdown_pj["cells"] < d.energy_breakdown_pj["cells"]
    assert p.energy_breakdown_pj["dac"] < d.energy_breakdown_pj["dac"]
    assert d.energy_breakdown_pj["index"] == 0 < p.energy_breakdown_pj["index"]
    assert p.energy_breakdown_pj["index"] == pytest.approx(64 * routed * 16 * 0.12109375)
    assert p.area_breakdown_um2["index"] == pytest.approx(routed * 2.05078125)
    assert p.area_um2 > d.area_um2


def test_pruned_mapper_on_masked_layer() -> None:
    import numpy as np

    layer = LayerShape.conv2d(16, 16, 3, 8, padding=1, name="c")
    mask = np.ones(layer.weight_shape, dtype=bool)
    mask[:, :6] = False  # 6 input channels pruned entirely, ...
    mask[:, 6:, 0, :] = False  # ... and the top kernel row of the others
    layer = layer.with_mask(mask)
    dense = estimate(get_mapper("sdk").map(layer, ISAAC.array), ISAAC)
    pruned_map = get_mapper("pruned-sdk").map(layer, ISAAC.array)
    pruned = estimate(pruned_map, ISAAC)
    assert pruned_map.index_rows > 0
    assert pruned.energy_breakdown_pj["cells"] < dense.energy_breakdown_pj["cells"]
    assert pruned.energy_breakdown_pj["index"] > 0 == dense.energy_breakdown_pj["index"]


def test_network_schedules() -> None:
    layers = [LayerShape.conv2d(8, 16, 3, 12, padding=1, name="a"),
              LayerShape.conv2d(16, 16, 3, 12, padding=1, stride=2, name="b"),
              LayerShape.linear(16 * 36, 10, name="fc")]
    report = map_network(layers, "vw-sdk", ISAAC)
    seq = estimate_network(report).total()
    pip = estimate_network(report, ISAAC, schedule="pipelined").total()
    per_layer = [estimate(m, ISAAC) for m in report.mappings]
    assert seq["schedule"] == "sequential" and pip["schedule"] == "pipelined"
    assert seq["latency_ns"] == pytest.approx(sum(c.latency_ns for c in per_layer))
    assert seq["interval_ns"] == seq["latency_ns"]
    assert pip["interval_ns"] == pytest.approx(max(c.latency_ns for c in per_layer))
    assert pip["bottleneck"] == max(per_layer, key=lambda c: c.latency_ns).name
    assert pip["tops"] > seq["tops"] and pip["energy_pj"] == pytest.approx(seq["energy_pj"])
    assert sum(seq["energy_breakdown_pj"].values()) == pytest.approx(seq["energy_pj"])
    assert seq["area_um2"] == pytest.approx(sum(c.area_um2 for c in per_layer))
    rows = estimate_network(report).rows()
    assert [r["energy_pj"] for r in rows] == pytest.approx([c.energy_pj for c in per_layer])


@pytest.mark.parametrize(
    ("build", "pattern"),
    [
        (lambda: with_adc(ISAAC, cols_per_adc=0), r"cols_per_adc.*\(got 0\)"),
        (lambda: AdcConfig(**{**ISAAC.cost.adc.model_dump(), "energy_pj": -1.0}),
         r"energy_pj.*\(got -1\.0\)"),
        (lambda: AdcConfig(**{**ISAAC.cost.adc.model_dump(), "area_exp_fraction": 1.5}),
         r"area_exp_fraction.*1\.5"),
        (lambda: PrecisionConfig(input_bits=0), r"input_bits.*\(got 0\)"),
        (lambda: PrecisionConfig(input_bits=2, dac_bits=4), r"dac_bits=4 exceeds input_bits=2"),
        (lambda: estimate(conv_isaac(), ISAAC.model_copy(update={"cost": None})),
         r"'isaac' has no \[cost\]"),
        (lambda: estimate(conv_isaac(), load_chip("wang2022")), r"mapped on 128x128 \(2-bit.*64x128"),
        (lambda: estimate_network(map_network([conv_isaac().layer], "im2col", ISAAC), schedule="x"),
         r"schedule='x'"),
    ],
)
def test_bad_configurations(build, pattern: str) -> None:
    with pytest.raises(ConfigError, match=pattern) as info:
        chip = build()
        if isinstance(chip, ChipConfig):  # model_copy skips validation: re-validate
            ChipConfig.parse(chip.model_dump())
    assert "\n" not in str(info.value)


def test_bad_preset_file_names_field(tmp_path: Path) -> None:
    text = (Path(__file__).parents[1] / "mappings/chips/isaac.toml").read_text()
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace("cols_per_adc = 128", "cols_per_adc = 0"))
    with pytest.raises(ConfigError, match=r"bad\.toml: cost\.adc\.cols_per_adc.*\(got 0\)"):
        load_chip(bad)
    bad.write_text(text.replace("read_energy_pj = 0.0018310546875", "read_energy_pj = -2"))
    with pytest.raises(ConfigError, match=r"cost\.cell\.read_energy_pj.*-2"):
        load_chip(bad)


def test_presets_load_with_costs() -> None:
    for name in ("isaac", "wang2022"):
        chip = load_chip(name)
        assert chip.cost is not None and chip.cost.source
    assert (ISAAC.array.rows, ISAAC.array.cols, ISAAC.array.cell_bits) == (128, 128, 2)
    assert ISAAC.array.cols_per_weight == 8 and ISAAC.precision.input_slices == 16
    assert with_cost(load_chip("default"), "isaac").cost == ISAAC.cost
    assert math.isclose(ISAAC.cost.adc.energy_at(8), 16 / 8 * 100 / 128)  # 2 mW × 100 ns / 128


def test_cli_map_cost_json(capsys) -> None:
    res = run(capsys, "map", "--model", "resnet20", "--array", "128x128", "--mapper", "vw-sdk",
              "--cost", "isaac", "--format", "json")
    assert res.code == 0, res.err
    data = res.json()
    keys = ("latency_ns", "energy_pj", "area_um2")
    assert all(data["total"][k] > 0 for k in keys)
    assert all(all(row[k] > 0 for k in keys) for row in data["layers"])
    assert data["total"]["energy_pj"] == pytest.approx(sum(r["energy_pj"] for r in data["layers"]))
    assert data["total"]["schedule"] == "sequential"
    res = run(capsys, "map", "--model", "resnet20", "--array", "128x128", "--cost", "isaac",
              "--schedule", "pipelined", "--format", "json")
    assert res.json()["total"]["interval_ns"] < data["total"]["interval_ns"]
    res = run(capsys, "map", "--model", "resnet20", "--array", "128x128", "--schedule", "pipelined")
    assert res.code == 2 and "--cost" in res.err
