"""Accuracy on the chip: float and crossbar-simulated top-1 accuracy of a mapped model.

``prepare(spec)`` loads the trained model (the shipped checkpoint or ``spec.checkpoint``),
real test images (the bundled MNIST subset, or CIFAR from ``spec.data_dir``), optionally
compresses and fine-tunes it, and maps it on the chip; ``evaluate_on_chip`` then runs the
functional crossbar simulation (``to_crossbar``) that follows that mapping.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from pydantic import Field
from torch import nn

from imcsim._config import StrictModel
from imcsim.compression import transform_of
from imcsim.errors import ConfigError
from imcsim.hardware import ChipConfig
from imcsim.network import map_network
from imcsim.nn.calibration import CalibrationInfo
from imcsim.nn.crossbar import CrossbarConfig, CrossbarConv2d, adc_clipping, to_crossbar
from imcsim.nn.crossbar_config import resolve_settings
from imcsim.nn.extract import extract_layers
from imcsim.report import NetworkReport
from imcsim.train.loop import TrainConfig, evaluate, finetune
from imcsim.zoo.checkpoints import Dataset, checkpoint_path, load_checkpoint, load_data
from imcsim.zoo.metrics import Metric, evaluate_metric, resolve_metric
from imcsim.zoo.workload import Workload, load_workload

if TYPE_CHECKING:
    from imcsim.train.distributed import DistributedConfig

__all__ = ["AccuracyResult", "AccuracySpec", "Prepared", "evaluate_on_chip", "prepare",
           "run_accuracy"]



class AccuracySpec(StrictModel):
    """What to measure: model, data, compression, mapping, chip."""

    model: str = "resnet20"
    """Built-in model name."""
    chip: ChipConfig
    """Array geometry and precisions (the mapping's and the simulation's)."""
    mapper: str = "vw-sdk"
    """Registered mapper name."""
    images: int = Field(default=1000, ge=1)
    """Test images to evaluate (a seeded random subset when fewer than the test set;
    more than the test set holds is an error, never a silent cut)."""
    seed: int = Field(default=0, ge=0, le=2**63 - 1)
    """Seed of the image subset (the crossbar's noise seed lives in the crossbar config)."""
    checkpoint: Path | None = None
    """Weights to load; ``None`` = the shipped checkpoint of ``model``."""
    dataset: str = "mnist5k"
    """mnist5k (bundled) or cifar10/cifar100 (needs ``data_dir``)."""
    data_dir: Path | None = None
    """Directory with the CIFAR python batches."""
    method: str = "dense"
    """Compression: dense, pruned-unstructured/filter/channel/pattern, low-rank, group-low-rank."""
    keep: float = Field(default=0.5, gt=0, le=1)
    """Fraction of the conv/linear weights kept by the compression."""
    groups: int = Field(default=2, ge=1)
    """Groups of group low-rank."""
    finetune_epochs: int = Field(default=2, ge=0)
    """Fine-tuning epochs after compression (0 = none; dense models are not fine-tuned)."""
    finetune_images: int | None = Field(default=None, ge=1)
    """Training images fine-tuning sees: a seeded random subset (``seed``); None = all."""
    calibration_images: int = Field(default=128, ge=1)
    """Training images set aside for calibration (the crossbar config's
    ``calibration_images`` says how many a calibration uses)."""
    calibration_cache: Path | None = None
    """Directory where calibration statistics are cached (None: not cached)."""
    workload: Workload | None = None
    """A user's model, weights, inputs, data and metric (``imcsim.zoo.workload``); when set,
    it replaces ``model``/``checkpoint``/``dataset``/``data_dir``."""


@dataclass(frozen=True)
class Prepared:
    """A trained (compressed, fine-tuned) model, its test data and its mapping report."""

    spec: AccuracySpec
    model: nn.Module
    report: NetworkReport
    images: torch.Tensor
    labels: torch.Tensor
    calibration: torch.Tensor
    weights: str
    data: str
    float_accuracy: float | None
    """Top-1 of the float model (None when the metric is another)."""
    metric: Metric = resolve_metric("top1")
    float_metric: float | None = None
    """The metric of the float model (= ``float_accuracy`` for top-1)."""
    example: Any = None
    """The example input the layers were extracted with (None: the first test image)."""


@dataclass(frozen=True)
class AccuracyResult:
    """Float and on-chip accuracy of one model/mapping/chip, with its cycle count, how the
    ranges were calibrated and the fraction of ADC conversions that clipped."""

    prepared: Prepared
    config: CrossbarConfig
    accuracy: float
    calibration: CalibrationInfo | None = None
    clipped: dict[str, float] | None = None
    """Per layer: fraction of the evaluation's ADC conversions that clipped."""
    clipped_total: float = 0.0
    """Over all layers: clipped conversions / conversions."""

    def to_dict(self) -> dict[str, Any]:
        p, spec = self.prepared, self.prepared.spec
        s = resolve_settings(p.report.chip, self.config)
        cal = self.calibration
        return {
            "model": spec.model, "method": spec.method,
            "keep": None if spec.method == "dense" else spec.keep,
            "mapper": spec.mapper, "array": p.report.chip.array.label, "chip": p.report.chip.name,
            "matmul_placement": p.report.chip.matmul.placement,
            "accuracy": self.accuracy if p.metric.name == "top1" else None,
            "float_accuracy": p.float_accuracy, "metric_name": p.metric.name,
            "float_metric": p.float_accuracy if p.float_metric is None else p.float_metric,
            "metric": self.accuracy,
            "images": len(p.images), "data": p.data, "weights": p.weights,
            "params": p.report.total()["params"], "cycles": p.report.cycles,
            "ideal": s.ideal, "slicing": self.config.slicing, "weight_bits": s.weight_bits,
            "cell_bits": s.cell_bits, "sign": s.sign, "input_bits": s.input_bits,
            "dac_bits": s.dac_bits, "adc_bits": s.adc_bits, "adc_range": s.adc_range,
            "programming_noise": s.programming_noise, "read_noise": s.read_noise,
            "stuck_on_rate": s.stuck_on_rate, "stuck_off_rate": s.stuck_off_rate,
            "seed": s.seed,
            "adc_calibration": "-" if s.ideal or s.adc_range != "calibrated" else (
                s.adc_calibration if s.adc_parameter is None
                else f"{s.adc_calibration}:{s.adc_parameter:g}"),
            "adc_scope": s.adc_scope, "adc_step": s.adc_step,
            "calibration_images": 0 if cal is None else cal.images,
            "calibration_cached": cal is not None and cal.cached,
            "adc_clipped": self.clipped_total, "adc_clipped_by_layer": self.clipped or {},
            "wire_resistance_ohm": s.wire_resistance_ohm, "ir_drop_solver": s.ir_drop_solver,
            "ir_drop_compensation": s.ir_drop_compensation,
            "drift_time_s": s.drift_time_s, "drift_compensation": s.drift_compensation,
            "adc_offset_lsb": s.adc_offset_lsb, "adc_dnl_lsb": s.adc_dnl_lsb,
        }


def _load(spec: AccuracySpec) -> tuple[nn.Module, str, dict[str, Any]]:
    path = spec.checkpoint or checkpoint_path(spec.model)
    if spec.checkpoint is None and not path.exists():
        raise ConfigError(
            f"model {spec.model!r} has no shipped weights; train them with "
            f"`imcsim train --model {spec.model} --out W.pt` and pass --checkpoint W.pt"
        )
    model, meta = load_checkpoint(spec.model, path)
    return model, f"{path.name} (trained on {meta.get('dataset', 'unknown data')})", meta


def _subset(data: Dataset, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    if n > len(data.test_images):
        raise ConfigError(f"images={n}: the {data.name} test split holds "
                          f"{len(data.test_images)} images")
    order = torch.randperm(len(data.test_images), generator=torch.Generator().manual_seed(seed))
    idx = order[:n]
    return data.test_images[idx], data.test_labels[idx]


def _compress(model: nn.Module, spec: AccuracySpec, data: Dataset,
              parallel: DistributedConfig | None = None) -> nn.Module:
    transform = transform_of(spec.method, "method")
    if transform == "dense":
        return model
    from imcsim.studies.variants import compressed

    model = compressed(model, transform, spec.keep, spec.groups, "input")
    if spec.finetune_epochs:
        config = TrainConfig(epochs=spec.finetune_epochs, lr=0.01, warmup_steps=0, seed=spec.seed)
        images, labels = data.train_images, data.train_labels
        if spec.finetune_images is not None and spec.finetune_images < len(images):
            order = torch.randperm(len(images), generator=torch.Generator().manual_seed(spec.seed))
            images, labels = images[order[: spec.finetune_images]], labels[order[: spec.finetune_images]]
        finetune(model, images, labels, config, parallel=parallel)
    return model.eval()


def _prepare_workload(spec: AccuracySpec, parallel: DistributedConfig | None) -> Prepared:
    """``prepare`` for a user's workload: its model, weights, example input, data, metric."""
    loaded = load_workload(spec.workload)  # type: ignore[arg-type]
    data = loaded.require_data("accuracy")
    if spec.method != "dense" and spec.finetune_epochs and not loaded.metric.labels:
        raise ConfigError(f"fine-tuning after --method {spec.method} trains a classifier; "
                          f"metric {loaded.metric.name} has no class labels (--finetune-epochs 0)")
    model = _compress(loaded.model, spec, data, parallel)
    images, labels = _subset(data, min(spec.images, len(data.test_images)), spec.seed)
    extraction = extract_layers(model, loaded.example)
    report = map_network(extraction.layers, spec.mapper, spec.chip, model=loaded.name,
                         unmapped=extraction.unmapped)
    value = evaluate_metric(model, loaded.metric, images, labels)
    return Prepared(spec=spec, model=model, report=report, images=images, labels=labels,
                    calibration=data.train_images[: spec.calibration_images],
                    weights=loaded.weights, data=f"{len(images)} test examples of {data.description}",
                    float_accuracy=value if loaded.metric.name == "top1" else None,
                    metric=loaded.metric, float_metric=value, example=loaded.example)


def prepare(spec: AccuracySpec, parallel: DistributedConfig | None = None) -> Prepared:
    """Load, compress, fine-tune (data-parallel with ``parallel``) and map the model; pick the
    test and calibration images."""
    if spec.workload is not None:
        return _prepare_workload(spec, parallel)
    model, weights, meta = _load(spec)
    data = load_data(spec.model, spec.dataset, spec.data_dir)
    if int(meta.get("num_classes", data.num_classes)) != data.num_classes:
        raise ConfigError(
            f"checkpoint has {meta['num_classes']} classes but {spec.dataset} has "
            f"{data.num_classes}"
        )
    model = _compress(model, spec, data, parallel)
    images, labels = _subset(data, spec.images, spec.seed)
    layers = extract_layers(model, images[:1])
    report = map_network(layers.layers, spec.mapper, spec.chip, model=spec.model,
                         unmapped=layers.unmapped)
    text = f"{len(images)} test images of {data.description}"
    return Prepared(spec=spec, model=model, report=report, images=images, labels=labels,
                    calibration=data.train_images[: spec.calibration_images], weights=weights,
                    data=text, float_accuracy=evaluate(model, images, labels))


def evaluate_on_chip(prepared: Prepared, config: CrossbarConfig, batch_size: int = 100) -> AccuracyResult:
    """Top-1 accuracy of the prepared model simulated on its mapping under ``config``."""
    sim = to_crossbar(prepared.model, prepared.report, config,
                      calibration=prepared.calibration if config.needs_calibration else None,
                      calibration_cache=prepared.spec.calibration_cache)
    if prepared.metric.name == "top1":
        accuracy = evaluate(sim, prepared.images, prepared.labels, batch_size)
    else:
        accuracy = evaluate_metric(sim, prepared.metric, prepared.images, prepared.labels,
                                   batch_size)
    counts = adc_clipping(sim)
    conversions = sum(c.conversions for c in counts.values())
    layers = [m for m in sim.modules() if isinstance(m, CrossbarConv2d)]
    return AccuracyResult(
        prepared=prepared, config=config, accuracy=accuracy,
        calibration=layers[0].calibration_info if layers else None,
        clipped={name: c.fraction for name, c in counts.items()},
        clipped_total=sum(c.clipped for c in counts.values()) / conversions if conversions else 0.0,
    )


def run_accuracy(
    spec: AccuracySpec, config: CrossbarConfig | None = None, *, chip_in_loop_epochs: int = 0,
    parallel: DistributedConfig | None = None,
) -> AccuracyResult:
    """``prepare``, optionally fine-tune with the chip in the loop, then ``evaluate_on_chip``.
    ``parallel`` spreads the post-compression fine-tuning over workers (the chip-in-the-loop
    fine-tuning stays in one process)."""
    config = config if config is not None else CrossbarConfig()
    prepared = prepare(spec, parallel)
    if chip_in_loop_epochs > 0 and not config.ideal:
        if spec.workload is not None:
            raise ConfigError("--chip-in-loop-epochs runs on the built-in models and data only")
        data = load_data(spec.model, spec.dataset, spec.data_dir)
        train_config = TrainConfig(epochs=chip_in_loop_epochs, lr=0.005, warmup_steps=0,
                                   seed=spec.seed)
        prepared = finetune_on_chip(prepared, config, train_config, data.train_images,
                                    data.train_labels)
    return evaluate_on_chip(prepared, config)


def finetune_on_chip(
    prepared: Prepared, config: CrossbarConfig, train_config: TrainConfig, train_images: torch.Tensor,
    train_labels: torch.Tensor,
) -> Prepared:
    """Fine-tune with the crossbar in the loop (straight-through estimator), then write the
    learned weights back into a copy of the plain model (masks applied) and re-measure it."""
    from dataclasses import replace

    from imcsim.nn.crossbar import CrossbarConv2d, detached_copy
    from imcsim.nn.ops import set_array_weight

    sim = to_crossbar(prepared.model, prepared.report, config,
                      calibration=prepared.calibration if config.needs_calibration else None,
                      calibration_cache=prepared.spec.calibration_cache)
    finetune(sim, train_images, train_labels, train_config)
    model = detached_copy(prepared.model)
    plain = dict(model.named_modules())
    with torch.no_grad():
        for name, layer in sim.named_modules():
            if isinstance(layer, CrossbarConv2d):
                target = plain[name]
                set_array_weight(target, layer.weight * layer.weight_mask)
                bias = getattr(layer, "out_bias", layer.bias)  # a transposed conv's bias
                if bias is not None:
                    target.bias.copy_(bias)
            elif name in plain and not any(True for _ in layer.children()):
                plain[name].load_state_dict(layer.state_dict())
    model.eval()
    return replace(prepared, model=model,
                   float_accuracy=evaluate(model, prepared.images, prepared.labels))
