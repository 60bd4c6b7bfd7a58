"""One sweep point → one flat record (runs inside executors' workers)."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

from imcsim.cost import estimate_network
from imcsim.hardware import ChipConfig, build_chip
from imcsim.mappers import MapperOptions
from imcsim.network import map_network
from imcsim.studies.workloads import Workload, load_workload

if TYPE_CHECKING:
    from imcsim.studies.accuracy import Prepared

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
    from imcsim.nn.extract import extract_layers
    from imcsim.studies.variants import compressed, resolve_model

    name, module, x, _weights = resolve_model(model, None)
    variant = compressed(module, compression, keep, groups=2, split="input")
    return Workload(name, extract_layers(variant, x).layers)


@lru_cache(maxsize=256)
def cached_chip(chip: str, array: str, cell_bits: int | None, adc_bits: int | None) -> ChipConfig:
    """A preset (or the 1-bit mapping chip) with array and bit overrides."""
    return build_chip(chip or None, array, cell_bits=cell_bits, adc_bits=adc_bits)


def point_chip(point: Record) -> ChipConfig:
    return cached_chip(point["chip"], point["array"], point["cell_bits"], point["adc_bits"])


@lru_cache(maxsize=256)
def dense_im2col_cycles(model: str, chip: ChipConfig) -> int:
    """The speedup reference: the dense model mapped with im2col on the same chip."""
    return map_network(cached_workload(model, "dense", 1.0).layers, "im2col", chip).cycles


COST_KEYS = ("latency_ns", "interval_ns", "energy_pj", "area_um2", "tops", "tops_per_w",
             "energy_breakdown_pj")


def evaluate_point(point: Record) -> Record:
    """Map (and cost, and optionally simulate) one point; return inputs + results."""
    work = cached_workload(point["model"], point["compression"], point["keep"])
    dense = cached_workload(point["model"], "dense", 1.0)
    chip = point_chip(point)
    options = MapperOptions.parse(point.get("mapper_options", {}))
    report = map_network(work.layers, point["mapper"], chip, model=work.name, options=options)
    if chip.cost is not None:
        report = estimate_network(report, chip, point["schedule"])
    dense_im2col = dense_im2col_cycles(point["model"], chip)
    record = dict(point)
    totals = report.summary_record()
    record.update(
        cycles=report.cycles,
        latency_cycles=report.latency_cycles,
        im2col_cycles=totals["im2col_cycles"],
        dense_im2col_cycles=dense_im2col,
        speedup=dense_im2col / report.latency_cycles,
        utilization=report.utilization,
        tiles=totals["tiles"],
        params=totals["params"],
        dense_params=sum(layer.params for layer in dense.layers),
        layer_cycles=totals["layer_cycles"],
    )
    record.update({k: totals[k] for k in COST_KEYS if k in totals})
    if point["measure_accuracy"]:
        record.update(accuracy_fields(point, chip))
    return record


ACCURACY_FINETUNE_EPOCHS = 1
"""Fine-tuning epochs of a compressed model before its accuracy is measured."""


@lru_cache(maxsize=8)
def cached_prepared(model: str, compression: str, keep: float, images: int) -> Prepared:
    """The trained model, compressed and fine-tuned once per worker (any chip re-maps it)."""
    from imcsim.studies.accuracy import AccuracySpec, prepare

    spec = AccuracySpec(model=model, chip=ChipConfig(array={"rows": 128, "cols": 128}),
                        mapper="im2col", images=images, method=compression,
                        keep=keep, finetune_epochs=ACCURACY_FINETUNE_EPOCHS)
    return prepare(spec)


def accuracy_fields(point: Record, chip: ChipConfig) -> Record:
    """Float and on-chip top-1 accuracy (calibrated ADC range, as ``imcsim accuracy``)."""
    from imcsim.nn.crossbar import CrossbarConfig
    from imcsim.studies.accuracy import evaluate_on_chip
    from imcsim.studies.accuracy_study import remap

    prepared = cached_prepared(point["model"], point["compression"], point["keep"], point["images"])
    spec = prepared.spec.model_copy(update={"chip": chip, "mapper": point["mapper"]})
    result = evaluate_on_chip(remap(prepared, spec), CrossbarConfig(adc_range="calibrated"))
    return {"accuracy": result.accuracy, "float_accuracy": prepared.float_accuracy}
