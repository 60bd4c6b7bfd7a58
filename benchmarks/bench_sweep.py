"""Time a full analytic sweep: 4 networks × 16 array sizes × every dense mapper, ISAAC cost.

Runs in this process on one core (``workers=1``) after a warm-up pass that extracts the
models (torch) once.  Prints the warm time of the whole sweep (records appended to a
results file) and, as a same-process baseline, the time of the mapping part with the
VW-SDK / rectangular-SDK searches scanning every window instead of only the smallest
window per window count (``imcsim.mappers.geometry.useful_sizes``).

    python benchmarks/bench_sweep.py
"""

from __future__ import annotations

import argparse
import tempfile
import time
from unittest import mock

import numpy as np

from imcsim.hardware import ArrayConfig
from imcsim.mappers import DENSE_MAPPERS
from imcsim.network import map_network
from imcsim.studies.evaluate import cached_workload
from imcsim.studies.sweep import SweepSpec, sweep

MODELS = ("resnet20", "wrn16-4", "vgg13", "resnet18")
SIDES = (64, 128, 256, 512)
ARRAYS = tuple(f"{r}x{c}" for r in SIDES for c in SIDES)


def full_grid(out: tuple[int, int], limit: tuple[int, int] | None = None):
    """The naive search space: every window 1..limit per axis."""
    limit = out if limit is None else limit
    hh, ww = np.meshgrid(np.arange(1, limit[0] + 1), np.arange(1, limit[1] + 1), indexing="ij")
    return hh.ravel(), ww.ravel()


def time_mapping(grid=None) -> tuple[float, int]:
    """Seconds to map every layer with every dense mapper on every array (no cost)."""
    layers = [cached_workload(m, "dense", 1.0).layers for m in MODELS]
    arrays = [ArrayConfig(rows=r, cols=c) for r in SIDES for c in SIDES]
    patches = [mock.patch(f"imcsim.mappers.{mod}.window_grid", grid) for mod in ("vw_sdk", "sdk")]
    start = time.perf_counter()
    cycles = 0
    with patches[0] if grid else _null(), patches[1] if grid else _null():
        for net in layers:
            for array in arrays:
                for mapper in DENSE_MAPPERS:
                    cycles += map_network(net, mapper, array).cycles
    return time.perf_counter() - start, cycles


class _null:
    def __enter__(self) -> None: ...
    def __exit__(self, *exc: object) -> None: ...


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    spec = SweepSpec(models=MODELS, arrays=ARRAYS, mappers=DENSE_MAPPERS, chips=("isaac",))
    with tempfile.TemporaryDirectory() as tmp:
        sweep(spec, f"{tmp}/warm", workers=1)  # extraction, imports, caches
        times = []
        for i in range(args.repeat):
            start = time.perf_counter()
            records = sweep(spec, f"{tmp}/run{i}", workers=1)
            times.append(time.perf_counter() - start)
    fast, cycles = min(time_mapping() for _ in range(args.repeat))
    slow, slow_cycles = time_mapping(full_grid)
    assert cycles == slow_cycles, "pruned search must find the same minima"
    print(f"points: {len(records)} ({len(MODELS)} networks x {len(ARRAYS)} arrays x "
          f"{len(DENSE_MAPPERS)} mappers, ISAAC analytic cost)")
    print(f"full sweep, warm, one core: {min(times):.2f} s (best of {args.repeat}; "
          f"{1e3 * min(times) / len(records):.2f} ms per point)")
    print(f"mapping only: {fast:.2f} s with the pruned window search, {slow:.2f} s scanning "
          f"every window -> {slow / fast:.1f}x")


if __name__ == "__main__":
    main()
