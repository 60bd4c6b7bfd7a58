"""``imcsim draw`` on a ResNet-20 layer under every kind of mapper (a user's included), and
the default study (``imcsim run``) with its compression part and mapping pictures."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.image as mpimg
import numpy as np
import pytest
from test_custom_mapper import InterleavedIm2col

from imcsim.mappers import mapper_names, register_mapper
from imcsim.studies.mission import CompressionRecord, run_compression
from imcsim.studies.recipes import load_recipe
from imcsim.studies.results import load_results
from imcsim.studies.sweep import RESULTS, read_results

from cli_helpers import run

matplotlib.use("Agg")  # headless

LAYER = ("--model", "resnet20", "--layer", "layer1.0.conv1", "--array", "64x64")


def ink(path: Path) -> float:
    image = mpimg.imread(path)[..., :3]
    assert image.shape[0] >= 400 and image.shape[1] >= 400
    return float((image < 0.9).any(axis=-1).mean())


@pytest.fixture(scope="module", autouse=True)
def user_mapper() -> None:
    if InterleavedIm2col.name not in mapper_names():
        register_mapper(InterleavedIm2col.name, InterleavedIm2col)


@pytest.mark.parametrize(("mapper", "extra", "panels"), [
    ("im2col", (), ["layer1.0.conv1 im2col: window 1x1, 3 tiles x 1,024 windows = 3,072 cycles"]),
    ("sdk", (), ["layer1.0.conv1 sdk:"]),
    ("vw-sdk", (), ["layer1.0.conv1 vw-sdk: window 2x2, 4 tiles x 256 windows = 1,024 cycles"]),
    ("pruned-sdk", ("--compression", "pattern"), ["layer1.0.conv1 pruned-sdk:"]),
    ("low-rank-sdk", ("--compression", "low-rank"),
     ["layer1.0.conv1.r (R) low-rank-sdk:", "layer1.0.conv1.l (L) low-rank-sdk:"]),
    ("interleaved-im2col", (), ["layer1.0.conv1 interleaved-im2col: window 1x1, 3 tiles"]),
])
def test_draw_every_kind_of_mapper(capsys, tmp_path: Path, mapper: str, extra: tuple,
                                   panels: list[str]) -> None:
    out = tmp_path / f"{mapper}.png"
    result = run(capsys, "draw", *LAYER, "--mapper", mapper, *extra, "--out", str(out))
    assert result.code == 0, result.err
    for line in panels:
        assert line in result.out
    assert len(result.out.strip().splitlines()) == len(panels) + 1
    assert 0.05 < ink(out) < 0.9


USER_FILE = """
from imcsim.mappers import Placement, Tile, get_mapper, mapper_names, register_mapper


class Reversed:
    name = "reversed-im2col"

    def map(self, layer, array):
        base = get_mapper("im2col").map(layer, array).placement
        tiles = [Tile(rows=t.rows[::-1], cols=t.cols) for t in base.tiles]
        return Placement.from_tiles(layer, array, base.window, tiles).to_mapping(mapper=self.name)


if Reversed.name not in mapper_names():
    register_mapper(Reversed.name, Reversed)
