"""``imcsim accuracy`` (one chip), ``accuracy-sweep`` (ADC bits, noise), ``accuracy-study``
(compression methods at equal parameter budget): float vs on-chip accuracy on real images."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from imcsim.cli import app
from imcsim.cli.common import (
    ArrayOpt,
    CellBitsOpt,
    Format,
    FormatOpt,
    MatmulOpt,
    WeightBitsOpt,
    emit,
)
from imcsim.errors import ConfigError
from imcsim.hardware import build_chip
from imcsim.matmul import with_placement
from imcsim.report import format_table

Opt = typer.Option
ModelOpt = Annotated[str, Opt("--model", "-m", help="Built-in 32x32 model.")]
MapperOpt = Annotated[str, Opt("--mapper", help="Mapper (vw-sdk, im2col, sdk, pruned-sdk, low-rank-sdk…).")]
ChipOpt = Annotated[str, Opt("--chip", help="Chip preset or TOML file (precisions).")]
SignOpt = Annotated[str | None, Opt("--sign", help="Signed weights: offset or differential.")]
InputBitsOpt = Annotated[int | None, Opt("--input-bits", help="Bits of an input activation.")]
DacBitsOpt = Annotated[int | None, Opt("--dac-bits", help="Bits a DAC applies per cycle.")]
IdealOpt = Annotated[bool, Opt("--ideal", help="Turn every quantization and noise off.")]
NoiseOpt = Annotated[float, Opt("--noise", help="Programming noise: relative sigma of each conductance.")]
ReadNoiseOpt = Annotated[float, Opt("--read-noise", help="Read noise: relative sigma per MVM.")]
FaultsOpt = Annotated[float, Opt("--faults", help="Stuck-at cell rate, half stuck on, half off.")]
ImagesOpt = Annotated[int, Opt("--images", help="Test images to evaluate (a seeded subset; 1000 = the whole mnist5k test split).")]
SeedOpt = Annotated[int, Opt("--seed", help="Seed of the image subset, noise and faults.")]
SlicingOpt = Annotated[str, Opt("--slicing", help="full (bit-serial x bit-sliced) or none (per-tile ADC only).")]
RangeOpt = Annotated[str, Opt("--adc-range", help="ADC full scale: calibrated (largest partial sum on 128 training images) or fixed (worst case).")]
CheckpointOpt = Annotated[Path | None, Opt("--checkpoint", help="Weights file (default: the shipped checkpoint).")]
DataDirOpt = Annotated[Path | None, Opt("--data-dir", help="CIFAR python batches (with --checkpoint).")]
DatasetOpt = Annotated[str | None, Opt("--dataset", help="mnist5k (default), cifar10 or cifar100.")]
MethodOpt = Annotated[str, Opt("--method", help="dense, pruned-unstructured|filter|channel|pattern, low-rank, group-low-rank, low-rank-queries (attention query projections, latent 64).")]
KeepOpt = Annotated[float, Opt("--keep", help="Fraction of the weights kept by --method.")]
GroupsOpt = Annotated[int, Opt("--groups", help="Groups of group low-rank.")]
FinetuneOpt = Annotated[int, Opt("--finetune-epochs", help="Fine-tuning epochs after compression.")]


class TableFormat(StrEnum):
    table = "table"
    json = "json"
    markdown = "markdown"


TableFormatOpt = Annotated[TableFormat, Opt("--format", "-f", help="Output format.")]


def _spec(model, chip, mapper, images, seed, checkpoint, data_dir, dataset, method, keep, groups,
          finetune_epochs):
    from imcsim.studies.accuracy import AccuracySpec

    if data_dir is not None and checkpoint is None:
        raise ConfigError("--data-dir needs --checkpoint (the shipped weights are trained on mnist5k)")
    name = dataset or ("cifar10" if data_dir is not None else "mnist5k")
    return AccuracySpec(model=model, chip=chip, mapper=mapper, images=images, seed=seed,
                        checkpoint=checkpoint, dataset=name, data_dir=data_dir, method=method,
                        keep=keep, groups=groups, finetune_epochs=finetune_epochs)


def _crossbar(ideal, slicing, adc_range, noise, read_noise, faults, seed):
    from imcsim.nn.crossbar import CrossbarConfig

    if not 0 <= faults <= 1:
        raise ConfigError(f"--faults must be in [0, 1] (got {faults})")
    return CrossbarConfig(ideal=ideal, slicing=slicing, adc_range=adc_range,
                          programming_noise=noise, read_noise=read_noise,
                          stuck_on_rate=faults / 2, stuck_off_rate=faults / 2, seed=seed)


@app.command("accuracy")
def accuracy_command(
    model: ModelOpt = "resnet20", array: ArrayOpt = None, mapper: MapperOpt = "vw-sdk",
    chip: ChipOpt = "default", adc_bits: Annotated[int | None, Opt("--adc-bits", help="ADC resolution.")] = None,
    cell_bits: CellBitsOpt = None, weight_bits: WeightBitsOpt = None, sign: SignOpt = None,
    input_bits: InputBitsOpt = None, dac_bits: DacBitsOpt = None, ideal: IdealOpt = False,
    noise: NoiseOpt = 0.0, read_noise: ReadNoiseOpt = 0.0, faults: FaultsOpt = 0.0,
    images: ImagesOpt = 200, seed: SeedOpt = 0, slicing: SlicingOpt = "full",
    adc_range: RangeOpt = "calibrated", checkpoint: CheckpointOpt = None, data_dir: DataDirOpt = None,
    dataset: DatasetOpt = None, method: MethodOpt = "dense", keep: KeepOpt = 0.5,
    groups: GroupsOpt = 2, finetune_epochs: FinetuneOpt = 2,
    chip_in_loop_epochs: Annotated[int, Opt(
        "--chip-in-loop-epochs",
        help="Fine-tune N epochs with this chip's quantization in the loop (straight-through)."),
    ] = 0,
    matmul: MatmulOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Float and on-chip top-1 accuracy of a trained model mapped on crossbar arrays.

    Default data: the shipped ResNet-20 checkpoint and bundled MNIST test images padded
    to 3x32x32 (--checkpoint and --data-dir for other weights and CIFAR).
    """
    from imcsim.studies.accuracy import run_accuracy

    config = _crossbar(ideal, slicing, adc_range, noise, read_noise, faults, seed)
    hw = build_chip(chip, array, cell_bits=cell_bits, weight_bits=weight_bits, sign=sign,
                       input_bits=input_bits, dac_bits=dac_bits, adc_bits=adc_bits)
    hw = with_placement(hw, matmul)
    spec = _spec(model, hw, mapper, images, seed, checkpoint, data_dir, dataset, method, keep,
                 groups, finetune_epochs)
    if chip_in_loop_epochs < 0:
        raise ConfigError(f"--chip-in-loop-epochs must be >= 0 (got {chip_in_loop_epochs})")
    record = run_accuracy(spec, config, chip_in_loop_epochs=chip_in_loop_epochs).to_dict()
    record["chip_in_loop_epochs"] = chip_in_loop_epochs
    table = "\n".join(f"{k:18s} {v}" for k, v in record.items())
    emit(record, table, fmt)


