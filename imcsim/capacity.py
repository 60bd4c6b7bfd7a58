"""What fits on the chip, and what reloading the rest costs.

A chip with ``n_arrays`` arrays holds a model's weights only when every layer's tiles
(every expert of a routed layer) are resident at once: ``arrays_needed`` = Σ tiles ×
experts.  When they exceed the chip, this module prices the stated *pinned + streamed*
schedule:

* a streaming pool of ``min(n_arrays, largest layer's arrays)`` arrays is kept free;
* layers are pinned in execution order while they fit beside the pool (they are
  written once, at load time, and cost nothing per step);
* every other layer is written into the pool before it runs, once per step (one
  forward pass: a prompt in prefill, one token for each sequence of the batch in
  decode), in ``ceil(arrays / pool)`` passes when it is larger than the pool.

Writing a streamed layer programs each of its cells (weights × columns per weight)
with ``verify_iterations`` write-and-verify iterations; arrays are written in parallel,
their rows one by one (as ``imcsim.matmul`` writes activation operands), so one pass
takes rows of the fullest array × ``write_ns_per_row`` × ``verify_iterations``.  The
write is not overlapped with computing (a stated, pessimistic choice).  Energy and
time are per step; per token they divide by the tokens of the step, which is how
batching amortises them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import Field

from imcsim._config import StrictModel

__all__ = ["ReloadConfig", "ResidentLayer", "capacity_totals"]


class ReloadConfig(StrictModel):
    """Cost of writing weights into arrays at run time (section ``[reload]`` of a chip TOML)."""

    write_energy_pj_per_cell: float = Field(default=8.0, ge=0)
    """One write pulse into one cell: 4 V, 50 ns into R_on = 100 kΩ, V²/R·t = 8 pJ (the
    RRAM defaults of NeuroSim V2.1, ``Training_pytorch/NeuroSIM/Param.cpp``:
    writeVoltage 4, writePulseWidth 50e-9, resistanceOn 100e3; an upper bound)."""
    write_ns_per_row: float = Field(default=50.0, gt=0)
    """One write pulse on one array row, all its columns in parallel: NeuroSim V2.1's
    writePulseWidth (50 ns)."""
    verify_iterations: int = Field(default=10, ge=1, le=1000)
    """Write-and-verify iterations per cell.  Assumption: the order of the SET/RESET
    pulse counts of the incremental-pulse write–verify of Wan et al., "A compute-in-
    memory chip based on resistive random-access memory", Nature 608 (2022), Extended
    Data Fig. 3f; each iteration costs one write pulse (the verify read is not priced)."""


@dataclass(frozen=True)
class ResidentLayer:
    """What one mapped layer occupies: arrays (all experts), cells and rows written per array."""

    name: str
    arrays: int
    cells: int
    rows: int
    """Rows of the fullest array (written one by one)."""


def _pinned(layers: Sequence[ResidentLayer], n_arrays: int, pool: int) -> set[str]:
    free, pinned = n_arrays - pool, set()
    for layer in layers:
        if layer.arrays <= free:
            pinned.add(layer.name)
            free -= layer.arrays
    return pinned


def capacity_totals(layers: Sequence[ResidentLayer], n_arrays: int | None,
                    reload: ReloadConfig) -> dict[str, Any]:
    """``arrays_needed``, ``fits_on_chip`` (``None`` when the chip states no ``n_arrays``)
    and, when the weights do not fit, the per-step reload cost of the pinned + streamed
    schedule (see the module docstring)."""
    needed = sum(layer.arrays for layer in layers)
    out: dict[str, Any] = {"arrays_needed": needed,
                           "fits_on_chip": None if n_arrays is None else needed <= n_arrays}
    if n_arrays is None or needed <= n_arrays:
        return out
    pool = min(n_arrays, max(layer.arrays for layer in layers))
    pinned = _pinned(layers, n_arrays, pool)
    streamed = [layer for layer in layers if layer.name not in pinned]
    iterations = reload.verify_iterations
    cells = sum(layer.cells for layer in streamed)
    latency = sum(math.ceil(layer.arrays / pool) * layer.rows for layer in streamed)
    out.update(
        reload_schedule="pinned+streamed", reload_pool_arrays=pool,
        pinned_layers=len(pinned), streamed_layers=len(streamed),
        reload_cells_per_step=cells,
        reload_energy_pj=cells * reload.write_energy_pj_per_cell * iterations,
        reload_latency_ns=latency * reload.write_ns_per_row * iterations,
    )
    return out
