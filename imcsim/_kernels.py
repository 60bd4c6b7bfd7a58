"""numba kernels of the cycle simulator (private), each with a plain-Python twin.

Importing this module imports numba; ``imcsim.cyclesim`` imports it lazily so that
``import imcsim`` stays fast.  The twins are written independently (lists, one
bit-slice at a time: no slice masks) and the tests compare them with the kernels on
random cases.

Layout shared by both (built by ``imcsim.cyclesim.layer_program``):

* ``x`` (images, L) int64: quantized inputs, each image flattened from its padded,
  extended (C, H_x, W_x) grid; padding is 0.
* ``bases`` (windows,): flat offset of each parallel window's origin.
* ``row_off`` (rows,): flat offset of each tile row (channel, dy, dx) from the origin;
  tile t owns ``row_off[tile_ptr[t]:tile_ptr[t + 1]]``.
* ``tile_cols`` (tiles,): physical columns in use; ``tile_signals``: conversions per stage.

Result per image (columns of the (images, 5) int64 array, see ``COUNTS``): stages
spent when all-zero bit-slices are skipped, stages without skipping, DAC activations
(rows whose slice is nonzero), cell reads (those rows × columns in use) and ADC
conversions of the stages spent.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["COUNTS", "count_stages", "count_stages_py", "slice_masks", "slice_masks_py"]

COUNTS = ("stage_cycles", "stage_cycles_no_skip", "dac_activations", "cell_reads", "adc_conversions")


@numba.njit(cache=True)
def slice_masks(x, dac_bits):
    """Per input value: a bitmask of its nonzero ``dac_bits`` slices, and their count."""
    masks = np.zeros_like(x)
    counts = np.zeros_like(x)
    mask = (1 << dac_bits) - 1
    for n in range(x.shape[0]):
        for i in range(x.shape[1]):
            v, bits, count, k = x[n, i], 0, 0, 0
            while v:
                if v & mask:
                    bits |= 1 << k
                    count += 1
                v >>= dac_bits
                k += 1
            masks[n, i] = bits
            counts[n, i] = count
    return masks, counts


@numba.njit(cache=True)
def count_stages(x, bases, row_off, tile_ptr, tile_cols, tile_signals, slices, dac_bits):
    """Walk every image × window × tile and count the events (numba).

    A tile's stage k is spent iff some row's slice k is nonzero: the OR of the rows'
    slice masks has bit k set.  Rows driven over all stages = Σ nonzero slices per row.
    """
    masks, counts = slice_masks(x, dac_bits)
    out = np.zeros((x.shape[0], 5), np.int64)
    for n in range(x.shape[0]):
        for w in range(bases.shape[0]):
            base = bases[w]
            for t in range(tile_ptr.shape[0] - 1):
                union, driven = 0, 0
                for r in range(tile_ptr[t], tile_ptr[t + 1]):
                    union |= masks[n, base + row_off[r]]
                    driven += counts[n, base + row_off[r]]
                spent = 0
                while union:
                    union &= union - 1
                    spent += 1
                out[n, 0] += spent
                out[n, 1] += slices
                out[n, 2] += driven
                out[n, 3] += driven * tile_cols[t]
                out[n, 4] += spent * tile_signals[t]
    return out


def slice_masks_py(x, dac_bits):
    """Plain-Python twin of ``slice_masks``."""
    mask, masks, counts = (1 << dac_bits) - 1, [], []
    for v in x.ravel().tolist():
        nonzero = [k for k in range(max(v.bit_length(), 1)) if (v >> (k * dac_bits)) & mask]
        masks.append(sum(1 << k for k in nonzero))
        counts.append(len(nonzero))
    shape = x.shape
    return np.array(masks, np.int64).reshape(shape), np.array(counts, np.int64).reshape(shape)


def count_stages_py(x, bases, row_off, tile_ptr, tile_cols, tile_signals, slices, dac_bits):
    """Plain-Python twin of ``count_stages``: same result, written slice by slice."""
    mask = (1 << dac_bits) - 1
    offsets = row_off.tolist()
    bounds = list(zip(tile_ptr[:-1].tolist(), tile_ptr[1:].tolist()))
    result = []
    for image in x.tolist():
        spent = every = driven = cells = conversions = 0
        for base in bases.tolist():
            for t, (lo, hi) in enumerate(bounds):
                values = [image[base + o] for o in offsets[lo:hi]]
                for k in range(slices):
                    rows = sum(1 for v in values if (v >> (k * dac_bits)) & mask)
                    every += 1
                    if rows:
                        spent += 1
                        driven += rows
                        cells += rows * int(tile_cols[t])
                        conversions += int(tile_signals[t])
        result.append([spent, every, driven, cells, conversions])
    return np.array(result, dtype=np.int64).reshape(len(x), 5)
