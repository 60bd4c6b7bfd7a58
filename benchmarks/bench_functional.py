"""Speed of the functional crossbar simulation against plain torch inference, same run.

    python benchmarks/bench_functional.py [--images 64] [--repeats 5] [--mapper vw-sdk]

Prints, for ResNet-20 (shipped weights) on the ``default`` chip preset (128x128 arrays,
8-bit weights in 2-bit cells, 8-bit inputs through 1-bit DACs, 8-bit ADCs):

* plain torch inference (the float model, NCHW, as users run it);
* ``slicing="none"``: quantized weights and inputs, one ADC read per tile and column
  (goal: <= 3x plain);
* ``slicing="full"``: bit-serial inputs x bit-sliced weights, one ADC read per input
  slice, weight slice, tile and column (goal: <= 1.5 x slices x plain, where slices is
  the MAC-weighted mean over layers of input slices x weight slices);
* ``full, float``: the same with the int8 convolutions off (float convolutions, every
  input slice in one group: the path noisy cells take); the script checks that both
  give the same outputs.

Every timing is the minimum over ``--repeats`` interleaved runs after one warm-up (which
builds the cell tensors and the oneDNN kernels), so other load on the machine inflates
all three alike.
"""

from __future__ import annotations

import argparse
import math
import time
from unittest.mock import patch

import torch

from imcsim.hardware import load_chip
from imcsim.network import map_network
from imcsim.nn import mvm
from imcsim.nn.crossbar import CrossbarConfig, CrossbarConv2d, to_crossbar
from imcsim.nn.extract import extract_layers
from imcsim.zoo.checkpoints import load_model, model_inputs


def timed(fn, x: torch.Tensor) -> float:
    start = time.perf_counter()
    with torch.no_grad():
        fn(x)
    return time.perf_counter() - start


def slice_product(sim: torch.nn.Module, layers, x: torch.Tensor) -> float:
    """MAC-weighted mean of (input slices x weight slices) over the simulated layers."""
    signed: dict[str, bool] = {}
    hooks = [m.register_forward_pre_hook(
        lambda mod, inp, name=n: signed.__setitem__(name, bool((inp[0] < 0).any())))
        for n, m in sim.named_modules() if isinstance(m, CrossbarConv2d)]
    with torch.no_grad():
        sim(x[:2])
    for h in hooks:
        h.remove()
    total = weighted = 0.0
    for layer in layers:
        s = sim.get_submodule(layer.name).settings
        n_x = 2 * math.ceil((s.input_bits - 1) / s.dac_bits) if signed[layer.name] else \
            math.ceil(s.input_bits / s.dac_bits)
        n_w = math.ceil(s.weight_bits / s.cell_bits) * (2 if s.sign == "differential" else 1)
        total += layer.macs
        weighted += layer.macs * n_x * n_w
    return weighted / total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--mapper", default="vw-sdk")
    parser.add_argument("--chip", default="default")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(),
                        help="torch intra-op threads (1 gives stable timings on a shared machine)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model, weights = load_model("resnet20")
    x, _, data = model_inputs("resnet20", args.images)
    layers = extract_layers(model, x[:1]).layers
    report = map_network(layers, args.mapper, load_chip(args.chip))
    runs = {"plain torch": model,
            "slicing=none": to_crossbar(model, report, CrossbarConfig(slicing="none")),
            "slicing=full": to_crossbar(model, report, CrossbarConfig(slicing="full")),
            "full, float": to_crossbar(model, report, CrossbarConfig(slicing="full"))}
    for name, fn in runs.items():
        if name == "full, float":  # cells built now without int8: the float convolutions
            mvm.int8_available.cache_clear()
            with patch.object(mvm, "int8_available", lambda: False):
                timed(fn, x)
            if not torch.equal(fn(x[:8]), runs["slicing=full"](x[:8])):
                raise SystemExit("int8 and float paths disagree")
        else:
            timed(fn, x)
    best = {name: min(timed(fn, x) for _ in range(1)) for name, fn in runs.items()}
    for _ in range(args.repeats - 1):
        for name, fn in runs.items():
            best[name] = min(best[name], timed(fn, x))
    slices = slice_product(runs["slicing=full"], layers, x)
    plain = best["plain torch"]
    print(f"resnet20 ({weights}), {args.images} {data}, chip {args.chip} "
          f"({report.chip.array.label}), mapper {args.mapper}, torch threads "
          f"{torch.get_num_threads()}")
    print(f"{'run':14s} {'ms/batch':>9s} {'x plain':>8s}  goal")
    print(f"{'plain torch':14s} {plain * 1e3:9.1f} {1.0:8.2f}")
    none = best["slicing=none"] / plain
    print(f"{'slicing=none':14s} {best['slicing=none'] * 1e3:9.1f} {none:8.2f}  <= 3x plain")
    for name in ("slicing=full", "full, float"):
        full = best[name] / plain
        print(f"{name:14s} {best[name] * 1e3:9.1f} {full:8.2f}  "
              f"<= 1.5 x {slices:.1f} slices x plain = {1.5 * slices:.1f}x "
              f"(measured {full / slices:.2f} x slices x plain)")


if __name__ == "__main__":
    main()
