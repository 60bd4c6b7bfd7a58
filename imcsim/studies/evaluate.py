"""One sweep point → one flat record (runs inside executors' workers)."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from imcsim._data import find_preset, read_text
from imcsim.cost import estimate_network
from imcsim.errors import ConfigError
from imcsim.hardware import ChipConfig, build_chip, load_chip
from imcsim.mappers import MapperOptions
from imcsim.network import map_network
from imcsim.studies.results import digest
from imcsim.tables import parse_layer_table
from imcsim.zoo.workloads import Workload, load_workload

if TYPE_CHECKING:
    from imcsim.studies.accuracy import Prepared

__all__ = ["COST_KEYS", "accuracy_fields", "cached_chip", "cached_prepared", "cached_workload",
           "chip_digest", "dense_im2col_cycles", "evaluate_point", "is_table", "model_digest",
           "point_chip", "resolve_workload", "table_text"]

Record = dict[str, Any]


def is_table(model: str) -> bool:
    """``table:NAME`` and ``*.csv`` name layer tables; anything else a built-in model."""
    return model.startswith("table:") or model.endswith(".csv")


def table_text(model: str) -> tuple[str, str]:
    """(text, file name) of the layer table a model axis value names."""
    path = find_preset("networks", model.removeprefix("table:"), ".csv", "layer table")
    return read_text(path, "layer table"), path.name


def model_digest(model: str) -> str:
    """Digest of what a model reads: its layer table (validated), or its shipped weights."""
    if is_table(model):
        text, name = table_text(model)
        parse_layer_table(text, source=name)  # a bad table fails before the sweep starts
        return digest(text)
    from imcsim.zoo.checkpoints import checkpoint_path

    weights = checkpoint_path(model)
    return digest(weights.read_bytes()) if weights.is_file() else "untrained"


def chip_digest(chip: str) -> str:
    """Digest of a resolved chip (its file and any ``cost_preset`` it borrows)."""
    return digest(load_chip(chip).model_dump_json()) if chip else ""


def _changed(what: str, name: str) -> ConfigError:
    return ConfigError(f"{what} {name!r} changed while the sweep ran; rerun it")


def resolve_workload(model: str, content: str | None = None) -> Workload:
    """A layer table or a built-in model; ``content`` (a digest) must match a table's file."""
    if not is_table(model):
        return load_workload(model=model)
    text, name = table_text(model)
    if content is not None and digest(text) != content:
        raise _changed("layer table", model)
    return Workload(name.removesuffix(".csv"), tuple(parse_layer_table(text, source=name)))


def _user(spec: str, content: str | None) -> Any:
    """The ``imcsim.zoo.workload.Workload`` a point carries (JSON); its content must match."""
    from imcsim.zoo.workload import Workload as UserWorkload

    user = UserWorkload.model_validate_json(spec)
    if content is not None and user.key() != content:
        raise _changed("workload", user.model)
    return user


@lru_cache(maxsize=16)
def cached_workload(model: str, compression: str, keep: float,
                    content: str | None = None, user: str | None = None) -> Workload:
    """Layers of ``model`` after ``compression``, memoised per worker and per input
    content (``content``: the digest the sweep read, so an edited file is never served
    from the cache); ``user``: a user's workload as JSON (its model, weights, inputs)."""
    if compression == "dense":
        if user is not None:
            from imcsim.zoo.workloads import spec_workload

            return spec_workload(_user(user, content))
        return resolve_workload(model, content)
    from imcsim.nn.extract import extract_layers
    from imcsim.studies.variants import compressed, resolve_model

    if user is not None:
        from imcsim.zoo.workload import load_workload as load_user

        loaded = load_user(_user(user, content), with_data=False)
        name, module, x = loaded.name, loaded.model, loaded.example
    else:
        name, module, x, _weights = resolve_model(model, None)
    variant = compressed(module, compression, keep, groups=2, split="input")
    return Workload(name, extract_layers(variant, x).layers)


@lru_cache(maxsize=256)
def cached_chip(chip: str, array: str, cell_bits: int | None, adc_bits: int | None,
                content: str | None = None) -> ChipConfig:
    """A preset (or the 1-bit mapping chip) with array and bit overrides; ``content`` (a
    digest) must match the chip the sweep read."""
    if content is not None and chip_digest(chip) != content:
        raise _changed("chip", chip)
    return build_chip(chip or None, array, cell_bits=cell_bits, adc_bits=adc_bits)


def point_chip(point: Record) -> ChipConfig:
    return cached_chip(point["chip"], point["array"], point["cell_bits"], point["adc_bits"],
                       point.get("chip_digest"))


@lru_cache(maxsize=256)
def dense_im2col_cycles(model: str, chip: ChipConfig, content: str | None = None,
                        user: str | None = None) -> int:
    """The speedup reference: the dense model mapped with im2col on the same chip."""
    return map_network(cached_workload(model, "dense", 1.0, content, user).layers, "im2col",
                       chip).cycles


COST_KEYS = ("latency_ns", "interval_ns", "energy_pj", "area_um2", "tops", "tops_per_w",
             "energy_breakdown_pj", "area_parts_um2")


def evaluate_point(point: Record) -> Record:
    """Map (and cost, and optionally simulate) one point; return inputs + results."""
    content = point.get("model_digest")
    user = None if point.get("workload") is None else json.dumps(point["workload"], sort_keys=True)
    work = cached_workload(point["model"], point["compression"], point["keep"], content, user)
    dense = cached_workload(point["model"], "dense", 1.0, content, user)
    chip = point_chip(point)
    options = MapperOptions.parse(point.get("mapper_options", {}))
    report = map_network(work.layers, point["mapper"], chip, model=work.name, options=options)
    if chip.cost is not None:
        report = estimate_network(report, chip, point["schedule"])
    dense_im2col = dense_im2col_cycles(point["model"], chip, content, user)
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
def cached_prepared(model: str, compression: str, keep: float, images: int,
                    content: str | None = None, user: str | None = None) -> Prepared:
    """The trained model, compressed and fine-tuned once per worker and per weights file
    (``content``); any chip re-maps it."""
    from imcsim.studies.accuracy import AccuracySpec, prepare

    spec = AccuracySpec(model=model, chip=ChipConfig(array={"rows": 128, "cols": 128}),
                        mapper="im2col", images=images, method=compression,
                        keep=keep, finetune_epochs=ACCURACY_FINETUNE_EPOCHS,
                        workload=None if user is None else _user(user, content))
    return prepare(spec)


def accuracy_fields(point: Record, chip: ChipConfig) -> Record:
    """Float and on-chip top-1 accuracy (calibrated ADC range, as ``imcsim accuracy``)."""
    from imcsim.nn.crossbar import CrossbarConfig
    from imcsim.studies.accuracy import evaluate_on_chip
    from imcsim.studies.accuracy_study import remap

    user = None if point.get("workload") is None else json.dumps(point["workload"], sort_keys=True)
    prepared = cached_prepared(point["model"], point["compression"], point["keep"],
                               point["images"], point.get("model_digest"), user)
    spec = prepared.spec.replace(chip=chip, mapper=point["mapper"])
    result = evaluate_on_chip(remap(prepared, spec), CrossbarConfig(adc_range="calibrated"))
    top1 = prepared.metric.name == "top1"
    return {"accuracy": result.accuracy if top1 else None, "float_accuracy": prepared.float_accuracy,
            "metric_name": prepared.metric.name, "metric": result.accuracy,
            "float_metric": prepared.float_metric if prepared.float_metric is not None
            else prepared.float_accuracy}
