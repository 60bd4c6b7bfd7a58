"""Cycle-simulator benchmark: numba kernel vs its plain-Python twin, and ResNet-20 per image.

    python benchmarks/bench_cyclesim.py [--mapper vw-sdk] [--layer layer1.0.conv1] [--repeat 5]

1. Speedup: both engines count the same layer of ResNet-20 on the same real image, in
   the same process (the numba time is the best of ``--repeat`` warm runs; the twin
   runs once, whole layer, nothing scaled).
2. ResNet-20 on one 32×32 image, warm (after JIT): the whole ``simulate_network``
   (forward pass with hooks, quantization, placement, kernels, pricing), and the
   kernel calls alone.
Chip: ``default`` (128×128, 8-bit weights in 2-bit cells, 8-bit inputs, 1-bit DACs)
costed with the ``isaac`` preset.  Prints measured numbers only.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from imcsim.cost import with_cost
from imcsim.cyclesim import count_events, layer_program, quantize
from imcsim.hardware import load_chip
from imcsim.network import map_network
from imcsim.nn.activations import mapped_inputs
from imcsim.nn.extract import extract_layers
from imcsim.nn.simulate import simulate_network
from imcsim.zoo.checkpoints import load_model, model_inputs


def best_of(repeat: int, fn) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mapper", default="vw-sdk")
    parser.add_argument("--layer", default="layer1.0.conv1")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    chip = with_cost(load_chip("default"), "isaac")
    model, weights = load_model("resnet20")
    image, _, described = model_inputs("resnet20", 1)
    report = map_network(extract_layers(model, image).layers, args.mapper, chip, model="resnet20")
    acts = mapped_inputs(model, image, report.mappings)
    p = chip.precision
    programs = {m.layer.name: layer_program(m) for m in report.mappings}
    quantized = {name: quantize(x, p.input_bits)[0] for name, x in acts.items()}
    print(f"resnet20 ({weights}), 1 {described}, mapper {args.mapper}, chip default + isaac cost")

    q, prog = quantized[args.layer], programs[args.layer]
    count_events(q, prog, p.input_slices, p.dac_bits)  # JIT (or load from cache)
    fast = best_of(args.repeat, lambda: count_events(q, prog, p.input_slices, p.dac_bits))
    slow = best_of(1, lambda: count_events(q, prog, p.input_slices, p.dac_bits, engine="python"))
    same = np.array_equal(count_events(q, prog, p.input_slices, p.dac_bits),
                          count_events(q, prog, p.input_slices, p.dac_bits, engine="python"))
    print(f"layer {args.layer}: numba {fast * 1e3:.3f} ms, python twin {slow * 1e3:.1f} ms, "
          f"speedup {slow / fast:.0f}x, identical counts: {same}")

    def kernels() -> None:
        for name, prog_ in programs.items():
            count_events(quantized[name], prog_, p.input_slices, p.dac_bits)

    simulate_network(model, report, image, chip)  # warm-up
    whole = best_of(args.repeat, lambda: simulate_network(model, report, image, chip))
    print(f"resnet20, one 32x32 image, warm: simulate_network {whole * 1e3:.1f} ms, "
          f"kernels alone {best_of(args.repeat, kernels) * 1e3:.2f} ms "
          f"({len(report.mappings)} layers, best of {args.repeat})")


if __name__ == "__main__":
    main()
