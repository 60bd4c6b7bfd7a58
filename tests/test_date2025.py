"""The date2025 study: its two numbers on hand-made points, its recipes, a tiny end-to-end run."""

from __future__ import annotations

import json

import pytest

from imcsim.errors import ConfigError
from imcsim.studies.date2025_claims import (
    accuracy_at_cost,
    accuracy_gain,
    cost_at_accuracy,
    pareto,
    speedup_at_accuracy,
)
from imcsim.studies.date2025_spec import IMCSIM, PAPER, Date2025Spec, ablations, variants
from imcsim.studies.recipes import Recipe, load_recipe


def _p(key: str, accuracy: float, cycles: int) -> dict:
    return {"key": key, "accuracy": accuracy, "latency_cycles": cycles}


def test_speedup_at_equal_accuracy_and_gain_at_equal_cycles() -> None:
    low = [_p("k4", 0.90, 100), _p("k16", 0.97, 300)]
    pruning = [_p("a", 0.905, 250), _p("b", 0.97, 900), _p("c", 0.80, 90), _p("d", 0.79, 400)]
    assert [r["key"] for r in pareto(pruning)] == ["c", "a", "b"]  # d is dominated by a
    # tolerance 1 pp: k4 needs 89 % -> between c and a at 90·(250/90)^(0.09/0.105) = 216.0
    # cycles (2.16x); k16 needs 96 % -> 250·3.6^(0.055/0.065) = 738.9 (2.46x): the larger
    best = speedup_at_accuracy(low, pruning, tolerance_pp=1.0)
    assert best["value"] == pytest.approx(2.4630, abs=1e-3) and best["proposed"] == "k16"
    assert best["baseline"] == "a..b"
    assert speedup_at_accuracy(low, pruning, tolerance_pp=0.0)["value"] == pytest.approx(3.0)
    # k4 at 100 cycles: the front reads 80 % + 10.5 pp · ln(100/90)/ln(250/90) = 81.08 %
    gain = accuracy_gain(low, pruning)
    assert gain["value"] == pytest.approx(8.917, abs=1e-2) and gain["proposed"] == "k4"
    # never extrapolated: a front slower than every low-rank point, or one that is already
    # more accurate at its cheapest point, or never as accurate, gives nothing
    assert accuracy_gain(low, [_p("slow", 0.5, 1000)]) is None
    assert speedup_at_accuracy(low, [_p("easy", 0.99, 50), _p("x", 0.995, 60)], 1.0) is None
    assert speedup_at_accuracy(low, [_p("bad", 0.5, 10), _p("worse", 0.6, 20)], 1.0) is None
    assert cost_at_accuracy(pareto(pruning), 0.97) == (pytest.approx(900), "a..b")
    assert accuracy_at_cost(pareto(pruning), 5000) == (0.97, "b")


def test_conventions_and_variants() -> None:
    names = [c.name for c in ablations()]
    assert names[:2] == ["paper", "imcsim"] and len(names) == 8 and len(set(names)) == 8
    assert PAPER.families[1] == "low-rank" and IMCSIM.families[1] == "low-rank-keep"
    assert PAPER.pattern_families == ("kernel-pattern", "layer-pattern")
    assert IMCSIM.pattern_families == ("channel-pattern",)
    assert PAPER.precision_of("wrn16-4").weight_bits == 2
    spec = Date2025Spec()
    keys = [v.key for v in variants(spec)]
    assert len(keys) == len(set(keys))
    assert sum(v.family == "low-rank" for v in variants(spec)) == 9  # ranks x groups
    assert "kernel-pattern-patdnn-kernel-n4" in keys and "kernel-pattern-patdnn-layer-n4" in keys


def test_recipes_validate() -> None:
    full, quick = load_recipe("date2025"), load_recipe("date2025-quick")
    assert full.sweep is None and full.date2025.models == ("resnet20", "wrn16-4")
    assert quick.date2025.models == ("resnet20",)
    with pytest.raises(ConfigError, match="exactly one"):
        Recipe.parse({"name": "x"})
    with pytest.raises(ConfigError, match=r"\[compression\] and \[pictures\] go with a \[sweep\]"):
        Recipe.parse({"name": "x", "date2025": {"models": ["resnet20"]},
                      "compression": {"model": "resnet20"}})
    with pytest.raises(ConfigError, match="arrays"):
        Date2025Spec.parse({"models": ["resnet20"], "arrays": {"wrn16-4": ["64x64"]}})
    with pytest.raises(ConfigError, match="models"):
        Date2025Spec.parse({"models": ["vgg13"]})


TINY = """
name = "tiny"
charts = ["tradeoff"]
[date2025]
models = ["resnet20"]
finetune_epochs = 0
train_images = { resnet20 = 64 }
test_images = 50
min_accuracy = 0.0
ranks = [4]
groups = [1]
taps = [4]
library_taps = []
channel_keeps = [0.5]
other_keeps = []
low_rank_keeps = []
pattern_keeps = [0.5]
[date2025.arrays]
resnet20 = ["64x64"]
"""


def test_tiny_study_end_to_end(capsys, tmp_path) -> None:
    pytest.importorskip("torch")
    from imcsim.studies.date2025 import train_variants

    from cli_helpers import run

    (tmp_path / "tiny.toml").write_text(TINY)
    out = run(capsys, "run", str(tmp_path / "tiny.toml"), "--out", str(tmp_path / "out"))
    assert out.code == 0, out.err
    assert "speedup at equal accuracy" in out.out and "claims.md" in out.out
    spec, done = load_recipe(tmp_path / "tiny.toml").date2025, tmp_path / "out"
    records = [json.loads(line) for line in (done / "variants-resnet20.jsonl").open()]
    assert [r["variant"] for r in records] == [v.key for v in variants(spec)]
    assert len({r["key"] for r in records}) == len(records)  # content keys
    points = [json.loads(line) for line in (done / "points.jsonl").open()]
    paper = {p["key"]: p for p in points if p["conventions"] == "paper"}
    assert paper["low-rank-k4-g1"]["latency_cycles"] < paper["low-rank-k4-g1"]["cycles"]  # pipelined
    assert paper["kernel-pattern-patdnn-kernel-n4"]["index_bits"] > 0
    assert paper["kernel-pattern-patdnn-kernel-n4"]["energy_breakdown_pj"]["pattern_index"] > 0
    assert paper["low-rank-k4-g1"]["energy_breakdown_pj"]["pattern_index"] == 0
    claims = json.loads((done / "claims.json").read_text())
    # no kept-fraction low-rank variant here: conventions that compare it have no rows
    assert {r["conventions"] for r in claims["rows"]} == {
        c.name for c in ablations() if c.low_rank == "fixed"}
    assert (done / "claims.md").read_text().count("| paper |") == 6  # best-of and per-array rows
    assert (done / "tradeoff-resnet20-paper.png").stat().st_size > 0
    # a rerun trains nothing: the finished variants are read back
    assert train_variants(spec, done) == records
    assert len((done / "variants-resnet20.jsonl").read_text().splitlines()) == len(records)


def test_run_data_dir_only_for_date2025(capsys, tmp_path) -> None:
    from cli_helpers import run

    out = run(capsys, "run", "default", "--data-dir", str(tmp_path))
    assert out.code == 2 and "date2025 recipes" in out.err
    spec = load_recipe("date2025").date2025.with_cifar(tmp_path)
    assert spec.for_model("resnet20").dataset == "cifar10"
    assert spec.for_model("wrn16-4").dataset == "cifar100" and spec.for_model("wrn16-4").taps == (2, 4, 8)
