"""Start-up of a small ``imcsim map``: the CLI as it runs now vs. the previous behaviour.

Both variants run the same command in fresh interpreters, alternating, in this process's
run; the previous behaviour is reproduced by loading every verb module and importing
``torch._dynamo`` (what the first convolution under capture used to import) before
``main``.  Reports the median wall time and CPU time (user + system) of each, and their
ratio.

    python benchmarks/bench_startup.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time

__all__: list[str] = []

COMMAND = ["map", "--model", "resnet20", "--array", "128x128", "--mapper", "vw-sdk"]
NOW = f"from imcsim.cli import main; main({COMMAND!r})"
BEFORE = ("import imcsim.cli as c; c.load_verbs(['--help']); import torch._dynamo; "
          f"c.main({COMMAND!r})")


def _run(code: str) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, stdout=subprocess.DEVNULL,
                   env={**os.environ, "PYTHONWARNINGS": "ignore"})
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    times: dict[str, list[tuple[float, float]]] = {"before": [], "now": []}
    _run(NOW)  # warm the file cache and numba's on-disk cache
    for _ in range(runs):
        times["before"].append(_run(BEFORE))
        times["now"].append(_run(NOW))
    med = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v))
           for k, v in times.items()}
    print(f"imcsim {' '.join(COMMAND)}: median of {runs} fresh interpreters")
    for name, (wall, cpu) in med.items():
        print(f"  {name:6s} wall {wall:6.2f} s   cpu {cpu:6.2f} s")
    print(f"  ratio before/now: wall {med['before'][0] / med['now'][0]:.2f}x, "
          f"cpu {med['before'][1] / med['now'][1]:.2f}x")


if __name__ == "__main__":
    main()
