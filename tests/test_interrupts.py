"""Ctrl-C (SIGINT) and SIGKILL against real ``imcsim`` processes: exit code 130 with one
line, workers stopped and reaped, finished work kept, and the same command resumes.

The work is held at a gate (``tests/gate_site/sitecustomize.py``) once the state the test waits
for exists, so every signal lands mid-run on a machine of any speed; the test releases the
gate only after it has signalled."""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from imcsim.cli import main

from cli_helpers import gate_env

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

ARRAYS = ",".join(f"{r}x{c}" for r in (64, 96, 128, 192, 256, 384, 512) for c in (64, 128, 256, 512))
SWEEP = ["sweep", "--model", "table:resnet18,table:vgg13", "--arrays", ARRAYS, "--mappers",
         "im2col,sdk,sdk-unconstrained,vw-sdk,sdk-rect"]  # 280 points of a few ms each
POINTS = 280
TIMEOUT_S = 120


SWEEP_GATE = "imcsim.studies.evaluate:evaluate_point"


def _start(args: list[str], cwd: Path, gate: dict[str, str]) -> subprocess.Popen:
    code = f"from imcsim.cli import main; main({args!r})"
    env = {**os.environ, "OMP_NUM_THREADS": "1", **gate}
    return subprocess.Popen([sys.executable, "-c", code], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)  # a signal for it alone, as from a shell


def _wait_for(condition, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not condition():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def _children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in found.split()]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _survivors(pids: list[int], seconds: float = 10) -> list[int]:
    """Processes of ``pids`` still running after up to ``seconds`` (reaping takes a moment)."""
    deadline = time.monotonic() + seconds
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return [pid for pid in pids if _alive(pid)]


def _interrupted(proc: subprocess.Popen, release: Path) -> str:
    proc.send_signal(signal.SIGINT)
    release.touch()  # a deferred interrupt takes effect once the held call returns
    _out, err = proc.communicate(timeout=TIMEOUT_S)
    assert proc.returncode == 130, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert lines and lines[-1].startswith("imcsim: interrupted"), err
    assert "Traceback" not in err
    return lines[-1]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigint_stops_a_sweep_keeps_its_points_and_resumes(tmp_path: Path, capsys,
                                                           workers: str) -> None:
    out = tmp_path / "o"
    results = out / "results.jsonl"
    release = tmp_path / "release"
    proc = _start([*SWEEP, "--workers", workers, "--out", str(out)], tmp_path,
                  gate_env(SWEEP_GATE, results, 3, release))
    _wait_for(lambda: len(_lines(results)) >= 3, proc)
    workers_seen = _children(proc.pid)
    message = _interrupted(proc, release)
    assert "rerun the same command to resume" in message
    assert not _survivors(workers_seen), "workers outlived the sweep"
    kept = _lines(results)
    assert 3 <= len(kept) < POINTS
    main([*SWEEP, "--workers", "1", "--out", str(out)])  # the same command (one process)
    capsys.readouterr()
    after = _lines(results)
    assert after[: len(kept)] == kept  # nothing finished was lost or rewritten
    from imcsim.studies.sweep import point_key, read_results

    keys = [point_key(r) for r in read_results(results)]
    assert len(keys) == len(set(keys)) == len(after) == POINTS


def test_sigkill_of_a_parallel_sweep_takes_its_workers_down(tmp_path: Path) -> None:
    out = tmp_path / "o"
    results = out / "results.jsonl"
    proc = _start([*SWEEP, "--workers", "2", "--out", str(out)], tmp_path,
                  gate_env(SWEEP_GATE, results, 1, tmp_path / "never"))
    _wait_for(lambda: len(_lines(results)) >= 1, proc)
    workers = _children(proc.pid)
    assert workers
    proc.kill()
    proc.communicate()
    assert not _survivors(workers), "orphaned workers keep computing"


def test_sigint_during_training_leaves_a_state_that_resumes(tmp_path: Path, capsys,
                                                            monkeypatch) -> None:
    args = ["train", "--epochs", "2", "--train-images", "32", "--batch-size", "8",
            "--out", str(tmp_path / "w.pt")]
    state = tmp_path / "w.pt.state"
    release = tmp_path / "release"
    proc = _start(args, tmp_path, gate_env("imcsim.train.loop:_step", state, 0, release))
    _wait_for(state.exists, proc)  # the first epoch (4 steps) is done; step 5 is held
    assert "training state saved" in _interrupted(proc, release)
    assert state.exists()
    train_module = importlib.import_module("imcsim.train.loop")
    monkeypatch.setattr(train_module, "evaluate", lambda *_a, **_k: 0.5)  # skip the test split
    main([*args, "--format", "json"])
    record = json.loads(capsys.readouterr().out)
    assert 4 <= record["resumed_from_step"] < record["steps"] == 8
    assert (tmp_path / "w.pt").exists() and not state.exists()
