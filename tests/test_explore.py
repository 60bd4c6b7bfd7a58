"""``imcsim explore`` (quick variant): a non-dominated front from a real Optuna journal,
resumed after a SIGKILL without a lost or repeated trial, and an exported point that
``map --spec`` replays to the same cycles."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from imcsim.cli import main
from imcsim.studies.explore import open_study

from cli_helpers import gate_env, run

QUICK = ["explore", "--model", "resnet20", "--array", "64x64", "--seeds", "none",
         "--calibration-images", "8", "--proxy-images", "16", "--population", "2"]
OBJECTIVES = ("cycles", "energy_pj", "accuracy_proxy")
TIMEOUT_S = 300


def _run(capsys, *args: str) -> dict:
    main([*QUICK, *args, "--format", "json"])
    return json.loads(capsys.readouterr().out)


def _dominates(a: dict, b: dict) -> bool:
    better = [a["cycles"] <= b["cycles"], a["energy_pj"] <= b["energy_pj"],
              a["accuracy_proxy"] >= b["accuracy_proxy"]]
    strictly = [a["cycles"] < b["cycles"], a["energy_pj"] < b["energy_pj"],
                a["accuracy_proxy"] > b["accuracy_proxy"]]
    return all(better) and any(strictly)


@pytest.fixture(scope="module")
def explored(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("explore") / "run"
    main([*QUICK, "--trials", "3", "--out", str(out), "--format", "json"])
    return out, json.loads((out / "spec.json").read_text())


def test_front_is_non_dominated_and_covers_every_trial(explored, capsys) -> None:
    out, _ = explored
    result = _run(capsys, "--trials", "3", "--out", str(out))  # the journal is complete: no trial runs
    assert result["trials"] == 3
    assert {"cycles", "energy_pj", "accuracy_proxy", "spec"} <= set(result["front"][0])
    front = result["front"]
    assert not any(_dominates(a, b) for a in front for b in front)
    study = open_study(out)
    done = [t.user_attrs["metrics"] for t in study.trials
            if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) == 3
    for m in done:  # every trial is on the front or dominated by a front point
        assert any(_dominates(f, m) or all(f[o] == m[o] for o in OBJECTIVES) for f in front)


def test_exported_point_replays_to_the_same_cycles_in_map(explored, capsys, tmp_path) -> None:
    out, _ = explored
    front = _run(capsys, "--trials", "3", "--out", str(out))["front"]
    point = tmp_path / "point.json"
    main(["explore", "--out", str(out), "--export", str(front[0]["trial"]), str(point)])
    capsys.readouterr()
    main(["map", "--spec", str(point), "--format", "json"])
    mapped = json.loads(capsys.readouterr().out)
    assert mapped["total"]["cycles_counted"] == front[0]["cycles"]
    assert mapped["total"]["energy_pj"] == pytest.approx(front[0]["energy_pj"])
    with pytest.raises(SystemExit) as exc:
        main(["explore", "--out", str(out), "--export", "99", str(tmp_path / "x.json")])
    assert exc.value.code == 2 and "no finished trial 99" in capsys.readouterr().err


def test_other_spec_in_the_same_directory_is_refused(explored, capsys) -> None:
    out, _ = explored
    with pytest.raises(SystemExit) as exc:
        main([*QUICK, "--trials", "3", "--out", str(out), "--min-keep", "0.2"])
    assert exc.value.code == 2 and "holds another exploration" in capsys.readouterr().err


def _complete_and_running(out: Path) -> tuple[int, int]:
    if not (out / "journal.log").exists():
        return 0, 0
    states = [t.state for t in open_study(out).trials]
    return (states.count(optuna.trial.TrialState.COMPLETE),
            states.count(optuna.trial.TrialState.RUNNING))


def test_sigkill_mid_trial_then_the_same_command_resumes(tmp_path, capsys) -> None:
    out = tmp_path / "run"
    args = [*QUICK, "--trials", "4", "--out", str(out), "--format", "json"]
    gate = gate_env("imcsim.studies.explore:evaluate_trial", out / "trials.jsonl", 2,
                    tmp_path / "never")
    env = {**os.environ, "OMP_NUM_THREADS": "1", **gate}
    proc = subprocess.Popen([sys.executable, "-c", f"from imcsim.cli import main; main({args!r})"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + TIMEOUT_S
    started = out / "started.jsonl"
    while not started.exists() or len(started.read_text().splitlines()) < 3:  # trial 3 is held
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
    assert _complete_and_running(out) == (2, 1)
    proc.kill()
    proc.communicate()
    before = {t.number: t.params for t in open_study(out).trials
              if t.state == optuna.trial.TrialState.COMPLETE}
    killed = next(t for t in open_study(out).trials if t.state == optuna.trial.TrialState.RUNNING)
    result = _run(capsys, "--trials", "4", "--out", str(out))
    trials = open_study(out).trials
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert result["trials"] == len(complete) == 4
    assert {t.number: t.params for t in complete if t.number in before} == before  # kept
    retried = [t for t in complete if t.user_attrs.get("retry_of") == killed.number]
    assert len(retried) == 1 and retried[0].params == killed.params  # run again, once
    assert [t.number for t in trials if t.state == optuna.trial.TrialState.FAIL] == [killed.number]
    keys = [json.dumps(t.params, sort_keys=True) for t in complete]
    assert len(set(keys)) == len(keys)  # no trial repeated


def test_spearman_ranks_ties_and_too_few_points() -> None:
    from imcsim.studies.explore_measure import spearman

    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 1, 2], [5, 6, 7]) == pytest.approx(0.8660254)
    assert spearman([1, 2], [1, 2]) is None and spearman([1, 1, 1], [1, 2, 3]) is None


def test_seed_keep_gives_the_selector_rank_back() -> None:
    from imcsim.studies.explore_point import rank_for_keep

    shape = (64, 32, 3, 3)
    for groups in (1, 2, 4):
        for rank in (1, 5, 8):
            keep = rank * (32 * 9 + groups * 64) / (64 * 32 * 9)
            assert rank_for_keep(shape, groups, keep) == rank


def test_front_chart_and_layer_map_render(explored, tmp_path) -> None:
    from imcsim.studies.explore import open_study, write_charts
    from imcsim.studies.explore_space import ExploreSpec

    out, spec = explored
    paths = write_charts(open_study(out), ExploreSpec.parse(spec), tmp_path, layer_maps=1)
    names = sorted(p.name for p in paths)
    assert names[:2] == ["explore_front.png", "explore_front_energy.png"]
    assert names[2].startswith("explore_layers_") and all(p.stat().st_size > 0 for p in paths)


def test_measure_front_points_is_resumable(explored) -> None:
    from imcsim.studies.explore_measure import MEASURED, measure_front
    from imcsim.studies.explore_space import ExploreSpec

    out, spec = explored
    first = measure_front(ExploreSpec.parse(spec), out, 2, epochs=0, test_images=16)
    assert len(first["points"]) == min(2, len(json.loads((out / MEASURED).read_text())))
    assert all(0 <= p["accuracy"] <= 1 for p in first["points"])
    again = measure_front(ExploreSpec.parse(spec), out, 2, epochs=0, test_images=16)
    assert again["points"] == first["points"]


def test_selector_seeds_become_the_first_trials() -> None:
    """Dense, compare's single-family point and the energy rule's choice at half the weights
    are the seeds, in that order, and the selector's seed names a low-rank point."""
    from imcsim.studies.explore import point_of
    from imcsim.studies.explore_point import Workbench
    from imcsim.studies.explore_seeds import seed_params
    from imcsim.studies.explore_space import ExploreSpec

    spec = ExploreSpec(families=("dense", "low-rank"), seeds=("energy",), seed_keeps=(0.5,),
                       calibration_images=8, proxy_images=8, min_keep=0.01)
    bench = Workbench.build(spec, 8, "none")
    seeds = seed_params(spec, bench)
    assert [s["_seed"] for s in seeds] == ["dense", "compare:low-rank@0.5", "energy@keep0.5"]
    point = point_of(spec, bench, {k: v for k, v in seeds[2].items() if k != "_seed"})
    assert all(p.family in ("dense", "low-rank") for p in point.layers.values())
    assert any(p.family == "low-rank" and p.rank for p in point.layers.values())


def test_an_exploration_folder_verifies_and_a_changed_trial_is_found(explored, capsys,
                                                                     tmp_path) -> None:
    out, _ = explored
    verdict = run(capsys, "verify", str(out), "--format", "json")
    assert verdict.code == 0 and verdict.json()["ok"], verdict.out
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    log = copy / "trials.jsonl"
    lines = log.read_text().splitlines()
    first = json.loads(lines[0])
    first["cycles"] = 7
    log.write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n")
    tampered = run(capsys, "verify", str(copy), "--format", "json")
    assert tampered.code == 1
    assert [f["status"] for f in tampered.json()["findings"]] == ["tampered"]
