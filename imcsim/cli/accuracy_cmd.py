"""``imcsim accuracy`` (one chip), ``accuracy-sweep`` (ADC bits per calibration method, noise,
IR drop, drift), ``accuracy-study`` (compression methods at equal parameter budget): float vs
on-chip accuracy on real images."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from imcsim.cli import app
from imcsim.cli.common import (
    ArrayOpt,
    CellBitsOpt,
    ChipOpt,
    DeviceOpt,
    GradCompressionOpt,
    GradRankOpt,
    MapperOpt,
    MatmulOpt,
    PlainFormat,
    PlainFormatOpt,
    WeightBitsOpt,
    WorkersOpt,
    emit,
    parallel_config,
    parse_float,
    parse_int,
    run_device,
    split_list,
)
from imcsim.cli.options import workload_options
from imcsim.errors import ConfigError
from imcsim.hardware import build_chip
from imcsim.matmul import with_placement
from imcsim.report import format_table

__all__ = ["accuracy_command", "accuracy_study_command", "accuracy_sweep_command"]

Opt = typer.Option
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
RangeOpt = Annotated[str, Opt("--adc-range", help="ADC full scale: calibrated (see --adc-calibration) or fixed (worst case).")]
CalibrationOpt = Annotated[str, Opt("--adc-calibration", help="Calibrated ADC range: max, percentile[:P] (default P 99.9) or analytic[:K] (mean + K sigma, default K 4).")]
ScopeOpt = Annotated[str, Opt("--adc-scope", help="One calibrated ADC range per layer or per tile.")]
StepOpt = Annotated[str, Opt("--adc-step", help="ADC step: unit (a whole multiple or fraction of the unit current) or exact (range / levels).")]
CalImagesOpt = Annotated[int, Opt("--calibration-images", help="Training images a calibration uses.")]
CacheOpt = Annotated[bool, Opt("--calibration-cache/--no-calibration-cache", help="Cache calibration statistics under $IMCSIM_CACHE_DIR (default ~/.cache/imcsim).")]
WireOpt = Annotated[float | None, Opt("--wire-resistance-ohm", help="IR drop: wire resistance per cell segment (default: the chip's [device] value).")]
SolverOpt = Annotated[str, Opt("--ir-drop-solver", help="exact (resistor network solved per tile) or linear (first-order).")]
IRCompOpt = Annotated[bool, Opt("--ir-drop-compensation/--no-ir-drop-compensation", help="Global IR-drop compensation (a per-layer digital gain).")]
DriftOpt = Annotated[float | None, Opt("--drift-time-s", help="Conductance drift: read time after programming, in seconds (>= the chip's t0).")]
CompensateOpt = Annotated[bool, Opt("--drift-compensation/--no-drift-compensation", help="Global drift compensation (a per-layer digital gain).")]
AdcOffsetOpt = Annotated[float | None, Opt("--adc-offset-lsb", help="Sigma of each ADC's offset, in LSB.")]
AdcDnlOpt = Annotated[float | None, Opt("--adc-dnl-lsb", help="Sigma of each ADC code width (DNL), in LSB.")]
CheckpointOpt = Annotated[Path | None, Opt("--checkpoint", help="Weights file (default: the shipped checkpoint).")]
DatasetOpt = Annotated[str | None, Opt("--dataset", help="mnist5k (default), cifar10 or cifar100.")]
MethodOpt = Annotated[str, Opt("--method", help="dense, pruned-unstructured|filter|channel|pattern, low-rank, group-low-rank, low-rank-queries (attention query projections, latent 64).")]
KeepOpt = Annotated[float, Opt("--keep", help="Fraction of the weights kept by --method.")]
GroupsOpt = Annotated[int, Opt("--groups", help="Groups of group low-rank.")]
FinetuneOpt = Annotated[int, Opt("--finetune-epochs", help="Fine-tuning epochs after compression.")]
MaybeKeepOpt = Annotated[float | None, Opt("--keep", help="Fraction of the weights kept by --method (default 0.5).")]
MaybeGroupsOpt = Annotated[int | None, Opt("--groups", help="Groups of --method group-low-rank (default 2).")]
MaybeFinetuneOpt = Annotated[int | None, Opt("--finetune-epochs", help="Fine-tuning epochs after compression (default 2).")]


class TableFormat(StrEnum):
    table = "table"
    json = "json"
    markdown = "markdown"


TableFormatOpt = Annotated[TableFormat, Opt("--format", "-f", help="Output format.")]


def _spec(workload, chip, mapper, images, seed, checkpoint, dataset, method, keep, groups,
          finetune_epochs, calibration_images=32, calibration_cache=None):
    from imcsim.studies.accuracy import AccuracySpec

    w = workload
    plain = w.plain and (dataset is None or w.data is None)
    if not plain and checkpoint is not None:
        raise ConfigError("--checkpoint loads a built-in model's imcsim checkpoint; give "
                          "--weights FILE for this workload")
    if not plain and dataset is not None:
        raise ConfigError("--dataset names built-in data; give --data for this workload")
    common = dict(chip=chip, mapper=mapper, images=images, seed=seed, method=method, keep=keep,
                  groups=groups, finetune_epochs=finetune_epochs,
                  calibration_images=max(128, calibration_images),
                  calibration_cache=calibration_cache)
    if not plain:
        return AccuracySpec(model=w.model, workload=w, **common)
    if w.data_dir is not None and checkpoint is None:
        raise ConfigError("--data-dir needs --checkpoint (the shipped weights are trained on mnist5k)")
    name = dataset or w.data or ("cifar10" if w.data_dir is not None else "mnist5k")
    return AccuracySpec(model=w.model, checkpoint=checkpoint, dataset=name, data_dir=w.data_dir,
                        **common)


def _crossbar(ideal, slicing, adc_range, noise, read_noise, faults, seed, **device):
    from imcsim.nn.crossbar import CrossbarConfig

    if not 0 <= faults <= 1:
        raise ConfigError(f"--faults must be in [0, 1] (got {faults})")
    if ideal and (noise or read_noise or faults):
        flag = "--noise" if noise else "--read-noise" if read_noise else "--faults"
        raise ConfigError(f"--ideal turns every quantization and noise off; drop {flag}")
    return CrossbarConfig(ideal=ideal, slicing=slicing, adc_range=adc_range,
                          programming_noise=noise, read_noise=read_noise,
                          stuck_on_rate=faults / 2, stuck_off_rate=faults / 2, seed=seed,
                          **device)


def _cache(enabled: bool):
    from imcsim.nn.calibration import default_cache_dir

    return default_cache_dir() if enabled else None


@app.command("accuracy")
@workload_options()
def accuracy_command(
    workload: Any, array: ArrayOpt = None, mapper: MapperOpt = "vw-sdk",
    chip: ChipOpt = "default", adc_bits: Annotated[int | None, Opt("--adc-bits", help="ADC resolution.")] = None,
    cell_bits: CellBitsOpt = None, weight_bits: WeightBitsOpt = None, sign: SignOpt = None,
    input_bits: InputBitsOpt = None, dac_bits: DacBitsOpt = None, ideal: IdealOpt = False,
    noise: NoiseOpt = 0.0, read_noise: ReadNoiseOpt = 0.0, faults: FaultsOpt = 0.0,
    images: ImagesOpt = 200, seed: SeedOpt = 0, slicing: SlicingOpt = "full",
    adc_range: RangeOpt = "calibrated", adc_calibration: CalibrationOpt = "percentile",
    adc_scope: ScopeOpt = "layer", adc_step: StepOpt = "unit", calibration_images: CalImagesOpt = 32,
    calibration_cache: CacheOpt = True, wire_resistance_ohm: WireOpt = None,
    ir_drop_solver: SolverOpt = "exact", ir_drop_compensation: IRCompOpt = False,
    drift_time_s: DriftOpt = None, drift_compensation: CompensateOpt = False,
    adc_offset_lsb: AdcOffsetOpt = None, adc_dnl_lsb: AdcDnlOpt = None,
    checkpoint: CheckpointOpt = None,
    dataset: DatasetOpt = None, method: MethodOpt = "dense", keep: MaybeKeepOpt = None,
    groups: MaybeGroupsOpt = None, finetune_epochs: MaybeFinetuneOpt = None,
    chip_in_loop_epochs: Annotated[int, Opt(
        "--chip-in-loop-epochs",
        help="Fine-tune N epochs with this chip's quantization in the loop (straight-through)."),
    ] = 0,
    matmul: MatmulOpt = None,
    workers: WorkersOpt = 1, grad_compression: GradCompressionOpt = "none",
    grad_rank: GradRankOpt = 4,
    fmt: PlainFormatOpt = PlainFormat.table,
    device: DeviceOpt = "cpu",
) -> None:
    """Float and on-chip accuracy (or --metric) of a trained model mapped on crossbar arrays.

    Default: the shipped ResNet-20 checkpoint on bundled MNIST test images padded to
    3x32x32; --model/--weights/--data/--metric for yours (docs/guide/your-model.md).
    """
    run_device(device)
    from imcsim.nn.crossbar_config import resolve_settings
    from imcsim.studies.accuracy import run_accuracy

    precisions = {"--adc-bits": adc_bits, "--cell-bits": cell_bits, "--weight-bits": weight_bits,
                  "--sign": sign, "--input-bits": input_bits, "--dac-bits": dac_bits,
                  "--chip-in-loop-epochs": chip_in_loop_epochs or None}
    _refuse_with("--ideal", ideal, precisions)
    config = _crossbar(ideal, slicing, adc_range, noise, read_noise, faults, seed,
                       adc_calibration=adc_calibration, adc_scope=adc_scope, adc_step=adc_step,
                       calibration_images=calibration_images,
                       wire_resistance_ohm=wire_resistance_ohm, ir_drop_solver=ir_drop_solver,
                       ir_drop_compensation=ir_drop_compensation, drift_time_s=drift_time_s,
                       drift_compensation=drift_compensation,
                       adc_offset_lsb=adc_offset_lsb, adc_dnl_lsb=adc_dnl_lsb)
    hw = build_chip(chip, array, cell_bits=cell_bits, weight_bits=weight_bits, sign=sign,
                       input_bits=input_bits, dac_bits=dac_bits, adc_bits=adc_bits)
    hw = with_placement(hw, matmul)
    resolve_settings(hw, config)  # device settings checked before any work
    _refuse_with("--method dense", method == "dense",
                 {"--keep": keep, "--groups": groups, "--finetune-epochs": finetune_epochs})
    _refuse_with(f"--method {method}", method != "group-low-rank", {"--groups": groups})
    parallel = parallel_config(workers, grad_compression, grad_rank)
    _refuse_with("--method dense", method == "dense", _parallel_given(workers, grad_compression))
    _refuse_with("--finetune-epochs 0", finetune_epochs == 0,
                 _parallel_given(workers, grad_compression))
    spec = _spec(workload, hw, mapper, images, seed, checkpoint, dataset, method,
                 0.5 if keep is None else keep, 2 if groups is None else groups,
                 2 if finetune_epochs is None else finetune_epochs, calibration_images,
                 _cache(calibration_cache))
    if chip_in_loop_epochs < 0:
        raise ConfigError(f"--chip-in-loop-epochs must be >= 0 (got {chip_in_loop_epochs})")
    record = run_accuracy(spec, config, chip_in_loop_epochs=chip_in_loop_epochs,
                          parallel=parallel).to_dict()
    record["chip_in_loop_epochs"] = chip_in_loop_epochs
    table = "\n".join(f"{k:18s} {v}" for k, v in record.items())
    emit(record, table, fmt)


def _parallel_given(workers: int, grad_compression: str) -> dict[str, Any]:
    """The data-parallel options given (they act on fine-tuning only)."""
    return {"--workers": workers if workers != 1 else None,
            "--grad-compression": grad_compression if grad_compression != "none" else None}


def _refuse_with(flag: str, active: bool, options: dict[str, Any]) -> None:
    """Options that would be ignored under ``flag`` are an error, not a silent no-op."""
    given = [name for name, value in options.items() if value is not None]
    if active and given:
        raise ConfigError(f"{given[0]} has no effect with {flag}; drop it")


def _list(text: str, kind: type, what: str) -> list:
    parse = parse_int if kind is int else parse_float
    return [parse(item, what) for item in split_list(text, what)]


def _axis(text: str, kind: type, what: str) -> list:
    """A sweep axis: a comma list, or ``""`` for no rows along it."""
    return [] if not text.strip() else _list(text, kind, what)


@app.command("accuracy-sweep")
@workload_options()
def accuracy_sweep_command(
    workload: Any, array: ArrayOpt = None, mapper: MapperOpt = "vw-sdk",
    chip: ChipOpt = "default", sign: SignOpt = None,
    adc_bits: Annotated[str, Opt("--adc-bits", help="Comma list of ADC resolutions ('' for none).")] = "8,7,6,5,4",
    noise: Annotated[str, Opt("--noise", help="Comma list of sigmas, programming = read ('' for none).")] = "0.02,0.05,0.1,0.2",
    images: ImagesOpt = 300, seed: SeedOpt = 0, slicing: SlicingOpt = "full",
    adc_range: RangeOpt = "calibrated",
    adc_calibration: Annotated[str, Opt("--adc-calibration", help="Comma list of ADC calibrations (max, percentile[:P], analytic[:K]): one ADC-bits series each.")] = "percentile",
    adc_scope: ScopeOpt = "layer", adc_step: StepOpt = "unit", calibration_images: CalImagesOpt = 32,
    calibration_cache: CacheOpt = True,
    wire_resistance_ohm: Annotated[str, Opt("--wire-resistance-ohm", help="Comma list of wire resistances per cell segment (IR-drop rows).")] = "",
    ir_drop_solver: SolverOpt = "exact", ir_drop_compensation: IRCompOpt = False,
    drift_time_s: Annotated[str, Opt("--drift-time-s", help="Comma list of read times in seconds (drift rows, without and with compensation).")] = "",
    adc_offset_lsb: AdcOffsetOpt = None, adc_dnl_lsb: AdcDnlOpt = None,
    checkpoint: CheckpointOpt = None, fmt: TableFormatOpt = TableFormat.table,
    device: DeviceOpt = "cpu",
) -> None:
    """Accuracy as the ADC resolution drops (per calibration method), as device noise grows,
    as wire resistance grows (IR drop) and as the chip ages (drift)."""
    run_device(device)
    from imcsim.nn.crossbar_config import resolve_settings
    from imcsim.studies.accuracy import prepare
    from imcsim.studies.accuracy_study import sweep

    methods = split_list(adc_calibration, "--adc-calibration")
    base = _crossbar(False, slicing, adc_range, 0.0, 0.0, 0.0, seed, adc_calibration=methods[0],
                     adc_scope=adc_scope, adc_step=adc_step, calibration_images=calibration_images,
                     ir_drop_solver=ir_drop_solver, ir_drop_compensation=ir_drop_compensation,
                     adc_offset_lsb=adc_offset_lsb, adc_dnl_lsb=adc_dnl_lsb)
    hw = build_chip(chip, array, sign=sign)
    wires = _axis(wire_resistance_ohm, float, "--wire-resistance-ohm")
    times = _axis(drift_time_s, float, "--drift-time-s")
    updates = [{"adc_calibration": m} for m in methods] + [
        {"wire_resistance_ohm": r} for r in wires] + [{"drift_time_s": t} for t in times]
    for update in updates:  # every row's settings checked before the long run
        resolve_settings(hw, base.replace(**update))
    spec = _spec(workload, hw, mapper, images, seed, checkpoint, None, "dense", 0.5, 2, 0,
                 calibration_images, _cache(calibration_cache))
    prepared = prepare(spec)
    rows = sweep(prepared, base, _axis(adc_bits, int, "--adc-bits"),
                 _axis(noise, float, "--noise"), calibrations=methods, wire_resistances=wires,
                 drift_times=times)
    title = (f"{spec.model} on {spec.chip.array.label} ({spec.chip.name}, {spec.chip.array.sign} "
             f"sign encoding), mapper {mapper}, {prepared.data}; noise rows at "
             f"{spec.chip.precision.adc_bits}-bit ADC")
    _emit_rows(rows, title, fmt)


@app.command("accuracy-study")
@workload_options()
def accuracy_study_command(
    workload: Any, array: ArrayOpt = "128x128", chip: ChipOpt = "default",
    keep: KeepOpt = 0.5, groups: GroupsOpt = 2, finetune_epochs: FinetuneOpt = 2,
    adc_bits: Annotated[str, Opt("--adc-bits", help="Comma list of low ADC resolutions.")] = "6,5,4",
    images: ImagesOpt = 200, seed: SeedOpt = 0, slicing: SlicingOpt = "full",
    adc_range: RangeOpt = "calibrated", adc_calibration: CalibrationOpt = "percentile",
    adc_scope: ScopeOpt = "layer", adc_step: StepOpt = "unit", calibration_images: CalImagesOpt = 32,
    calibration_cache: CacheOpt = True, workers: WorkersOpt = 1,
    grad_compression: GradCompressionOpt = "none", grad_rank: GradRankOpt = 4,
    fmt: TableFormatOpt = TableFormat.table,
    device: DeviceOpt = "cpu",
) -> None:
    """Dense, pruned, low-rank and group low-rank at equal parameter budget, fine-tuned
    (--workers N: data-parallel): cycles next to float, ideal-chip and low-ADC accuracy."""
    run_device(device)
    from imcsim.studies.accuracy_study import compression_study

    parallel = parallel_config(workers, grad_compression, grad_rank)
    _refuse_with("--finetune-epochs 0", finetune_epochs == 0,
                 _parallel_given(workers, grad_compression))
    spec = _spec(workload, build_chip(chip, array), "vw-sdk", images, seed, None, None,
                 "dense", keep, groups, finetune_epochs, calibration_images,
                 _cache(calibration_cache))
    base = _crossbar(False, slicing, adc_range, 0.0, 0.0, 0.0, seed,
                     adc_calibration=adc_calibration, adc_scope=adc_scope, adc_step=adc_step,
                     calibration_images=calibration_images)
    rows = [r.row() for r in compression_study(spec, base, _list(adc_bits, int, "--adc-bits"),
                                               parallel=parallel)]
    title = (f"{spec.model} on {spec.chip.array.label} ({spec.chip.name}), keep {keep}, "
             f"{finetune_epochs} fine-tuning epochs, {images} test images of "
             f"{workload.data or 'mnist5k'}")
    _emit_rows(rows, title, fmt)


def _emit_rows(rows: list[dict], title: str, fmt: TableFormat) -> None:
    from imcsim.studies.accuracy_study import markdown_table

    if fmt is TableFormat.json:
        emit({"title": title, "rows": rows}, "", PlainFormat.json)
    elif fmt is TableFormat.markdown:
        typer.echo(f"{title}\n\n{markdown_table(rows)}")
    else:
        typer.echo(format_table(rows, tuple(rows[0]), title=title))
