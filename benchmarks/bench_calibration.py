"""Wall time of ``imcsim accuracy`` with a calibrated ADC against the same command with
``--ideal``, measured in one run (issue 13: at most 4x).

    python benchmarks/bench_calibration.py [--images 200] [--repeats 2]

Runs, interleaved, each as a fresh process (imports, data, mapping and float accuracy
included, as a user sees it), on the default chip (128x128, vw-sdk):

* ``--ideal``;
* ``--adc-bits 8`` with the default calibration (percentile, 32 images), cold: a fresh
  calibration cache directory every time;
* the same, warm: the cache filled by a previous run of the same model/chip/mapping;
* the calibration before this change, for reference: ``--adc-calibration max --adc-step
  exact --calibration-images 128 --no-calibration-cache`` (one full simulated pass over
  128 images; the same ranges and outputs as the previous code).

Prints the minimum wall time of each over ``--repeats`` and its ratio to ``--ideal``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASE = ["accuracy", "--model", "resnet20", "--array", "128x128", "--mapper", "vw-sdk",
        "--format", "json"]
RUNS = {
    "ideal": ["--ideal"],
    "adc 8, cold cache": ["--adc-bits", "8"],
    "adc 8, warm cache": ["--adc-bits", "8"],
    "adc 8, previous calibration": ["--adc-bits", "8", "--adc-calibration", "max",
                                    "--adc-step", "exact", "--calibration-images", "128",
                                    "--no-calibration-cache"],
}


def timed(args: list[str], cache: str) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "IMCSIM_CACHE_DIR": cache}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "from imcsim.cli import main; main()", *args],
                   check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    base = [*BASE, "--images", str(args.images)]
    best = {name: float("inf") for name in RUNS}
    with tempfile.TemporaryDirectory() as warm:
        timed([*base, *RUNS["adc 8, warm cache"]], warm)  # fill the warm cache
        for _ in range(args.repeats):
            for name, extra in RUNS.items():
                with tempfile.TemporaryDirectory() as cold:
                    best[name] = min(best[name], timed([*base, *extra],
                                                       warm if "warm" in name else cold))
    ideal = best["ideal"]
    print(f"imcsim accuracy, resnet20, default chip 128x128, vw-sdk, {args.images} images, "
          f"min of {args.repeats} interleaved runs")
    print(f"{'run':30s} {'wall s':>8s} {'x ideal':>8s}")
    for name, seconds in best.items():
        print(f"{name:30s} {seconds:8.1f} {seconds / ideal:8.2f}")


if __name__ == "__main__":
    main()
