"""Sweeps: records, resume after a kill, local vs Ray, recipes and charts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from imcsim import ArrayConfig, ConfigError, load_layer_table, map_network
from imcsim.plotting import pareto_front
from imcsim.studies.recipes import load_recipe
from imcsim.studies.sweep import RESULTS, SweepSpec, point_key, points, read_results, sweep

from cli_helpers import gate_env, run


def test_records_are_flat_and_match_map_network(tmp_path: Path) -> None:
    spec = SweepSpec(models=("table:cnn8",), arrays=("256x512", "64x128"), mappers=("im2col", "vw-sdk"))
    records = sweep(spec, tmp_path, workers=1)
    assert [(r["array"], r["mapper"]) for r in records] == [
        ("256x512", "im2col"), ("256x512", "vw-sdk"), ("64x128", "im2col"), ("64x128", "vw-sdk")
    ]
    expected = map_network(load_layer_table("cnn8"), "vw-sdk", ArrayConfig(rows=256, cols=512))
    vw = records[1]
    assert vw["cycles"] == expected.cycles == 209
    assert vw["speedup"] == pytest.approx(948 / 209)
    assert vw["utilization"] == pytest.approx(expected.utilization)
    assert len((tmp_path / RESULTS).read_text().splitlines()) == 4


def _sweep_cli(out: Path) -> list[str]:
    return ["sweep", "--model", "resnet20,wrn16-4", "--arrays",
            ",".join(f"{r}x{c}" for r in (64, 128, 256, 512) for c in (64, 128, 256, 512)),
            "--mappers", "im2col,sdk,sdk-unconstrained,vw-sdk,sdk-rect", "--workers", "1",
            "--out", str(out)]


def test_killed_sweep_resumes_without_loss_or_duplicates(tmp_path: Path) -> None:
    args = _sweep_cli(tmp_path)
    code = f"from imcsim.cli import main; main({args!r})"
    results = tmp_path / RESULTS
    gate = gate_env("imcsim.studies.evaluate:evaluate_point", results, 10, tmp_path / "never")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, **gate})
    deadline = time.time() + 120
    while time.time() < deadline and (not results.exists() or len(results.read_bytes().splitlines()) < 10):
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = read_results(results)
    expected = {point_key(p) for p in points(SweepSpec(
        models=("resnet20", "wrn16-4"),
        arrays=tuple(f"{r}x{c}" for r in (64, 128, 256, 512) for c in (64, 128, 256, 512)),
    ))}
    assert 10 <= len(before) < len(expected), "the kill must land mid-sweep"
    with results.open("a") as handle:  # a write torn by the kill
        handle.write('{"model": "resnet20", "comp')
    from imcsim.cli import main

    main(args)
    after = read_results(results)
    keys = [point_key(r) for r in after]
    assert len(keys) == len(set(keys)) == len(expected) == 160
    assert set(keys) == expected
    assert after[: len(before)] == before  # finished records untouched


def test_ray_and_local_give_identical_records(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    spec = SweepSpec(models=("resnet20",), arrays=("64x64", "128x256"), mappers=("im2col", "vw-sdk"))
    local = sweep(spec, tmp_path / "local", workers=2)
    ray = sweep(spec, tmp_path / "ray", backend="ray", workers=2)
    assert local == ray
    assert sorted(json.dumps(r) for r in read_results(tmp_path / "ray" / RESULTS)) == sorted(
        json.dumps(r) for r in local
    )


def test_default_recipe_and_run_in_an_empty_directory(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    study = load_recipe("default")  # its compression part runs in tests/test_draw_cli.py
    monkeypatch.setattr("imcsim.cli.sweep_cmd.load_recipe",
                        lambda _name: study.model_copy(update={"compression": None}))
    result = run(capsys, "run")
    assert result.code == 0, result.err
    out = tmp_path / "imcsim-out"
    assert len(list(out.glob("*.png"))) >= 2
    assert (out / "summary.txt").read_text().count("resnet20") == len(read_results(out / RESULTS))
    assert "vw-sdk" in result.out
    again = run(capsys, "plot", str(out / RESULTS), "--out", str(tmp_path / "charts"))
    assert again.code == 0 and len(list((tmp_path / "charts").glob("*.png"))) >= 3


BAD_RECIPES = [
    ("name='x'\nflavour=1\n[sweep]\n", "flavour"),
    ("name='x'\n[sweep]\narrays='64x64'\n", "arrays"),
    ("name='x'\n[sweep]\nmodels=['nosuchnet']\n", "nosuchnet"),
    ("name='x'\n[sweep]\narrays=['0x128']\n", "rows"),
    ("name='x'\n[sweep]\nmappers=['magic']\n", "magic"),
    ("name='x'\n[sweep]\nkeep=[1.5]\n", "keep"),
    ("name='x'\n[sweep]\nmodels=[]\n", "models"),
    ("[sweep]\n", "name"),
    ("name='x'\n[sweep\n", "recipe"),
]


@pytest.mark.parametrize(("text", "culprit"), BAD_RECIPES)
def test_bad_recipes(tmp_path: Path, capsys, text: str, culprit: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    result = run(capsys, "run", str(path), "--out", str(tmp_path / "o"))
    assert result.code == 2, result.out
    assert culprit in result.err and len(result.err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "culprit"),
    [
        (["--arrays", "64x"], "64x"),
        (["--mappers", "im2col,magic"], "magic"),
        (["--keep", "half"], "--keep"),
        (["--adc-bits", "0"], "adc_bits"),
        (["--backend", "spark"], "spark"),
        (["--chips", "nochip"], "nochip"),
        (["--workers", "0"], "workers"),
    ],
)
def test_bad_sweep_axes(tmp_path: Path, capsys, args: list[str], culprit: str) -> None:
    result = run(capsys, "sweep", "--model", "table:cnn8", "--arrays", "64x64", "--out",
                 str(tmp_path), *args)
    assert result.code == 2, (result.out, result.err)
    assert culprit in result.err and len(result.err.strip().splitlines()) == 1


def test_shipped_recipes_validate() -> None:
    assert load_recipe("default").sweep.models == ("resnet20",)
    with pytest.raises(ConfigError, match="nosuch"):
        load_recipe("nosuch")


def test_pareto_front() -> None:
    assert pareto_front([(10, 0.9), (5, 0.8), (7, 0.7), (20, 0.95), (12, 0.9)]) == [
        (5, 0.8), (10, 0.9), (20, 0.95)
    ]


def test_sweep_measures_accuracy_and_draws_the_pareto_chart(tmp_path: Path) -> None:
    from imcsim.plotting import render_charts

    spec = SweepSpec(models=("resnet20",), arrays=("128x128",), mappers=("vw-sdk",),
                     chips=("default",), adc_bits=(8, 4), accuracy=True, images=40)
    records = sweep(spec, tmp_path, workers=1)
    high, low = (r["accuracy"] for r in records)
    assert 0.8 <= high <= 1.0 and records[0]["float_accuracy"] >= high - 0.05
    assert low < high  # a 4-bit ADC loses accuracy
    assert [p.name for p in render_charts(records, tmp_path, ["pareto"])] == ["pareto.png"]


def test_mapper_options_reach_every_point_and_its_key(tmp_path: Path) -> None:
    base = dict(models=("table:cnn8",), arrays=("128x128",), mappers=("low-rank-sdk",))
    plain = SweepSpec(**base)
    piped = SweepSpec(**base, mapper_options={"r_mapper": "vw-sdk"})
    assert point_key(points(plain)[0]) != point_key(points(piped)[0])
    sdk, vw = sweep(plain, tmp_path / "a", workers=1)[0], sweep(piped, tmp_path / "b", workers=1)[0]
    layers = load_layer_table("cnn8")
    array = ArrayConfig(rows=128, cols=128)
    assert sdk["cycles"] == map_network(layers, "sdk", array).cycles
    assert vw["cycles"] == map_network(layers, "vw-sdk", array).cycles != sdk["cycles"]
