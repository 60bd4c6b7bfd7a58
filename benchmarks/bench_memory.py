"""Peak memory of the functional crossbar simulation against plain torch inference.

    python benchmarks/bench_memory.py [--model resnet18] [--batch 8] [--repeats 2]

Each measurement is a fresh Python process (this script re-run with ``--child``) that
imports torch and imcsim, builds the model (untrained ResNet-18 by default: the
weights do not change the memory), then either runs plain torch inference or maps the
model (``default`` chip, 128x128 arrays, VW-SDK), converts it with ``to_crossbar``
(``slicing="full"``), deletes the float model and runs one forward pass, all under
``torch.no_grad()`` with one intra-op thread.  Linux only: it reads ``VmRSS``/``VmHWM``
from ``/proc/self/status``.

Printed per run (MB, 1 MB = 2^20 bytes):

* ``import``: resident set right after the imports (shared baseline of both runs);
* ``before``: resident set just before the forward pass (models built, converted);
* ``peak``: the process's peak resident set (``VmHWM``) over its whole life;
* ratios ``peak / plain peak`` and ``(peak - import) / (plain peak - import)``.

The plain and crossbar processes alternate ``--repeats`` times; the best (lowest) peak
of each is kept, so another job's memory pressure cannot inflate a ratio.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys


def _status_mb(key: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    raise KeyError(key)


def child(mode: str, model_name: str, batch: int, mapper: str, chip: str) -> dict:
    import torch

    from imcsim.hardware import load_chip
    from imcsim.network import map_network
    from imcsim.nn.crossbar import CrossbarConfig, to_crossbar
    from imcsim.nn.extract import extract_layers
    from imcsim.studies.zoo import load_model, model_inputs

    torch.set_num_threads(1)
    imported = _status_mb("VmRSS")
    with torch.no_grad():
        model, _ = load_model(model_name, pretrained=False)
        x, _, _ = model_inputs(model_name, batch)
        if mode == "crossbar":
            report = map_network(extract_layers(model, x[:1]).layers, mapper, load_chip(chip))
            model = to_crossbar(model, report, CrossbarConfig(slicing="full"))
        before = _status_mb("VmRSS")
        y = model(x)
    return {"mode": mode, "import": imported, "before": before, "peak": _status_mb("VmHWM"),
            "checksum": float(y.double().abs().sum())}


def run(mode: str, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, __file__, "--child", mode, "--model", args.model,
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
    parser.add_argument("--child", choices=["plain", "crossbar"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.model, args.batch, args.mapper, args.chip)))
        return
    best: dict[str, dict] = {}
    for _ in range(args.repeats):
        for mode in ("plain", "crossbar"):
            r = run(mode, args)
            if mode not in best or r["peak"] < best[mode]["peak"]:
                best[mode] = r
    plain, xbar = best["plain"], best["crossbar"]
    print(f"{args.model}, batch {args.batch}, chip {args.chip}, mapper {args.mapper}, "
          f"slicing=full, one thread, best of {args.repeats} fresh processes each")
    print(f"{'run':10s} {'import MB':>10s} {'before MB':>10s} {'peak MB':>9s} "
          f"{'x plain':>8s} {'x plain above import':>21s}")
    for r in (plain, xbar):
        ratio = r["peak"] / plain["peak"]
        above = (r["peak"] - r["import"]) / (plain["peak"] - plain["import"])
        print(f"{r['mode']:10s} {r['import']:10.0f} {r['before']:10.0f} {r['peak']:9.0f} "
              f"{ratio:8.2f} {above:21.2f}")
    print("goal: crossbar peak <= 2x plain peak")


if __name__ == "__main__":
    main()
