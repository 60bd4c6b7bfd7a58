"""The ``date2025`` study: accuracy vs computing cycles of low-rank and pruning, under the
low-rank paper's conventions and imcsim's (Jeon, Rhe, Ko, DATE 2025; see ``date2025_spec``).

1. **Train** (slow, resumable): every variant of every model is compressed from the base
   model, fine-tuned ``finetune_epochs`` on the training split, its batch-norm statistics
   re-estimated on the same images (forward passes only: a compressed layer's outputs
   no longer match the running statistics, which a short fine-tuning barely moves), and
   evaluated on held-out test images; one record per variant is appended to
   ``variants-<model>.jsonl`` as it finishes, under a content key (``studies.results``:
   the variant, its budget, the base weights' digest, the code version) so that a rerun
   reuses exactly the variants whose inputs are unchanged; an interrupted fine-tuning
   resumes from its saved state.  Subsets of the
   training or test split are seeded random draws (the splits are sorted by class).  A base model
   without shipped weights for the dataset is trained first (``base/<model>-<dataset>.pt``).
2. **Map** (fast, recomputed every run): every variant is mapped under every set of
   conventions and array size and priced by the cost model (ISAAC periphery with the
   conventions' precisions); records go to ``points.jsonl``.  Fine-tuning changes weights,
   not shapes or zero masks, so the mapping is that of the compressed model.
3. **Claims** (``date2025_claims``): the paper's two numbers per conventions, model and
   array, written to ``claims.json`` / ``claims.md``, and the trade-off charts.

The accuracy is the float accuracy of the fine-tuned model, which an ideal chip reproduces
(``tests/test_crossbar.py``); the precisions change the cycle counts (columns per weight),
not the accuracy (no quantisation-aware training here).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from imcsim.cost import estimate_network, with_cost
from imcsim.hardware import ChipConfig, PrecisionConfig, parse_array
from imcsim.layers import LayerShape
from imcsim.mappers import MapperOptions, get_mapper
from imcsim.network import map_network
from imcsim.studies.date2025_spec import (
    Conventions,
    Date2025Spec,
    Precision,
    Variant,
    ablations,
    variants,
)
from imcsim.studies.results import (
    append_record,
    content_key,
    digest,
    load_results,
    repair_torn_line,
    seal,
)

__all__ = ["VariantRecord", "base_model", "map_points", "recalibrate_batchnorm", "run_date2025",
           "study_chip", "train_variants"]

Record = dict[str, Any]
Progress = Callable[[str], None]
FINETUNE_LR = 0.01
RECALIBRATION_IMAGES = 1000


class VariantRecord(BaseModel):
    """The fields a fine-tuned variant's record must carry to be reused (others pass
    through); ``key`` is its content key, ``variant`` its name in the study."""

    model_config = ConfigDict(strict=True, extra="allow", allow_inf_nan=False)

    key: str = Field(min_length=1)
    variant: str = Field(min_length=1)
    model: str
    family: str
    accuracy: float = Field(ge=0, le=1)
    data: str
    finetune_epochs: int = Field(ge=0)
    train_images: int = Field(ge=1)
    test_images: int = Field(ge=1)


def base_model(model: str, spec: Date2025Spec, out: Path, progress: Progress | None = None
               ) -> tuple[nn.Module, str]:
    """The trained base model: shipped weights, else ``out/base/<model>-<dataset>.pt``
    (trained here with ``base_epochs``, resumably, when missing); the second item names
    the weights and ends with their content digest in brackets."""
    from imcsim.train.loop import TrainConfig, evaluate, train
    from imcsim.zoo.checkpoints import checkpoint_path, load_checkpoint, load_data, save_checkpoint
    from imcsim.zoo.models import build_model

    shipped = checkpoint_path(model)
    if spec.dataset == "mnist5k" and shipped.exists():
        return (load_checkpoint(model, shipped)[0],
                f"shipped {shipped.name} [{digest(shipped.read_bytes())}]")
    path = out / "base" / f"{model}-{spec.dataset}.pt"
    if not path.exists():
        data = load_data(model, spec.dataset, spec.data_dir)
        net = build_model(model, num_classes=data.num_classes, seed=0)
        if progress:
            progress(f"training base {model} on {spec.dataset} ({spec.base_epochs} epochs)")
        path.parent.mkdir(parents=True, exist_ok=True)
        config = TrainConfig(epochs=spec.base_epochs, seed=0)
        train(net, data.train_images, data.train_labels, config,
              state_path=path.with_name(path.name + ".state"))
        accuracy = evaluate(net, data.test_images, data.test_labels)
        save_checkpoint(net, path, model_name=model, dataset=spec.dataset,
                        num_classes=data.num_classes, float_accuracy=accuracy,
                        epochs=spec.base_epochs, seed=0,
                        command=f"imcsim train --model {model} --epochs {spec.base_epochs}")
    return (load_checkpoint(model, path)[0], f"{path.name} ({spec.base_epochs} epochs, "
            f"trained here) [{digest(path.read_bytes())}]")


def compress(base: nn.Module, variant: Variant, spec: Date2025Spec) -> nn.Module:
    """``base`` compressed as ``variant`` (a copy)."""
    from imcsim.studies.variants import Knobs, compressed

    knobs = Knobs(rank=variant.rank, taps=variant.taps, library=variant.library,
                  share=variant.share, dense_layers=spec.dense_layers)
    return compressed(base, variant.transform, variant.keep or 1.0, variant.groups, "input", knobs)


def _results_path(out: Path, model: str) -> Path:
    return out / f"variants-{model}.jsonl"


def train_variants(spec: Date2025Spec, out: Path, progress: Progress | None = None) -> list[Record]:
    """Fine-tune and evaluate every variant not yet recorded; all records, in study order."""
    from imcsim.train.loop import TrainConfig, evaluate, train
    from imcsim.zoo.checkpoints import load_data

    out.mkdir(parents=True, exist_ok=True)
    records = []
    for model in spec.models:
        spec_m = spec.for_model(model)
        path = _results_path(out, model)
        results = load_results(path, VariantRecord)
        for line in results.summary() if progress else ():
            progress(f"notice: {line}")
        done = results.records
        base, weights = base_model(model, spec_m, out, progress)
        keys = {v.key: _variant_key(model, v, spec, spec_m, weights) for v in variants(spec_m)}
        todo = [v for v in variants(spec_m) if keys[v.key] not in done]
        repair_torn_line(path)
        if todo:
            data = load_data(model, spec_m.dataset, spec_m.data_dir)
            pick = _subset(len(data.train_images), spec.train_images.get(model), seed=0)
            x, y = data.train_images[pick], data.train_labels[pick]
            pick = _subset(len(data.test_images), spec_m.test_images, seed=1)
            tx, ty = data.test_images[pick], data.test_labels[pick]
        for v in todo:
            if progress:
                progress(f"{model}: fine-tuning {v.key}")
            start = time.perf_counter()
            net = compress(base, v, spec)
            if spec_m.finetune_epochs:
                config = TrainConfig(epochs=spec_m.finetune_epochs, lr=FINETUNE_LR, warmup_steps=0)
                state = out / "state" / f"{model}-{v.key}.state"
                state.parent.mkdir(parents=True, exist_ok=True)
                train(net, x, y, config, state_path=state)
            recalibrate_batchnorm(net, x[:RECALIBRATION_IMAGES])
            record = {"key": keys[v.key], "variant": v.key, "model": model, **v.model_dump(),
                      "label": v.label,
                      "accuracy": evaluate(net, tx, ty), "data": spec_m.dataset,
                      "dataset": data.description,
                      "weights": weights, "finetune_epochs": spec_m.finetune_epochs,
                      "train_images": len(x), "test_images": len(tx),
                      "seconds": round(time.perf_counter() - start, 1)}
            with path.open("a") as handle:
                record = append_record(handle, record)
            done[record["key"]] = record
        records += [done[keys[v.key]] for v in variants(spec_m)]
    return records


def _variant_key(model: str, variant: Variant, spec: Date2025Spec, spec_m: Date2025Spec,
                 weights: str) -> str:
    """Content key of a fine-tuned variant: what it is, how it was fine-tuned and
    evaluated, the base weights' digest and the code version (``studies.results``)."""
    inputs = {"model": model, "variant": variant.model_dump(), "dataset": spec_m.dataset,
              "data_dir": None if spec_m.data_dir is None else str(spec_m.data_dir),
              "finetune_epochs": spec_m.finetune_epochs, "lr": FINETUNE_LR,
              "train_images": spec.train_images.get(model), "test_images": spec_m.test_images,
              "dense_layers": spec.dense_layers, "recalibration_images": RECALIBRATION_IMAGES}
    return content_key(inputs, {"weights": weights})


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, images: torch.Tensor, batch_size: int = 128) -> None:
    """Re-estimate every BatchNorm's running mean and variance on ``images`` (cumulative
    average over the batches, Ioffe & Szegedy, ICML 2015); the model ends in eval mode."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    try:
        for start in range(0, len(images), batch_size):
            model(images[start:start + batch_size])
    finally:
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        model.eval()


def _subset(total: int, n: int | None, seed: int) -> torch.Tensor:
    """A seeded random ``n`` indices (all of them when ``n`` is None), shuffled: the splits
    are sorted by class, and the first images feed the batch-norm re-estimation."""
    order = torch.randperm(total, generator=torch.Generator().manual_seed(seed))
    return order if n is None else order[:n]


def study_chip(precision: Precision, array: str) -> ChipConfig:
    """An ISAAC-costed chip with the array size and the conventions' precisions."""
    shape = parse_array(array, weight_bits=precision.weight_bits, cell_bits=precision.cell_bits)
    chip = ChipConfig(name=f"{precision.weight_bits}b-w/{precision.cell_bits}b-cell/"
                      f"{precision.input_bits}b-in", array=shape,
                      precision=PrecisionConfig(input_bits=precision.input_bits))
    return with_cost(chip, "isaac")


