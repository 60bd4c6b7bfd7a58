"""``imcsim map``: table, JSON and CSV outputs of real networks."""

from __future__ import annotations

import csv
import io
import shutil
import subprocess

import pytest

from imcsim import ArrayConfig, get_mapper, load_layer_table

from cli_helpers import run


def test_map_json_shape_and_values(capsys) -> None:
    result = run(capsys, "map", "--model", "resnet20", "--array", "128x128", "--mapper", "vw-sdk",
                 "--format", "json")
    assert result.code == 0, result.err
    data = result.json()
    assert len(data["layers"]) == 22  # 19 3x3 convs, 2 shortcuts, fc
    first = data["layers"][0]
    assert {"name", "mapper", "cycles", "utilization", "speedup", "window"} <= set(first)
    assert first["name"] == "conv1" and first["layer"] == "3x3 3->16 @32x32 s1 p1"
    total = data["total"]
    assert total["cycles"] == sum(row["cycles"] for row in data["layers"])
    assert total["speedup"] == pytest.approx(total["im2col_cycles"] / total["cycles"])
    assert 0 < total["utilization"] <= 1


def test_map_all_mappers_side_by_side(capsys) -> None:
    result = run(capsys, "map", "--layers", "vgg13", "--array", "512x512", "--mapper", "all")
    assert result.code == 0, result.err
    header = result.out.splitlines()[1].split()
    assert header[2:] == ["im2col", "sdk", "sdk-unconstrained", "vw-sdk", "sdk-rect"]
    total = next(line for line in result.out.splitlines() if line.startswith("TOTAL")).split()
    assert total[1:4] == ["243,736", "114,697", "78,616"]
    data = run(capsys, "map", "--layers", "vgg13", "--array", "512x512", "--mapper", "all",
               "--format", "json").json()
    assert data["total"]["vw-sdk"]["cycles"] == 77102
    assert len(data["layers"]) == 5 * 10


def test_map_csv_from_a_user_table(capsys, tmp_path) -> None:
    table = tmp_path / "net.csv"
    table.write_text("name,in_channels,out_channels,kernel,input,stride,padding\n"
                     "a,3,16,3,32,1,1\nb,16,32,3x3,32,2,1\nfc,64,10,1,1,1,0\n")
    result = run(capsys, "map", "--layers", str(table), "--array", "64x64", "--mapper", "sdk",
                 "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(result.out)))
    assert [r["name"] for r in rows] == ["a", "b", "fc"]
    layers = load_layer_table(table)
    assert [int(r["cycles"]) for r in rows] == [
        get_mapper("sdk").map(layer, ArrayConfig(rows=64, cols=64)).cycles for layer in layers
    ]


def test_chip_preset_sets_bit_slicing(capsys) -> None:
    one_bit = run(capsys, "map", "--model", "resnet20", "--array", "128x128", "--format", "json")
    sliced = run(capsys, "map", "--model", "resnet20", "--chip", "default", "--format", "json")
    assert sliced.json()["total"]["cycles"] > one_bit.json()["total"]["cycles"]


@pytest.mark.skipif(shutil.which("imcsim") is None, reason="console script not installed")
def test_console_script_runs() -> None:
    out = subprocess.run(["imcsim", "map", "--layers", "cnn8", "--array", "256x512"],
                         capture_output=True, text=True, check=True)
    assert "TOTAL" in out.stdout and "209" in out.stdout
