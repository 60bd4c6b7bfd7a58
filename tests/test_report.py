"""NetworkReport: totals, speedups, exports."""

from __future__ import annotations

import json

import pytest

from imcsim import (
    ArrayConfig,
    LayerCost,
    estimate_network,
    load_chip,
    load_layer_table,
    map_network,
)


def test_totals_speedup_and_exports(tmp_path) -> None:
    layers = load_layer_table("resnet18")
    array = ArrayConfig(rows=256, cols=256)
    im2col = map_network(layers, "im2col", array, model="resnet18")
    vw = map_network(layers, "vw-sdk", array, model="resnet18")
    assert im2col.speedup == 1.0
    assert vw.speedup == im2col.cycles / vw.cycles > 1
    rows = vw.rows()
    assert [r["speedup"] for r in rows] == [
        a.cycles / b.cycles for a, b in zip(im2col.mappings, vw.mappings)
    ]
    cells = sum(m.tiles * array.cells for m in vw.mappings)
    assert vw.utilization == sum(m.weight_cells for m in vw.mappings) / cells
    data = json.loads(vw.to_json(tmp_path / "r.json"))
    assert data == json.loads((tmp_path / "r.json").read_text())
    assert data["total"]["cycles"] == vw.cycles
    text = vw.to_csv(tmp_path / "r.csv")
    assert text.count("\n") == len(layers) + 1
    table = str(vw)
    assert "TOTAL" in table and "layer4.1.conv2" in table


def test_cost_stage_is_typed_and_flattens_once() -> None:
    chip = load_chip("isaac")
    report = map_network(load_layer_table("cnn8"), "vw-sdk", chip)
    costed = estimate_network(report, chip)
    assert report.costs is None and "energy_pj" not in report.rows()[0]
    assert all(isinstance(c, LayerCost) for c in costed.costs)
    assert costed.total()["energy_pj"] == pytest.approx(sum(c.energy_pj for c in costed.costs))
    assert costed.total()["schedule"] == "sequential"
    records = costed.to_records()
    assert [r["energy_pj"] for r in records] == [c.energy_pj for c in costed.costs]
    assert {r["model"] for r in records} == {"network"} and records[0]["array"] == "128x128"
    summary = costed.summary_record()
    assert summary["cycles"] == costed.cycles and len(summary["layer_cycles"]) == 5


def test_fits_on_chip_follows_the_array_count() -> None:
    from imcsim import ChipConfig

    layers = load_layer_table("cnn8")
    array = ArrayConfig(rows=256, cols=512)
    tiles = map_network(layers, "vw-sdk", array).total()["tiles"]
    assert map_network(layers, "vw-sdk", array).total()["fits_on_chip"] is None
    small = ChipConfig(array=array, n_arrays=tiles - 1)
    assert map_network(layers, "vw-sdk", small).total()["fits_on_chip"] is False
    exact = ChipConfig(array=array, n_arrays=tiles)
    assert map_network(layers, "vw-sdk", exact).total()["fits_on_chip"] is True
