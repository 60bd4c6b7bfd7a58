"""Cycle simulator: replay a mapping's schedule on the layer's real input activations.

For every image, parallel window, array tile of the mapping's placement
(``imcsim.mappers.placement``: rows are (channel, dy, dx) of the window's patch) and input
bit-slice, the simulator looks at
the quantized inputs the tile's rows receive and counts the bit-slice stages spent
when a stage whose slice is zero on every row is skipped, the rows actually driven
(nonzero slice), the cell reads and the ADC conversions.  The counts are priced by the
same ``imcsim.pricing.price`` as the analytic model, so the two reports compare column
by column.  Window (wy, wx) reads its patch from input pixel (wy·a_h·s_h − p_h,
wx·a_w·s_w − p_w); pixels outside the image are zero padding and drive nothing.

Quantization (per layer, calibrated on the whole batch, ``quantize``): inputs are
mapped to ``input_bits`` unsigned integers.  Non-negative inputs (after ReLU) use
q = round(x / max · (2^b − 1)).  Signed inputs (the first layer's normalised image)
use ISAAC's biased (offset) encoding: q = round((x − min) / (max − min) · (2^b − 1)),
whose constant contribution Σ w·min is added back digitally; the most negative value
(the MNIST background) becomes 0 and is skipped.

All figures are per image, averaged over the batch: ``cycles`` (stages spent with
zero-skipping), ``cycles_no_skip`` (= ``analytic_cycles`` = computing cycles × input
slices, exactly) and the energy/latency of the events.  With ``skip_zero_slices``
off, energy and latency are priced on the stages without skipping.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np

from imcsim.cost import (
    Events,
    LayerCost,
    analytic_events,
    check_chip,
    cost_of,
    data_independent,
    estimate,
    price,
    schedule_totals,
)
from imcsim.errors import ConfigError, MappingError
from imcsim.hardware import ChipConfig
from imcsim.mappers.mapping import LayerMapping
from imcsim.mappers.placement import check_mapping
from imcsim.report import NetworkReport

Engine = Literal["numba", "python"]


@dataclass(frozen=True)
class LayerProgram:
    """A layer's schedule flattened for the kernels (see ``imcsim._kernels``)."""

    grid: tuple[int, int, int]
    """(C, H_x, W_x): padded input extended so that every window's patch fits."""
    padding: tuple[int, int]
    bases: np.ndarray
    row_off: np.ndarray
    tile_ptr: np.ndarray
    tile_cols: np.ndarray
    tile_signals: np.ndarray


