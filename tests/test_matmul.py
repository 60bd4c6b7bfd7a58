"""Activation×activation products: both placements priced, chip TOML section, CLI switch."""

from __future__ import annotations

import math

import pytest

from imcsim import ArrayConfig, ChipConfig, load_chip, map_network
from imcsim.cost import estimate
from imcsim.errors import ConfigError
from imcsim.layers import LayerShape
from imcsim.mappers import get_mapper
from imcsim.matmul import matmul_totals, place_matmul, with_placement
from imcsim.periphery import MatmulConfig

from cli_helpers import run

QK = LayerShape.matmul(16, 66, 66, groups=12, name="qk")  # 12 heads: (66×16)·(16×66)


def brute_tiles(reduction: int, columns: int, groups: int, rows: int, cols: int) -> int:
    """Arrays holding every head's written operand: walk the rows and columns one by one."""
    tiles = 0
    for _ in range(groups):
        tiles += len(range(0, reduction, rows)) * len(range(0, columns, cols))
    return tiles


def test_digital_placement_prices_every_mac() -> None:
    chip = ChipConfig(array=ArrayConfig(rows=32, cols=32))
    result = place_matmul(QK, chip)
    assert result.macs == 66 * 16 * 66 * 12
    assert result.cycles == 0 and result.cells_written == 0
    assert result.latency_ns == pytest.approx(result.macs / 76.8)
    assert result.energy_pj == pytest.approx(result.macs * 0.23)


def test_crossbar_placement_writes_then_streams_rows() -> None:
    array = ArrayConfig(rows=32, cols=32, weight_bits=8, cell_bits=2)  # 4 columns per weight
    chip = with_placement(ChipConfig(array=array), "crossbar")
    result = place_matmul(QK, chip)
    tiles = brute_tiles(16, 66, 12, 32, 32 // 4)
    assert result.tiles == tiles == 12 * 9
    assert result.compute_cycles == 66 * tiles  # one row of A per cycle per array
    assert result.write_cycles == 16  # arrays written in parallel, 16 rows each
    assert result.cells_written == 12 * 16 * 66 * 4
    assert result.latency_ns is None  # no [cost] section: cycles only
    costed = with_placement(load_chip("default"), "crossbar").model_copy(update={"array": array})
    priced = place_matmul(QK, costed)
    compute = estimate(get_mapper("im2col").map(QK, array), costed)
    assert priced.latency_ns == pytest.approx(compute.latency_ns + 16 * 50.0)
    assert priced.energy_pj == pytest.approx(compute.energy_pj + 12 * 16 * 66 * 4 * 8.0)


def test_endurance_counts_rewrites_of_a_shared_pool_of_arrays() -> None:
    chip = with_placement(ChipConfig(array=ArrayConfig(rows=32, cols=32)), "crossbar")
    small = LayerShape.matmul(16, 8, 8, groups=2, name="small")
    results = [place_matmul(QK, chip), place_matmul(small, chip)]
    total = matmul_totals(results, chip)
    pool = max(r.tiles for r in results)
    assert total["matmul_arrays"] == pool
    assert total["endurance_inferences"] == math.floor(1e6 / (sum(r.tiles for r in results) / pool))
    assert total["matmul_macs"] == QK.macs + small.macs


def test_chip_toml_matmul_section(tmp_path) -> None:
    path = tmp_path / "chip.toml"
    path.write_text('name = "t"\n[array]\nrows = 64\ncols = 64\n[matmul]\nplacement = "crossbar"\n'
                    "write_energy_pj_per_cell = 2.5\nendurance_writes = 1e9\n")
    chip = load_chip(path)
    assert chip.matmul == MatmulConfig(placement="crossbar", write_energy_pj_per_cell=2.5,
                                       endurance_writes=1e9)
    assert load_chip("default").matmul.placement == "digital"
    path.write_text('name = "t"\n[array]\nrows = 64\ncols = 64\n[matmul]\nplacement = "analog"\n')
    with pytest.raises(ConfigError, match="matmul.placement"):
        load_chip(path)


def test_map_network_keeps_weight_cycles_and_adds_products() -> None:
    fc = LayerShape.linear(16, 16, positions=66, name="q")
    chip = ChipConfig(array=ArrayConfig(rows=32, cols=32))
    alone = map_network([fc], "im2col", chip)
    both = map_network([fc, QK], "im2col", with_placement(chip, "crossbar"))
    assert both.cycles == alone.cycles and [m.layer.name for m in both.mappings] == ["q"]
    assert both.total()["matmul_cycles"] == both.matmuls[0].cycles > 0
    with pytest.raises(Exception, match="no weight layer"):
        map_network([QK], "im2col", chip)


def test_cli_matmul_switch(capsys, tmp_path) -> None:
    table = tmp_path / "t.csv"
    table.write_text("name,kind,in_channels,out_channels,kernel,input,groups\n"
                     "q,linear,16,16,1,1x66,\nqk,matmul,16,66,1,1x66,12\n")
    args = ("map", "--layers", str(table), "--array", "32x32", "--format", "json")
    digital = run(capsys, *args, "--cost", "isaac").json()["total"]
    crossbar = run(capsys, *args, "--cost", "isaac", "--matmul", "crossbar").json()["total"]
    assert digital["matmul_placement"] == "digital" and digital["matmul_cycles"] == 0
    assert crossbar["matmul_placement"] == "crossbar" and crossbar["matmul_cycles"] > 0
    assert crossbar["matmul_energy_pj"] > digital["matmul_energy_pj"]
    bad = run(capsys, *args, "--matmul", "analog")
    assert bad.code == 2 and "placement" in bad.err
