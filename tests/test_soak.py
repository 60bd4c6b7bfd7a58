"""Issue 29.5, the deterministic variant of ``benchmarks/soak.py``: a sweep killed three
times (SIGKILL, SIGINT, SIGKILL of a two-worker run) at points the test chooses (a gate
holds the work there, ``tests/gate_site``), plus a torn last line, then resumed: every
point is present exactly once and identical to an uninterrupted run."""

from __future__ import annotations

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

ARRAYS = ",".join(f"{r}x{c}" for r in (64, 128, 256, 512) for c in (64, 256))
SWEEP = ["sweep", "--model", "table:vgg13", "--arrays", ARRAYS, "--mappers",
         "im2col,sdk,vw-sdk"]  # 24 points
POINTS = 24
GATE = "imcsim.studies.evaluate:evaluate_point"
TIMEOUT_S = 120


def _lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def _killed_at(tmp: Path, out: Path, lines: int, sig: signal.Signals, workers: str) -> None:
    """Start the sweep, let it write ``lines`` lines (then the gate holds it), signal it."""
    results, release = out / "results.jsonl", tmp / f"release-{lines}"
    code = f"from imcsim.cli import main; main({[*SWEEP, '--workers', workers, '--out', str(out)]!r})"
    env = {**os.environ, "OMP_NUM_THREADS": "1", **gate_env(GATE, results, lines, release)}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, text=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    deadline = time.monotonic() + TIMEOUT_S
    while _lines(results) < lines:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)
    proc.send_signal(sig)
    release.touch()
    _out, err = proc.communicate(timeout=TIMEOUT_S)
    assert proc.returncode == (130 if sig == signal.SIGINT else -signal.SIGKILL), err
    assert "Traceback" not in err


def test_a_killed_and_resumed_sweep_equals_an_uninterrupted_one(tmp_path: Path, capsys) -> None:
    from imcsim.studies.results import load_results
    from imcsim.studies.sweep import point_key

    main([*SWEEP, "--workers", "1", "--out", str(tmp_path / "ref")])
    out = tmp_path / "soak"
    _killed_at(tmp_path, out, 3, signal.SIGKILL, "1")
    _killed_at(tmp_path, out, 8, signal.SIGINT, "1")
    with (out / "results.jsonl").open("a") as handle:
        handle.write('{"key": "a torn la')  # a kill in the middle of a write
    _killed_at(tmp_path, out, 13, signal.SIGKILL, "2")
    main([*SWEEP, "--workers", "1", "--out", str(out)])
    capsys.readouterr()
    ref = {point_key(r): r for r in load_results(tmp_path / "ref" / "results.jsonl").records.values()}
    loaded = load_results(out / "results.jsonl")
    got = [point_key(r) for r in loaded.records.values()]
    assert not loaded.notices
    assert len(got) == len(set(got)) == _lines(out / "results.jsonl") == POINTS == len(ref)
    assert {point_key(r): r for r in loaded.records.values()} == ref
    main(["verify", str(out)])
    assert "all current" in capsys.readouterr().out