def _windows_per_axis(m: LayerMapping) -> tuple[int, int]:
    (o_h, o_w), (a_h, a_w) = m.layer.output_size, m.window
    n_y, n_x = -(-o_h // a_h), -(-o_w // a_w)
    if n_y * n_x != m.windows:
        raise MappingError(f"layer {m.layer.name!r}: {n_y}x{n_x} windows, mapping says {m.windows}")
    return n_y, n_x


def layer_program(m: LayerMapping, analog_combine: bool = False) -> LayerProgram:
    """Flatten the mapping's placement and the window origins into kernel arrays."""
    tiles = check_mapping(m).tiles
    layer, (n_y, n_x) = m.layer, _windows_per_axis(m)
    step_y, step_x = m.window[0] * layer.stride[0], m.window[1] * layer.stride[1]
    rows = np.concatenate([t.rows for t in tiles])
    h_x = max(layer.padded_input[0], (n_y - 1) * step_y + int(rows[:, 1].max()) + 1)
    w_x = max(layer.padded_input[1], (n_x - 1) * step_x + int(rows[:, 2].max()) + 1)
    oy, ox = np.meshgrid(np.arange(n_y) * step_y, np.arange(n_x) * step_x, indexing="ij")
    n_cols = np.array([len(t.cols) for t in tiles], dtype=np.int64)
    cpw = m.array.cols_per_weight
    return LayerProgram(
        grid=(layer.in_channels, h_x, w_x), padding=layer.padding,
        bases=(oy * w_x + ox).ravel().astype(np.int64),
        row_off=(rows[:, 0] * h_x * w_x + rows[:, 1] * w_x + rows[:, 2]).astype(np.int64),
        tile_ptr=np.concatenate([[0], np.cumsum([len(t.rows) for t in tiles])]).astype(np.int64),
        tile_cols=n_cols * cpw, tile_signals=n_cols if analog_combine else n_cols * cpw,
    )


def quantize(x: np.ndarray, bits: int) -> tuple[np.ndarray, str]:
    """Unsigned ``bits``-bit integers: scaled by the max, or offset by the min if signed."""
    if not 1 <= bits <= 62:
        raise ConfigError(f"input_bits={bits}: the cycle simulator supports 1..62")
    x = np.asarray(x, dtype=np.float64)
    low = float(x.min()) if x.size else 0.0
    offset, encoding = (0.0, "unsigned") if low >= 0 else (low, "offset")
    span = float(x.max()) - offset if x.size else 0.0
    if span <= 0:
        return np.zeros(x.shape, dtype=np.int64), encoding
    return np.rint((x - offset) / span * (2**bits - 1)).astype(np.int64), encoding


def padded_inputs(q: np.ndarray, program: LayerProgram) -> np.ndarray:
    """(N, C, H, W) → (N, C·H_x·W_x) with zero padding and the extension."""
    c, h_x, w_x = program.grid
    (p_h, p_w), (h, w) = program.padding, q.shape[2:]
    out = np.zeros((q.shape[0], c, h_x, w_x), dtype=np.int64)
    out[:, :, p_h : p_h + h, p_w : p_w + w] = q
    return out.reshape(q.shape[0], -1)


def count_events(q: np.ndarray, program: LayerProgram, slices: int, dac_bits: int,
                 engine: Engine = "numba") -> np.ndarray:
    """(N, 5) counts per image (``imcsim._kernels.COUNTS``) from quantized (N, C, H, W)."""
    from imcsim import _kernels

    kernel = _kernels.count_stages if engine == "numba" else _kernels.count_stages_py
    p = program
    return kernel(padded_inputs(q, p), p.bases, p.row_off, p.tile_ptr, p.tile_cols,
                  p.tile_signals, slices, dac_bits)


def _check_activations(m: LayerMapping, x: np.ndarray) -> None:
    want = (m.layer.in_channels, *m.layer.input_size)
    if x.ndim != 4 or tuple(x.shape[1:]) != want:
        raise MappingError(
            f"layer {m.layer.name!r}: activations of shape {tuple(x.shape)}, expected (N, {want[0]}, {want[1]}, {want[2]})"
        )


@dataclass(frozen=True)
class LayerSim:
    """Simulated events of one layer: per-image counts and their priced mean."""

    mapping: LayerMapping
    counts: np.ndarray
    """(images, 5): see ``imcsim._kernels.COUNTS``."""
    encoding: str
    zero_inputs: float
    """Fraction of the layer's quantized inputs that are 0."""
    cost: LayerCost
    analytic: LayerCost

    def row(self) -> dict[str, Any]:
        m, mean = self.mapping, self.counts.mean(axis=0)
        no_skip = int(self.counts[0, 1]) if len(self.counts) else 0
        cycles = float(mean[0])
        return {
            "cycles": cycles, "cycles_no_skip": no_skip,
            "analytic_cycles": int(self.analytic.events.stage_cycles),
            "computing_cycles": m.cycles,
            "skip_saving": 1 - cycles / no_skip if no_skip else 0.0,
            "dac_activations": float(mean[2]), "cell_reads": float(mean[3]),
            "adc_conversions": self.cost.events.adc_conversions,
            "zero_inputs": self.zero_inputs, "input_encoding": self.encoding,
            **self.cost.row(),
            "analytic_latency_ns": self.analytic.latency_ns,
            "analytic_energy_pj": self.analytic.energy_pj,
        }


def sim_events(m: LayerMapping, chip: ChipConfig, counts: np.ndarray, skip: bool) -> Events:
    """Mean per-image events from the kernel counts."""
    mean = counts.mean(axis=0)
    full = analytic_events(m, chip)
    conversions = mean[4] if skip else full.adc_conversions
    return Events(
        stage_cycles=float(mean[0] if skip else mean[1]), dac_activations=float(mean[2]),
        cell_reads=float(mean[3]), adc_conversions=float(conversions),
        **data_independent(m, chip),
    )


def simulate_layer(
    mapping: LayerMapping, activations: np.ndarray, chip: ChipConfig, *,
    skip_zero_slices: bool = True, engine: Engine = "numba",
) -> LayerSim:
    """Quantize one layer's (N, C, H, W) input activations and replay its schedule."""
    check_chip(mapping, chip)
    _check_activations(mapping, activations)
    p = chip.precision
    q, encoding = quantize(activations, p.input_bits)
    program = layer_program(mapping, cost_of(chip).adc.weight_combine == "analog")
    counts = count_events(q, program, p.input_slices, p.dac_bits, engine)
    events = sim_events(mapping, chip, counts, skip_zero_slices)
    return LayerSim(
        mapping=mapping, counts=counts, encoding=encoding,
        zero_inputs=float((q == 0).mean()) if q.size else 0.0,
        cost=price(events, mapping, chip), analytic=estimate(mapping, chip),
    )


SIM_SUMS = ("cycles", "cycles_no_skip", "analytic_cycles", "computing_cycles", "dac_activations",
            "cell_reads", "adc_conversions", "analytic_latency_ns", "analytic_energy_pj")


def _network_total(sims: list[LayerSim], skip: bool, chip: ChipConfig):
    """The cost totals of the simulated events, plus the simulator's own counts."""
    rows = [s.row() for s in sims]
    per_image = np.sum([s.counts[:, 0] for s in sims], axis=0)
    counts = {key: sum(r[key] for r in rows) for key in SIM_SUMS}
    counts.update(
        skip_saving=1 - counts["cycles"] / counts["cycles_no_skip"],
        cycles_per_image=[int(c) for c in per_image], images=len(per_image),
        skip_zero_slices=skip,
    )
    totals = schedule_totals([s.cost for s in sims], "sequential", chip.name, chip)
    return replace(totals, extra=counts)


def simulate_activations(
    report: NetworkReport, activations: Mapping[str, np.ndarray], chip: ChipConfig | None = None,
    *, skip_zero_slices: bool = True,
) -> NetworkReport:
    """``report`` with typed per-layer simulations from activations keyed by layer name."""
    chip = report.chip if chip is None else chip
    missing = [m.layer.name for m in report.mappings if m.layer.name not in activations]
    if missing:
        raise MappingError(f"no activations for layer(s) {', '.join(missing)}")
    sims = [
        simulate_layer(m, activations[m.layer.name], chip, skip_zero_slices=skip_zero_slices)
        for m in report.mappings
    ]
    return report.with_sims(tuple(sims), _network_total(sims, skip_zero_slices, chip))


__all__ = [
    "LayerProgram", "LayerSim", "count_events", "layer_program",
    "quantize", "simulate_activations", "simulate_layer",
]
