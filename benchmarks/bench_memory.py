"""Peak memory of the functional crossbar simulation against plain torch inference.

    python benchmarks/bench_memory.py [--model resnet18] [--batch 8] [--repeats 2]

Every figure comes from a fresh Python process (this script re-run with ``--child``),
with one intra-op thread, under ``torch.no_grad()``; Linux only (it reads ``VmRSS`` and
``VmHWM``, the peak resident set, from ``/proc/self/status``).  Model: untrained
ResNet-18 by default (weights do not change the memory), ``default`` chip (128x128
arrays, 8-bit weights in 2-bit cells, 8-bit inputs through 1-bit DACs), VW-SDK mapping,
``slicing="full"``.

1. A *setup* process builds the model, maps it, converts it with ``to_crossbar``, saves
   the converted model and the float model with ``torch.save``, then frees the report
   and the float model and runs one forward pass.  Its whole-life peak (``whole run``:
   mapping search and conversion included) is printed next to a plain process that
   builds the model and runs it.
2. The *forward* processes measure the forward pass alone: each imports torch and
   imcsim, loads one saved model (plain or converted), runs one forward pass on the same
   batch and reports its peak resident set.  ``import`` is its resident set after the
   imports (the shared baseline); ratios are given whole and above that baseline.

The two forward processes alternate ``--repeats`` times and the lowest peak of each is
kept, so another job's memory pressure cannot inflate a ratio.
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import tempfile
from pathlib import Path


def _status_mb(key: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    raise KeyError(key)


def _setup(mode: str, args: argparse.Namespace, folder: Path) -> dict:
    """Build (and for ``crossbar`` map and convert) the model, save it, run it once."""
    import torch

    from imcsim.hardware import load_chip
    from imcsim.network import map_network
    from imcsim.nn.crossbar import CrossbarConfig, to_crossbar
    from imcsim.nn.extract import extract_layers
    from imcsim.zoo.checkpoints import load_model, model_inputs

    torch.set_num_threads(1)
    imported = _status_mb("VmRSS")
    with torch.no_grad():
        model, _ = load_model(args.model, pretrained=False)
        x, _, _ = model_inputs(args.model, args.batch)
        torch.save(x, folder / "x.pt")
        if mode == "crossbar":
            report = map_network(extract_layers(model, x[:1]).layers, args.mapper,
                                 load_chip(args.chip))
            model = to_crossbar(model, report, CrossbarConfig(slicing="full"))
            del report
        torch.save(model, folder / f"{mode}.pt")
        gc.collect()
        model(x)
    return {"import": imported, "peak": _status_mb("VmHWM")}


def _forward(mode: str, folder: Path) -> dict:
    """Load the saved model and run one forward pass: nothing else in the process."""
    import torch

    import imcsim.nn.crossbar  # noqa: F401  (the converted model's classes)

    torch.set_num_threads(1)
    imported = _status_mb("VmRSS")
    model = torch.load(folder / f"{mode}.pt", weights_only=False)
    x = torch.load(folder / "x.pt")
    with torch.no_grad():
        y = model(x)
    return {"import": imported, "peak": _status_mb("VmHWM"),
            "checksum": float(y.double().abs().sum())}


def _run(step: str, mode: str, args: argparse.Namespace, folder: Path) -> dict:
    cmd = [sys.executable, __file__, "--child", step, mode, str(folder), "--model", args.model,
           "--batch", str(args.batch), "--mapper", args.mapper, "--chip", args.chip]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--mapper", default="vw-sdk")
    parser.add_argument("--chip", default="default")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        step, mode, folder = args.child
        fn = _setup if step == "setup" else _forward
        result = fn(mode, args, Path(folder)) if step == "setup" else fn(mode, Path(folder))
        print(json.dumps(result))
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        setup = {mode: _run("setup", mode, args, folder) for mode in ("plain", "crossbar")}
        best: dict[str, dict] = {}
        for _ in range(args.repeats):
            for mode in ("plain", "crossbar"):
                r = _run("forward", mode, args, folder)
                if mode not in best or r["peak"] < best[mode]["peak"]:
                    best[mode] = r
    plain = best["plain"]
    print(f"{args.model}, batch {args.batch}, chip {args.chip}, mapper {args.mapper}, "
          f"slicing=full, one thread; forward: best of {args.repeats} fresh processes each")
    print(f"{'run':9s} {'import MB':>9s} {'forward peak MB':>15s} {'x plain':>8s} "
          f"{'above import':>13s} {'whole run MB':>12s} {'x plain':>8s}")
    for mode in ("plain", "crossbar"):
        r, whole = best[mode], setup[mode]["peak"]
        above = (r["peak"] - r["import"]) / (plain["peak"] - plain["import"])
        print(f"{mode:9s} {r['import']:9.0f} {r['peak']:15.0f} {r['peak'] / plain['peak']:8.2f} "
              f"{above:13.2f} {whole:12.0f} {whole / setup['plain']['peak']:8.2f}")
    print("goal: crossbar forward peak <= 2x plain")


if __name__ == "__main__":
    main()