def _mapper(conv: Conventions, family: str):
    if family in ("low-rank", "low-rank-keep"):
        options = MapperOptions(r_mapper=conv.r_mapper, schedule=conv.schedule)
        return get_mapper("low-rank-sdk", options), f"low-rank({conv.r_mapper},{conv.schedule})"
    if family == "dense":
        return get_mapper(conv.r_mapper), conv.r_mapper
    return get_mapper(conv.pruned_mapper), conv.pruned_mapper


def _point(report, record: Record, dense_params: int) -> Record:
    from imcsim.studies.compare import active_arrays

    total = report.total()
    area = total["area_breakdown_um2"]
    return {
        "params": total["params"], "kept": total["params"] / dense_params,
        "cycles": report.cycles, "latency_cycles": report.latency_cycles,
        "tiles": total["tiles"], "active_arrays": active_arrays(report.mappings),
        "skipped_rows": total["skipped_rows"], "index_rows": total["index_rows"],
        "index_bits": total["index_bits"], "energy_pj": total["energy_pj"],
        "energy_breakdown_pj": total["energy_components_pj"], "area_um2": total["area_um2"],
        "area_index_um2": area["index"], "area_pattern_index_um2": area["pattern_index"],
        "accuracy": record["accuracy"],
    }


def map_points(spec: Date2025Spec, records: list[Record], out: Path,
               conventions: list[Conventions] | None = None) -> list[Record]:
    """Map every trained variant under every conventions set and array; write points.jsonl
    (recomputed every run; a point's ``key`` is its variant's name in the study)."""
    from imcsim.nn.extract import extract_layers
    from imcsim.zoo.models import example_input

    conventions = ablations() if conventions is None else conventions
    points, cache = [], {}
    for model in spec.models:
        mine = [r for r in records if r["model"] == model]
        if not mine:
            continue
        base, _ = base_model(model, spec.for_model(model), out)
        x = example_input(model)
        layers: dict[str, tuple[LayerShape, ...]] = {
            r["variant"]: extract_layers(compress(base, Variant(**_fields(r)), spec), x).layers
            for r in mine}  # dense_layers cannot be overridden per model
        dense_params = sum(layer.params for layer in layers["dense"]) if "dense" in layers else 1
        for conv in conventions:
            precision = conv.precision_of(model)
            for array in spec.arrays[model]:
                chip = study_chip(precision, array)
                for r in (r for r in mine if r["family"] in conv.families):
                    mapper, name = _mapper(conv, r["family"])
                    key = (model, r["variant"], name, array, precision.model_dump_json())
                    if key not in cache:
                        report = map_network(layers[r["variant"]], mapper, chip, model=model)
                        cache[key] = _point(estimate_network(report, chip), r, dense_params)
                    points.append({"conventions": conv.name, "model": model, "array": array,
                                   **precision.model_dump(), "mapper": name,
                                   "key": r["variant"], **{k: r[k] for k in _IDENTITY},
                                   **cache[key],
                                   **{k: r[k] for k in _BUDGET}})
    with (out / "points.jsonl").open("w") as handle:
        handle.writelines(json.dumps(seal(p)) + "\n" for p in points)
    return points


_IDENTITY = ("family", "label", "transform", "rank", "groups", "taps", "library", "share",
             "keep")
_BUDGET = ("dataset", "finetune_epochs", "train_images", "test_images")


def _fields(record: Record) -> Record:
    return {k: record[k] for k in Variant.model_fields}


def run_date2025(spec: Date2025Spec, out: str | Path, charts: tuple[str, ...] = (),
                 progress: Progress | None = None) -> dict[str, Any]:
    """Train what is missing, map everything, compute the claims; return the claims."""
    from imcsim.studies.date2025_claims import compute_claims, write_claims

    out = Path(out)
    records = train_variants(spec, out, progress)
    points = map_points(spec, records, out)
    claims = compute_claims(points, spec)
    write_claims(claims, points, records, out, spec, charts)
    return claims
