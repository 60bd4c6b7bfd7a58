"""Time and peak memory of mapping language models at full size, shape-only.

    python benchmarks/bench_llm_capture.py            # the three models + the 70B sweep
    python benchmarks/bench_llm_capture.py --skip-sweep

1. **End to end, one fresh process per model** (the command line, imports included):
   ``imcsim map --model M --input-shape 1,128 --input-dtype int64 --array 256x256
   --mapper all --cost isaac --format json`` for Llama-2-7B (``transformers:LlamaConfig``),
   Mixtral-8x7B (``transformers:MixtralConfig``) and Llama-2-70B
   (``mappings/llm/llama-2-70b.json``): capture on fake tensors, every dense mapper's
   placement, the cost model, the report.  Wall time and the child's peak resident set
   (``ru_maxrss``) are printed with the totals the run gave.
2. **Baseline in the same process tree**: the same command on a one-layer cut of
   Llama-2-7B with real fp32 weights (``--real``: what imcsim did before shape-only
   capture), against the same one-layer cut shape-only; the ratio of their peaks.
3. **Sweep, capture once, map many**: in this process, the 70B config is captured once,
   then mapped with 4 mappers on 4 array sizes and costed (16 reports); the time of
   each stage.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = {
    "Llama-2-7B": "transformers:LlamaConfig",
    "Mixtral-8x7B": "transformers:MixtralConfig",
    "Llama-2-70B": f"transformers:{ROOT / 'mappings/llm/llama-2-70b.json'}",
}
CLI = "import sys; from imcsim.cli import main; main(sys.argv[1:])"
REAL = """
import sys, torch, transformers
from imcsim.nn.extract import extract_layers
cfg = transformers.LlamaConfig(num_hidden_layers=1)
model = transformers.AutoModelForCausalLM.from_config(cfg).eval()
ex = extract_layers(model, torch.randint(0, cfg.vocab_size, (1, 128)))
print(ex.coverage.weight_macs)
"""
FAKE = REAL.replace("model = ", "from imcsim.nn.fake import shape_only\nwith shape_only():\n"
                    "    model = ").replace("\nex = ", "\n    ex = ")


PEAK = ("import atexit, resource, sys\n"
        "def _report():\n"
        "    r = resource.getrusage(resource.RUSAGE_SELF)\n"
        "    print('PEAK_KB', r.ru_maxrss, 'CPU_S', r.ru_utime + r.ru_stime, file=sys.stderr)\n"
        "atexit.register(_report)\n")
"""Prelude of every child: it reports its own peak resident set (KB) and CPU seconds."""


def _child(code: str, *args: str) -> tuple[float, float, float, str]:
    """Wall seconds, CPU seconds, peak RSS (GB) and stdout of one fresh Python process
    running ``code`` (CPU time is what a loaded machine inflates least)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", PEAK + code, *args], capture_output=True,
                         text=True, env=env, check=True)
    wall = time.perf_counter() - start
    fields = out.stderr.rsplit("PEAK_KB", 1)[1].split()
    return wall, float(fields[2]), int(fields[0]) / 1e6, out.stdout


def end_to_end() -> None:
    print("end to end (fresh process each; wall s, CPU s, peak RSS GB):")
    for name, spec in MODELS.items():
        wall, cpu, rss, out = _child(CLI, "map", "--model", spec, "--input-shape", "1,128",
                                "--input-dtype", "int64", "--array", "256x256", "--mapper",
                                "all", "--cost", "isaac", "--format", "json")
        totals = json.loads(out)["total"]
        first = next(iter(totals.values()))
        print(f"  {name:13s} {wall:6.1f} s  {cpu:6.1f} s  {rss:5.2f} GB  macs {first['macs']:,}  "
              f"matmul_macs {first['matmul_macs']:,}  weights_stored "
              f"{first['weights_stored']:,}  mappers {', '.join(totals)}")


def baseline() -> None:
    f_wall, f_cpu, f_rss, f_out = _child(FAKE)
    r_wall, r_cpu, r_rss, r_out = _child(REAL)
    print("one-layer Llama-2-7B cut, capture only (fresh process each):")
    print(f"  shape-only  {f_wall:6.1f} s wall  {f_cpu:6.1f} s CPU  {f_rss:5.2f} GB  "
          f"weight MACs {int(f_out):,}")
    print(f"  real fp32   {r_wall:6.1f} s wall  {r_cpu:6.1f} s CPU  {r_rss:5.2f} GB  "
          f"weight MACs {int(r_out):,}")
    print(f"  real / shape-only: CPU time {r_cpu / f_cpu:.2f}x, peak RSS {r_rss / f_rss:.2f}x")


def sweep() -> None:
    sys.path.insert(0, str(ROOT))
    from imcsim.cost import estimate_network, with_cost
    from imcsim.hardware import build_chip
    from imcsim.network import map_network
    from imcsim.zoo.inference import InputSpec
    from imcsim.zoo.workloads import model_workload

    start, cpu = time.perf_counter(), time.process_time()
    work = model_workload(MODELS["Llama-2-70B"], spec=InputSpec(shape=(1, 128), dtype="int64"))
    capture, capture_cpu = time.perf_counter() - start, time.process_time() - cpu
    mappers, arrays = ("im2col", "sdk", "vw-sdk", "sdk-unconstrained"), (
        "128x128", "256x256", "512x512", "1024x1024")
    start, cpu = time.perf_counter(), time.process_time()
    for array in arrays:
        chip = with_cost(build_chip("isaac", array), "isaac")
        for mapper in mappers:
            estimate_network(map_network(work.layers, mapper, chip), chip, "sequential")
    mapping, mapping_cpu = time.perf_counter() - start, time.process_time() - cpu
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    print(f"70B sweep, {len(arrays)} arrays x {len(mappers)} mappers, isaac cost (wall / CPU "
          f"s): capture once {capture:.1f} / {capture_cpu:.1f}, 16 maps + costs {mapping:.1f} "
          f"/ {mapping_cpu:.1f}, total {capture + mapping:.1f} / {capture_cpu + mapping_cpu:.1f};"
          f" peak RSS {rss:.2f} GB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-sweep", action="store_true")
    parser.add_argument("--skip-baseline", action="store_true")
    args = parser.parse_args()
    end_to_end()
    if not args.skip_baseline:
        baseline()
    if not args.skip_sweep:
        sweep()


if __name__ == "__main__":
    main()
