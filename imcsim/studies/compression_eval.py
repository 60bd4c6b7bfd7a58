"""One compression study method → one record: cycles on the chip, then accuracy on it.

Runs in ``imcsim.studies.mission``'s workers.  Points that share a compressed model come
together: the model is compressed and fine-tuned once (``accuracy.prepare``) and mapped
again for each method (``accuracy_study.remap``).
"""

from __future__ import annotations

from typing import Any

from imcsim.hardware import ChipConfig, build_chip
from imcsim.network import map_network
from imcsim.nn.crossbar import CrossbarConfig
from imcsim.studies.accuracy import AccuracySpec, Prepared, evaluate_on_chip, prepare
from imcsim.studies.accuracy_study import remap
from imcsim.studies.evaluate import cached_workload, dense_im2col_cycles
from imcsim.studies.reproducible import deterministic_kernels

__all__ = ["evaluate_methods"]

Record = dict[str, Any]


def _prepared(point: Record, chip: ChipConfig, cache: dict[str, Prepared]) -> Prepared:
    spec = AccuracySpec(
        model=point["model"], chip=chip, mapper=point["mapper"], images=point["images"],
        method=point["compression"], keep=point["keep"],
        finetune_epochs=point["finetune_epochs"], finetune_images=point["finetune_images"],
    )
    if point["compression"] in cache:
        return remap(cache[point["compression"]], spec)
    cache[point["compression"]] = prepare(spec)
    return cache[point["compression"]]


def _accuracy(point: Record, chip: ChipConfig, cache: dict[str, Prepared]) -> tuple[Record, Any]:
    prepared = _prepared(point, chip, cache)
    on_chip = CrossbarConfig(adc_range="calibrated", slicing=point["slicing"])  # chip's ADC
    fields = {
        "float_accuracy": prepared.float_accuracy,
        "ideal_accuracy": evaluate_on_chip(prepared, CrossbarConfig(ideal=True)).accuracy,
        "accuracy": evaluate_on_chip(prepared, on_chip).accuracy,
        "weights": prepared.weights, "data": prepared.data,
    }
    return fields, prepared.report


def evaluate_methods(points: list[Record], threads: int | None = None) -> list[Record]:
    """Records of ``points`` (one compressed model); ``threads`` caps torch's threads.
    Accuracy runs on one thread with deterministic algorithms
    (``studies.reproducible.deterministic_kernels``)."""
    if any(p["measure_accuracy"] for p in points):
        with deterministic_kernels(1):
            return _records(points)
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    return _records(points)


def _records(points: list[Record]) -> list[Record]:
    cache: dict[str, Prepared] = {}
    records = []
    for point in points:
        chip = build_chip(point["chip"] or None, point["array"], adc_bits=point["adc_bits"])
        record = dict(point)
        if point["measure_accuracy"]:
            fields, report = _accuracy(point, chip, cache)
            record.update(fields)
        else:
            work = cached_workload(point["model"], point["compression"], point["keep"])
            report = map_network(work.layers, point["mapper"], chip, model=point["model"])
        dense = cached_workload(point["model"], "dense", 1.0)
        im2col = dense_im2col_cycles(point["model"], chip)
        total = report.total()
        record.update(
            cycles=report.cycles, latency_cycles=report.latency_cycles,
            dense_im2col_cycles=im2col, speedup=im2col / report.latency_cycles,
            utilization=report.utilization, params=total["params"],
            dense_params=sum(layer.params for layer in dense.layers),
            skipped_rows=total["skipped_rows"], index_rows=total["index_rows"],
        )
        records.append(record)
    return records
