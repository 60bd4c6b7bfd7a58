"""Soak: kill a long sweep at random moments, resume it each time, and check the result.

A 1,120-point sweep (``table:resnet18,table:vgg13`` × 28 array shapes × 5 mappers × 2
chips × 2 ADC resolutions) is run once without interruption into ``ref/``; then the same
command is started into ``soak/`` and killed ``--kills`` times at a random moment of its
run — during start-up (15 %), or after a random number of new points, on average an even
share of what is left, plus up to 50 ms — (SIGKILL and SIGINT mixed at random, one or two
worker processes), each time resumed
by starting it again; a last start lets it finish.  A SIGINT while Python is still
importing imcsim (the first second) ends with Python's own traceback — counted apart as
``start_up_tracebacks``; one after imcsim's handler is in place must not.  The check: every point is present
exactly once in ``soak/results.jsonl`` (no duplicate and no missing line, no ignored
line), each record identical to the uninterrupted run's, and ``imcsim verify`` passes.

    python benchmarks/soak.py                 # 20 kills, seed 0
    python benchmarks/soak.py --kills 5 --seed 3

Kill times are random by design (this is a benchmark, not a test); the deterministic
variant is ``tests/test_soak.py`` (gated kills).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ARRAYS = ",".join(f"{r}x{c}" for r in (64, 96, 128, 192, 256, 384, 512) for c in (64, 128, 256, 512))
SWEEP = ["sweep", "--model", "table:resnet18,table:vgg13", "--arrays", ARRAYS, "--mappers",
         "im2col,sdk,sdk-unconstrained,vw-sdk,sdk-rect", "--chips", "default,isaac",
         "--adc-bits", "6,8"]
POINTS = 1120


def start(out: Path, workers: int) -> subprocess.Popen:
    code = f"from imcsim.cli import main; main({[*SWEEP, '--workers', str(workers), '--out', str(out)]!r})"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def finish(out: Path, workers: int) -> tuple[float, float]:
    """Run to the end; (seconds to the first record, seconds in all)."""
    begin, first = time.perf_counter(), None
    proc = start(out, workers)
    results = out / "results.jsonl"
    while proc.poll() is None:
        if first is None and results.exists() and results.stat().st_size:
            first = time.perf_counter() - begin
        time.sleep(0.005)
    _out, err = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"sweep failed ({proc.returncode}): {err[-500:]}")
    total = time.perf_counter() - begin
    return (first if first is not None else total), total


def lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def soak(root: Path, kills: int, rng: random.Random) -> dict:
    first_s, ref_s = finish(root / "ref", 1)
    results = root / "soak" / "results.jsonl"
    log = []
    for i in range(kills):
        sig = rng.choice([signal.SIGKILL, signal.SIGINT])
        workers = rng.choice([1, 2])
        before = lines(results)
        proc = start(root / "soak", workers)
        mode = "start-up" if rng.random() < 0.15 else "progress"
        if mode == "start-up":  # imports, reading the results file
            time.sleep(rng.uniform(0, first_s))
        else:  # after a random number of new points, on average 1/kills of what is left
            grow = rng.randint(1, max(1, 2 * (POINTS - before) // (kills - i + 1)))
            while proc.poll() is None and lines(results) < before + grow:
                time.sleep(0.002)
            time.sleep(rng.uniform(0, 0.05))
        proc.send_signal(sig)
        _out, err = proc.communicate()
        after = lines(results)
        log.append({"kill": i + 1, "mode": mode, "signal": sig.name, "workers": workers,
                    "exit": proc.returncode, "lines_before": before, "lines_after": after,
                    "traceback": "Traceback" in err,
                    "last_stderr": err.strip().splitlines()[-1][:160] if err.strip() else ""})
        print(json.dumps(log[-1]), flush=True)
    finish(root / "soak", 1)
    return compare(root, first_s, ref_s, log)


def compare(root: Path, first_s: float, ref_s: float, log: list[dict]) -> dict:
    sys.path.insert(0, str(Path(__file__).parents[1]))
    from imcsim.studies.sweep import point_key

    ref = {point_key(r): r for r in records(root / "ref" / "results.jsonl")}
    got = records(root / "soak" / "results.jsonl")
    keys = [point_key(r) for r in got]
    differ = [k for k, record in zip(keys, got) if k in ref and record != ref[k]]
    verify = subprocess.run([sys.executable, "-c", "from imcsim.cli import main; "
                             f"main(['verify', {str(root / 'soak')!r}])"], capture_output=True)
    return {
        "points": POINTS, "reference_seconds": round(ref_s, 1),
        "reference_first_record_seconds": round(first_s, 1), "kills": len(log),
        "sigkill": sum(e["signal"] == "SIGKILL" for e in log),
        "sigint": sum(e["signal"] == "SIGINT" for e in log),
        "killed_with_work_left": sum(e["lines_after"] < POINTS and e["exit"] != 0 for e in log),
        "killed_after_progress": sum(e["lines_before"] < e["lines_after"] < POINTS for e in log),
        "tracebacks": sum(e["traceback"] and e["mode"] == "progress" for e in log),
        "start_up_tracebacks": sum(e["traceback"] and e["mode"] == "start-up" for e in log),
        "lines": len(got), "distinct_points": len(set(keys)),
        "missing": len(set(ref) - set(keys)), "differing": len(differ),
        "verify_exit": verify.returncode,
        "ok": (len(got) == len(set(keys)) == POINTS and set(keys) == set(ref) and not differ
               and verify.returncode == 0
               and not any(e["traceback"] and e["mode"] == "progress" for e in log)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", type=Path, help="Folder to keep the runs in (default: temporary).")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        summary = soak(root, args.kills, random.Random(args.seed))
    print(json.dumps(summary))
    raise SystemExit(0 if summary["ok"] else 1)


if __name__ == "__main__":
    main()