"""


def test_draw_a_mapper_registered_from_a_file(capsys, tmp_path: Path) -> None:
    source = tmp_path / "my_mappers.py"
    source.write_text(USER_FILE)
    out = tmp_path / "mine.png"
    result = run(capsys, "draw", "--register", str(source), *LAYER, "--mapper",
                 "reversed-im2col,im2col", "--out", str(out))
    assert result.code == 0, result.err
    assert "reversed-im2col: window 1x1, 3 tiles x 1,024 windows = 3,072 cycles" in result.out
    assert ink(out) > 0.05
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('boom')\n")
    result = run(capsys, "draw", "--register", str(broken), *LAYER, "--out", str(out))
    assert result.code == 2 and "boom" in result.err and len(result.err.splitlines()) == 1


def test_draw_pruned_marks_skipped_rows_and_svg(capsys, tmp_path: Path) -> None:
    out = tmp_path / "p.svg"
    result = run(capsys, "draw", *LAYER, "--mapper", "pruned-sdk,sdk", "--compression",
                 "pattern", "--tile", "0", "--out", str(out))
    assert result.code == 0, result.err
    text = out.read_text()
    assert text.lstrip().startswith("<?xml") and "all-zero rows skipped" in text


@pytest.mark.parametrize(("args", "culprit"), [
    (("--layer", "layer1.0.conv"), "layer1.0.conv1"),       # close names listed
    (("--layer", "layer1.0.conv1", "--mapper", "magic"), "magic"),
    (("--layer", "layer1.0.conv1", "--out", "x.jpg"), "x.jpg"),
    (("--layer", "layer1.0.conv1", "--tile", "9"), "tile 9"),
    (("--layer", "layer1.0.conv1", "--compression", "squeeze"), "squeeze"),
    (("--layer", "layer1.0.conv1", "--color-by", "mood"), "mood"),
])
def test_draw_bad_input_is_one_line(capsys, tmp_path: Path, args: tuple, culprit: str) -> None:
    result = run(capsys, "draw", "--model", "resnet20", "--array", "64x64", *args,
                 *(("--out", str(tmp_path / "x.png")) if "--out" not in args else ()))
    assert result.code == 2, result.out
    assert culprit in result.err and len(result.err.strip().splitlines()) == 1


def test_draw_a_layer_table(capsys, tmp_path: Path) -> None:
    out = tmp_path / "vgg.png"
    result = run(capsys, "draw", "--layers", "vgg13", "--layer", "conv1_1", "--array", "512x512",
                 "--mapper", "im2col,sdk,vw-sdk", "--out", str(out))
    assert result.code == 0, result.err
    assert "vw-sdk: window" in result.out and ink(out) > 0.02


def quick_default(monkeypatch):
    """The default recipe, smaller: two arrays and mappers, three compression methods with
    a tiny fine-tune (the real one: ``imcsim run``, timed in the README)."""
    study = load_recipe("default")
    quick = study.model_copy(update={
        "sweep": study.sweep.model_copy(update={"arrays": ("64x64", "256x256"),
                                                "mappers": ("im2col", "vw-sdk")}),
        "compression": study.compression.model_copy(update={
            "methods": ("dense-im2col", "pruned-pattern-sdk", "low-rank-sdk"), "images": 20,
            "finetune_images": 64, "workers": 1}),
    })
    monkeypatch.setattr("imcsim.cli.sweep_cmd.load_recipe", lambda _name: quick)
    return quick


def test_default_study_covers_the_mission(capsys, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    study = quick_default(monkeypatch)
    result = run(capsys, "run")
    assert result.code == 0, result.err
    out = tmp_path / "imcsim-out"
    pngs = {p.name for p in out.glob("*.png")}
    assert {"utilization.png", "speedup.png", "tile_cycles.png", "compression.png",
            "pareto.png", "mapping.png"} <= pngs
    assert len(read_results(out / RESULTS)) == 4
    compressed = list(load_results(out / "compression.jsonl", CompressionRecord).records.values())
    assert sorted(r["method"] for r in compressed) == ["dense-im2col", "low-rank-sdk",
                                                       "pruned-pattern-sdk"]
    assert all(0 <= r["accuracy"] <= 1 and r["images"] == 20 for r in compressed)
    assert {r["finetune_images"] for r in compressed} == {None, 64}  # dense: not fine-tuned
    fastest = min(compressed, key=lambda r: r["latency_cycles"])
    summary = result.out.split("\nsummary\n")[1]
    assert f"fastest method at keep 0.5 on 128x128: {fastest['method']}" in summary
    assert f"{100 * fastest['accuracy']:.1f} % on-chip accuracy" in summary
    assert "mapping picture:" in summary and "vw-sdk 176" in summary
    assert "fastest method" in (out / "highlights.txt").read_text()
    before = (out / "compression.jsonl").read_text()
    assert run_compression(study.compression, out) == [  # resumes: nothing recomputed
        next(r for r in compressed if r["method"] == m) for m in study.compression.methods]
    assert (out / "compression.jsonl").read_text() == before


def test_recipe_sections_are_validated(tmp_path: Path, capsys) -> None:
    for text, culprit in [
        ("name='x'\n[sweep]\n[compression]\nmethods=['pruned-magic']\n", "pruned-magic"),
        ("name='x'\n[sweep]\n[compression]\nflavour=1\n", "flavour"),
        ("name='x'\n[sweep]\n[pictures]\nmappers=['nosuch']\n", "nosuch"),
        ("name='x'\n[sweep]\n[pictures]\nfile='x.jpg'\n", "x.jpg"),
        ("name='x'\ncharts=['pie']\n[sweep]\n", "pie"),
    ]:
        path = tmp_path / "bad.toml"
        path.write_text(text)
        result = run(capsys, "run", str(path), "--out", str(tmp_path / "o"))
        assert result.code == 2 and culprit in result.err, (text, result.err)
        assert len(result.err.strip().splitlines()) == 1
    assert np.isclose(load_recipe("default").compression.keep, 0.5)