def _list(text: str, kind: type) -> list:
    try:
        return [kind(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise ConfigError(f"expected a comma list of {kind.__name__} (got {text!r})") from None


@app.command("accuracy-sweep")
def accuracy_sweep_command(
    model: ModelOpt = "resnet20", array: ArrayOpt = None, mapper: MapperOpt = "vw-sdk",
    chip: ChipOpt = "default",
    adc_bits: Annotated[str, Opt("--adc-bits", help="Comma list of ADC resolutions.")] = "8,7,6,5,4",
    noise: Annotated[str, Opt("--noise", help="Comma list of sigmas (programming = read).")] = "0.02,0.05,0.1,0.2",
    images: ImagesOpt = 300, seed: SeedOpt = 0, slicing: SlicingOpt = "full",
    adc_range: RangeOpt = "calibrated", checkpoint: CheckpointOpt = None,
    fmt: TableFormatOpt = TableFormat.table,
) -> None:
    """Accuracy as the ADC resolution drops and as device noise grows (one mapped model)."""
    from imcsim.studies.accuracy import prepare
    from imcsim.studies.accuracy_study import sweep

    base = _crossbar(False, slicing, adc_range, 0.0, 0.0, 0.0, seed)
    spec = _spec(model, build_chip(chip, array), mapper, images, seed, checkpoint, None,
                 None, "dense", 0.5, 2, 0)
    prepared = prepare(spec)
    rows = sweep(prepared, base, _list(adc_bits, int), _list(noise, float))
    title = (f"{model} on {spec.chip.array.label} ({spec.chip.name}), mapper {mapper}, "
             f"{prepared.data}; noise rows at {spec.chip.precision.adc_bits}-bit ADC")
    _emit_rows(rows, title, fmt)


@app.command("accuracy-study")
def accuracy_study_command(
    model: ModelOpt = "resnet20", array: ArrayOpt = "128x128", chip: ChipOpt = "default",
    keep: KeepOpt = 0.5, groups: GroupsOpt = 2, finetune_epochs: FinetuneOpt = 2,
    adc_bits: Annotated[str, Opt("--adc-bits", help="Comma list of low ADC resolutions.")] = "6,5,4",
    images: ImagesOpt = 200, seed: SeedOpt = 0, slicing: SlicingOpt = "full",
    adc_range: RangeOpt = "calibrated", fmt: TableFormatOpt = TableFormat.table,
) -> None:
    """Dense, pruned, low-rank and group low-rank at equal parameter budget, fine-tuned:
    cycles next to float, ideal-chip and low-ADC accuracy."""
    from imcsim.studies.accuracy_study import compression_study

    spec = _spec(model, build_chip(chip, array), "vw-sdk", images, seed, None, None, None,
                 "dense", keep, groups, finetune_epochs)
    base = _crossbar(False, slicing, adc_range, 0.0, 0.0, 0.0, seed)
    rows = [r.row() for r in compression_study(spec, base, _list(adc_bits, int))]
    title = (f"{model} on {spec.chip.array.label} ({spec.chip.name}), keep {keep}, "
             f"{finetune_epochs} fine-tuning epochs, {images} mnist5k test images")
    _emit_rows(rows, title, fmt)


def _emit_rows(rows: list[dict], title: str, fmt: TableFormat) -> None:
    from imcsim.studies.accuracy_study import markdown_table

    if fmt is TableFormat.json:
        emit({"title": title, "rows": rows}, "", Format.json)
    elif fmt is TableFormat.markdown:
        typer.echo(f"{title}\n\n{markdown_table(rows)}")
    else:
        typer.echo(format_table(rows, tuple(rows[0]), title=title))
