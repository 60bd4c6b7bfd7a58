"""Mapping search speed against a careful pure-Python VW-SDK search, in one process.

Workload (issue 13): VGG-13's 10 conv layers + the 4 distinct ResNet-18 3×3 shapes
(VW-SDK convention: unpadded input, stride 1) × 16 arrays (rows 64/128/256/512 ×
columns 128/256/512/1024), 1-bit weights.  The baseline is written here: the VW-SDK
window search as a plain loop that breaks as soon as a window no longer fits (the
authors' script scans every window and catches ZeroDivisionError; this is the fast way
to write it in Python).  Every figure is the best of ``--repeat`` warm passes; the
script first checks that every method returns the baseline's cycle counts.

    python benchmarks/bench_mapping.py
"""

from __future__ import annotations

import argparse
import math
import time

from imcsim import ArrayConfig, LayerShape, get_mapper, load_layer_table
from imcsim.mappers.search import map_batch


def workload() -> tuple[list[LayerShape], list[ArrayConfig]]:
    resnet18 = [LayerShape.conv2d(c, c, 3, s) for c, s in ((64, 56), (128, 28), (256, 14), (512, 7))]
    arrays = [ArrayConfig(rows=r, cols=c) for r in (64, 128, 256, 512) for c in (128, 256, 512, 1024)]
    return [*load_layer_table("vgg13"), *resnet18], arrays


def python_vw_sdk(layer: LayerShape, array: ArrayConfig) -> int:
    """VW-SDK's true minimum by a pure-Python window loop with early exits (groups = 1)."""
    (kh, kw), (oh, ow) = layer.kernel_size, layer.output_size
    rows, cols = array.rows, array.effective_cols
    cin, cout = layer.in_channels, layer.out_channels
    best = oh * ow * math.ceil(kh * kw * cin / rows) * math.ceil(cout / cols)  # im2col
    for a_h in range(1, oh + 1):
        p_h = kh + a_h - 1
        if p_h * kw > rows:
            break
        for a_w in range(1, ow + 1):
            ic_t, oc_t = rows // (p_h * (kw + a_w - 1)), cols // (a_h * a_w)
            if ic_t == 0 or oc_t == 0:
                break
            cycles = (math.ceil(oh / a_h) * math.ceil(ow / a_w) * math.ceil(cin / min(ic_t, cin))
                      * math.ceil(cout / min(oc_t, cout)))
            best = min(best, cycles)
    return best


def best_of(repeat: int, fn) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    layers, arrays = workload()
    pairs = [(layer, array) for layer in layers for array in arrays]
    vw, best = get_mapper("vw-sdk"), get_mapper("best")
    expected = [python_vw_sdk(layer, array) for layer, array in pairs]
    assert [vw.map(layer, array).cycles for layer, array in pairs] == expected
    assert map_batch(layers, arrays, "vw-sdk").cycles.ravel().tolist() == expected
    n = len(pairs)
    t_py = best_of(args.repeat, lambda: [python_vw_sdk(layer, array) for layer, array in pairs])
    t_vw = best_of(args.repeat, lambda: [vw.map(layer, array) for layer, array in pairs])
    t_best = best_of(args.repeat, lambda: [best.map(layer, array) for layer, array in pairs])
    t_batch = best_of(args.repeat, lambda: map_batch(layers, arrays, "vw-sdk"))
    print(f"{len(layers)} layers x {len(arrays)} arrays = {n} layer-mappings, best of {args.repeat}")
    print(f"pure-Python VW-SDK loop     {n / t_py:10,.0f} /s   1.00x")
    print(f"vw-sdk .map                 {n / t_vw:10,.0f} /s  {t_py / t_vw:5.2f}x the loop")
    print(f"best .map (5 mappers)       {n / t_best:10,.0f} /s  {t_best / t_vw:5.2f}x the time of vw-sdk")
    print(f"map_batch(vw-sdk), one call {n / t_batch:10,.0f} /s  {t_py / t_batch:5.1f}x the loop")


if __name__ == "__main__":
    main()
