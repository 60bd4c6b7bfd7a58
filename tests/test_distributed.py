"""Data-parallel training on two spawned CPU processes, and ``imcsim train --workers 2``:
sharding, reproducibility, interrupts (no orphaned workers) and resuming."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch import nn
from toydata import toy_data

from imcsim.errors import ConfigError
from imcsim.train.distributed import DistributedConfig
from imcsim.train.grad_compression import GradCompression
from imcsim.train.loop import TrainConfig, finetune, train

from cli_helpers import gate_env, run

ROOT = Path(__file__).resolve().parents[1]


def net(seed: int = 0) -> nn.Module:
    """No BatchNorm: two workers then compute exactly the single-process gradient."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 8, 3, padding=1),
                         nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(32, 2))


IMAGES = 44
"""Toy images per training test (``toydata.toy_data``)."""


CONFIG = TrainConfig(epochs=2, batch_size=8, lr=0.05, warmup_steps=2, shift_px=1,
                     checkpoint_every_steps=4)  # 6 steps per epoch, the last one of 4 images
TWO = DistributedConfig(workers=2)


def same(a: nn.Module, b: nn.Module, atol: float) -> bool:
    return all(torch.allclose(p, q, atol=atol)
               for p, q in zip(a.state_dict().values(), b.state_dict().values()))


def test_two_workers_shard_the_batch_stop_cleanly_and_resume(tmp_path: Path) -> None:
    x, y = toy_data(IMAGES)
    single, whole = net(), net()
    train(single, x, y, CONFIG)
    expected = train(whole, x, y, CONFIG, parallel=TWO)
    # disjoint shards whose union is the batch, averaged: the single-process gradient
    assert same(whole, single, atol=1e-5)
    dense = sum(p.numel() * 4 for p in whole.parameters())
    assert expected.workers == 2
    assert expected.bytes_communicated == expected.bytes_uncompressed == 12 * dense

    state, seen = tmp_path / "run.state", []

    def interrupt(event) -> None:
        seen.append(event.step)
        if event.step == 7:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(net(), x, y, CONFIG, state_path=state, progress=interrupt, parallel=TWO)
    assert seen == list(range(1, 8)) and multiprocessing.active_children() == []
    resumed = net(seed=3)
    result = train(resumed, x, y, CONFIG, state_path=state, parallel=TWO)
    assert result.resumed_from_step == 6 and not state.exists()  # the epoch-end checkpoint
    assert result.bytes_communicated == expected.bytes_communicated
    assert same(resumed, whole, atol=0)  # same seed, same workers: the same weights


def test_two_workers_finetune_pruned_and_low_rank_models() -> None:
    from imcsim.nn.compress import RankRule, low_rank, prune

    x, y = toy_data(IMAGES)
    pruned = prune(net(), "unstructured", 0.5).model
    mask, before = pruned[0].weight_mask.clone(), pruned[0].weight.detach().clone()
    finetune(pruned, x, y, CONFIG, parallel=TWO)
    assert torch.equal(pruned[0].weight_mask, mask) and (pruned[0].weight[mask == 0] == 0).all()
    assert not torch.equal(pruned[0].weight, before)
    for method in ("powersgd", "greedylore"):  # one bucket per parameter: the collectives of
        # successive buckets must stay in the same order on both workers
        factored = low_rank(net(), RankRule(keep=0.6)).model
        r_before = factored[0].r.weight.detach().clone()
        compressed = DistributedConfig(workers=2, bucket_cap_mb=1e-4, compression=GradCompression(
            method=method, rank=1, warmup_steps=2, refresh_every_steps=4, min_compression=1.0))
        result = finetune(factored, x, y, CONFIG, parallel=compressed)
        assert not torch.equal(factored[0].r.weight, r_before)
        assert 0 < result.bytes_communicated < result.bytes_uncompressed


def test_bad_parallel_settings_are_one_line_errors(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    x, y = toy_data(9)
    with pytest.raises(ConfigError, match="2 workers need >= 2 images in every batch"):
        train(net(), x, y, CONFIG, parallel=TWO)  # 9 images: last batch of 1
    with pytest.raises(ConfigError, match="DistributedConfig.workers"):
        DistributedConfig(workers=0)
    for option, value, message in [("--grad-compression", "topk", "must be one of"),
                                   ("--workers", "0", "must be >= 1"),
                                   ("--grad-warmup-steps", "-1", "must be >= 0")]:
        bad = run(capsys, "train", option, value, "--out", str(tmp_path / "b.pt"))
        assert bad.code == 2 and message in bad.err and len(bad.err.splitlines()) == 1
    for verb in ("accuracy", "accuracy-study"):  # the fine-tuning verbs take the options too
        bad = run(capsys, verb, "--workers", "2", "--grad-compression", "zip")
        assert bad.code == 2 and "--grad-compression must be one of" in bad.err
    for args in (("accuracy", "--workers", "2"), ("accuracy", "--method", "low-rank",
                 "--finetune-epochs", "0", "--grad-compression", "powersgd"),
                 ("accuracy-study", "--finetune-epochs", "0", "--workers", "2"),
                 ("rank-search", "--workers", "2")):
        bad = run(capsys, *args)  # nothing is fine-tuned: the options would be ignored
        assert bad.code == 2 and "has no effect with" in bad.err, bad.err


def _cli(*args: str, gate: dict[str, str]) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    env = {**env, **gate, "PYTHONPATH": os.pathsep.join((gate["PYTHONPATH"], str(ROOT)))}
    code = "from imcsim.cli import main; main()"
    return subprocess.Popen(
        [sys.executable, "-c", code, *args], env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _group_empties(pgid: int, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def test_ctrl_c_stops_every_worker_exits_130_and_the_rerun_resumes(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "r.pt"
    state = tmp_path / "r.pt.state"
    args = ("train", "--model", "resnet20", "--epochs", "4", "--train-images", "100",
            "--batch-size", "10", "--workers", "2", "--grad-compression", "greedylore",
            "--grad-rank", "2", "--grad-warmup-steps", "2", "--grad-refresh-steps", "5",
            "--out", str(out), "--format", "json")
    # every worker holds its next step once the first checkpoint (end of epoch 1) exists
    proc = _cli(*args, gate=gate_env("imcsim.train.distributed:batch_at", state, 0,
                                     tmp_path / "release"))
    deadline = time.monotonic() + 120
    while not state.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert state.exists(), proc.communicate()[1]
    os.kill(proc.pid, signal.SIGINT)
    (tmp_path / "release").touch()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    last = err.strip().splitlines()[-1]
    assert last == f"imcsim: interrupted; training state saved in {state}; rerun the same command to resume"
    assert _group_empties(proc.pid)  # no worker (nor helper process) outlived the command
    assert state.exists()
    rerun = run(capsys, *args)
    assert rerun.code == 0, rerun.err
    record = rerun.json()
    assert record["resumed_from_step"] >= 10 and record["steps"] == 40
    assert record["workers"] == 2 and not state.exists() and out.exists()
    for key in ("float_accuracy", "bytes_communicated", "bytes_uncompressed", "wall_time_s"):
        assert key in record
    assert record["bytes_uncompressed"] == 40 * 272474 * 4  # the whole run, resumed or not
    assert 0 < record["bytes_communicated"] < record["bytes_uncompressed"] / 2
