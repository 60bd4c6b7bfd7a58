"""IR-drop solver: speed against its dense twin, and the first-order approximation's error
on the tiles of a real network, in the same run.

    python benchmarks/bench_irdrop.py [--wire 0.35,1,2.1] [--mapper vw-sdk]

1. Speed: the numba solver (``imcsim._irdrop.effective_conductance``) against its
   plain-Python twin (a dense nodal solve) on a 12x12 tile, and per 128x128 tile against
   the first-order approximation.
2. Error: ResNet-20 (shipped weights) on the default chip (128x128, 2-bit cells, PCM-like
   cells of 40 kOhm / 6 MOhm): every tile's effective cell levels under the exact solve and
   under the approximation, for each wire resistance; the IR drop itself (exact − ideal) and
   the approximation's error (approximation − exact), in conductance levels (1 = one step
   of a 2-bit cell).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from imcsim import _irdrop
from imcsim.hardware import load_chip
from imcsim.network import map_network
from imcsim.nn.crossbar import CrossbarConfig, CrossbarConv2d, to_crossbar
from imcsim.nn.extract import extract_layers
from imcsim.zoo.checkpoints import load_model, model_inputs


def best_time(fn, repeats: int = 3) -> float:
    fn()
    return min(_once(fn) for _ in range(repeats))


def _once(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def speed() -> None:
    rng = np.random.default_rng(0)
    small = rng.uniform(1 / 6e6, 1 / 40e3, (1, 12, 12))
    big = rng.uniform(1 / 6e6, 1 / 40e3, (1, 128, 128))
    numba_small = best_time(lambda: _irdrop.effective_conductance(small, 1.0, 1.0))
    twin_small = best_time(lambda: _irdrop.effective_conductance_py(small, 1.0, 1.0), 1)
    exact_big = best_time(lambda: _irdrop.effective_conductance(big, 1.0, 1.0), 2)
    linear_big = best_time(lambda: _irdrop.effective_conductance_linear(big, 1.0, 1.0))
    print(f"12x12 tile: numba {numba_small * 1e3:.2f} ms, dense twin {twin_small * 1e3:.1f} ms "
          f"({twin_small / numba_small:.0f}x)")
    print(f"128x128 tile: exact {exact_big * 1e3:.0f} ms, first-order {linear_big * 1e3:.1f} ms")


def levels(model, report, ohm: float, solver: str) -> list[torch.Tensor]:
    cfg = CrossbarConfig(adc_bits=8, wire_resistance_ohm=ohm, ir_drop_solver=solver)
    sim = to_crossbar(model, report, cfg)
    return [torch.cat([w.reshape(-1) for w in m.cells().weights])
            for m in sim.modules() if isinstance(m, CrossbarConv2d)]


def errors(model, report, wires: list[float]) -> None:
    ideal = levels(model, report, 0.0, "exact")
    print(f"{'wire ohm':>8s} {'IR drop mean':>12s} {'max':>8s} {'approx err mean':>15s} "
          f"{'max':>8s} {'exact s':>8s}")
    for ohm in wires:
        start = time.perf_counter()
        exact = levels(model, report, ohm, "exact")
        seconds = time.perf_counter() - start
        linear = levels(model, report, ohm, "linear")
        real = [i != 0 for i in ideal]
        drop = torch.cat([(e - i)[r] for e, i, r in zip(exact, ideal, real)]).abs()
        err = torch.cat([(a - e)[r] for a, e, r in zip(linear, exact, real)]).abs()
        print(f"{ohm:8.2f} {float(drop.mean()):12.4f} {float(drop.max()):8.3f} "
              f"{float(err.mean()):15.5f} {float(err.max()):8.4f} {seconds:8.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wire", default="0.35,1,2.1")
    parser.add_argument("--mapper", default="vw-sdk")
    args = parser.parse_args()
    torch.set_num_threads(1)
    speed()
    model, _ = load_model("resnet20")
    x, _, _ = model_inputs("resnet20", 1)
    report = map_network(extract_layers(model, x).layers, args.mapper, load_chip("default"))
    print(f"resnet20 on the default chip, {args.mapper}: {sum(m.tiles for m in report.mappings)} "
          "tiles; cell levels 0..3 (2-bit cells)")
    errors(model, report, [float(w) for w in args.wire.split(",")])


if __name__ == "__main__":
    main()
