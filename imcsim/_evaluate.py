"""One sweep point → one flat record (runs inside executors' workers)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from imcsim.cli.common import build_chip
from imcsim.hardware import ChipConfig
from imcsim.network import map_network
from imcsim.workloads import Workload, load_workload

Record = dict[str, Any]


def resolve_workload(model: str) -> Workload:
    """``table:NAME`` or ``*.csv`` → a layer table; anything else → a built-in model."""
    if model.startswith("table:"):
        return load_workload(layers=model.removeprefix("table:"))
    if model.endswith(".csv"):
        return load_workload(layers=model)
    return load_workload(model=model)


@lru_cache(maxsize=16)
def cached_workload(model: str, compression: str, keep: float) -> Workload:
    """Layers of ``model`` after ``compression`` (pure, so memoised per worker)."""
    if compression == "dense":
        return resolve_workload(model)
    from imcsim.compression_points import compressed_workload

    return compressed_workload(model, compression, keep)


def point_chip(point: Record) -> ChipConfig:
    """The point's chip: preset (or the 1-bit mapping chip) with array and bit overrides."""
    chip = build_chip(point["chip"] or None, point["array"], point["cell_bits"])
    if point["adc_bits"] is not None:
        precision = chip.precision.model_copy(update={"adc_bits": point["adc_bits"]})
        chip = ChipConfig.parse({**chip.model_dump(), "precision": precision.model_dump()})
    return chip


def evaluate_point(point: Record) -> Record:
    """Map (and cost, and optionally simulate) one point; return inputs + results."""
    work = cached_workload(point["model"], point["compression"], point["keep"])
    dense = cached_workload(point["model"], "dense", 1.0)
    chip = point_chip(point)
    report = map_network(work.layers, point["mapper"], chip, model=work.name)
    dense_im2col = map_network(dense.layers, "im2col", chip).cycles
    record = dict(point)
    record.update(
        cycles=report.cycles,
        latency_cycles=report.latency_cycles,
        im2col_cycles=sum(report.baseline_cycles),
        dense_im2col_cycles=dense_im2col,
        speedup=dense_im2col / report.latency_cycles,
        utilization=report.utilization,
        tiles=report.total()["tiles"],
        params=report.total()["params"],
        dense_params=sum(layer.params for layer in dense.layers),
        layer_cycles=[[m.layer.name, m.latency_cycles] for m in report.mappings],
    )
    return record
