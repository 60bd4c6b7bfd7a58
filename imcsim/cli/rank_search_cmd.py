"""``imcsim rank-search`` (one search, fine-tuned and evaluated) and ``rank-search-study``
(selectors × factorisations × budgets, resumable, markdown table and Pareto chart)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from imcsim.cli import app
from imcsim.cli.common import (
    ArrayOpt,
    ChipOpt,
    DeviceOpt,
    Format,
    GradCompressionOpt,
    GradRankOpt,
    WorkersOpt,
    emit,
    notice,
    parallel_config,
    run_device,
    split_list,
)
from imcsim.cli.conventions_opts import ConventionOpt, ConventionsOpt, conventions_from
from imcsim.cli.options import build_workload, workload_options
from imcsim.errors import ConfigError
from imcsim.hardware import build_chip
from imcsim.report import format_table

__all__ = ["factorization_errors_command", "rank_search_command", "rank_search_study_command"]

Opt = typer.Option
ModelOpt = Annotated[str, Opt("--model", "-m", help="Built-in 32x32 model with shipped weights.")]
MapperOpt = Annotated[str, Opt("--mapper", help="Mapper of R and dense layers (sdk, vw-sdk, im2col…); factor pairs use its low-rank pair mapper.")]
OneMapperOpt = Annotated[str | None, Opt("--mapper", help="Mapper of R and dense layers (default sdk; not with --conventions, which names R's mapper).")]
FactOpt = Annotated[str, Opt("--factorization", help="svd, drone or feature.")]
SelectorOpt = Annotated[str, Opt("--selector", help="uniform, energy, alds, bsr, bo or haloc.")]
CyclesOpt = Annotated[float | None, Opt("--budget-cycles", help="Budget: computing cycles per image on the chip.")]
ParamsOpt = Annotated[float | None, Opt("--budget-params", help="Budget: weights.")]
MacsOpt = Annotated[float | None, Opt("--budget-macs", help="Budget: MACs per image.")]
EnergyOpt = Annotated[float | None, Opt("--budget-energy", help="Budget: pJ per image (costed chip, e.g. --chip isaac).")]
KeepOpt = Annotated[float | None, Opt("--budget-keep", help="Budget: this fraction of the model's weights.")]
RankOpt = Annotated[int | None, Opt("--rank", help="uniform without a budget: this rank per group everywhere.")]
RatioOpt = Annotated[float | None, Opt("--ratio", help="uniform without a budget: this fraction of every full rank.")]
ThresholdOpt = Annotated[float | None, Opt("--energy", help="energy without a budget: kept fraction of sum sigma^2.")]
GroupsOpt = Annotated[str, Opt("--groups", help="Group counts, comma list (alds chooses among them; others take one).")]
SplitOpt = Annotated[str, Opt("--split", help="Group split axis: input or output.")]
SnapOpt = Annotated[bool, Opt("--snap", help="Only ranks at tile boundaries of the mapping.")]
ExcludeOpt = Annotated[str | None, Opt("--exclude", help="Comma list of layers to keep dense.")]
FinetuneOpt = Annotated[int, Opt("--finetune-epochs", help="Fine-tuning epochs after compression.")]
ImagesOpt = Annotated[int, Opt("--images", help="Test images for accuracy (0: skip accuracy).")]
CalOpt = Annotated[int, Opt("--calibration-images", help="Training images to fit factors and score networks.")]
HeldOpt = Annotated[int, Opt("--heldout-images", help="Other training images for the per-layer output errors.")]
SeedOpt = Annotated[int, Opt("--seed", help="Seed of image subsets, searches and fine-tuning.")]
SrEpochsOpt = Annotated[int, Opt("--stable-rank-epochs", help="Dense epochs with the stable-rank regulariser before the search.")]
SrWeightOpt = Annotated[float, Opt("--stable-rank-weight", help="Weight of the stable-rank regulariser.")]
BeamOpt = Annotated[int, Opt("--beam-width", help="bsr: assignments kept per layer.")]
LevelsOpt = Annotated[int, Opt("--beam-levels", help="bsr: options tried per layer.")]
TrialsOpt = Annotated[int, Opt("--trials", help="bo: sampler trials.")]
StepsOpt = Annotated[int, Opt("--haloc-steps", help="haloc: optimisation steps.")]
CheckpointOpt = Annotated[Path | None, Opt("--checkpoint", help="Weights file (default: the shipped checkpoint).")]


class StudyFormat(StrEnum):
    table = "table"
    json = "json"
    markdown = "markdown"


def _budget(cycles: float | None, params: float | None, macs: float | None,
            energy: float | None) -> Any:
    from imcsim.nn.compress.hwcost import Budget

    given = {k: v for k, v in (("cycles", cycles), ("params", params), ("macs", macs),
                               ("energy", energy)) if v is not None}
    if len(given) > 1:
        raise ConfigError(f"give one budget (got --budget-{' and --budget-'.join(given)})")
    return Budget(kind=next(iter(given)), value=next(iter(given.values()))) if given else None


def _ints(text: str, what: str) -> tuple[int, ...]:
    try:
        return tuple(int(t) for t in split_list(text, what))
    except ValueError:
        raise ConfigError(f"{what}: expected a comma list of integers (got {text!r})") from None


class _Bar:
    """A rich progress bar on stderr with one task per stage (search, fine-tuning…)."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.bar = Progress(TextColumn("{task.description:12s}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), console=Console(stderr=True), transient=False)
        self.tasks: dict[str, Any] = {}

    def __enter__(self) -> _Bar:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.tasks:
            self.bar.stop()

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.tasks:  # start on the first event: early errors stay one line
            self.bar.start()
        if stage not in self.tasks:
            self.tasks[stage] = self.bar.add_task(stage, total=total)
        self.bar.update(self.tasks[stage], completed=done, total=total)


def _base_spec(workload, chip, array, mapper, factorization, selector, groups, split, snap, exclude,
               finetune_epochs, images, calibration_images, heldout_images, seed,
               stable_rank_epochs, stable_rank_weight, search, checkpoint, **budget):
    from imcsim.studies.rank_search import RankSearchSpec

    plain = workload.plain
    if not plain and checkpoint is not None:
        raise ConfigError("--checkpoint loads a built-in model's imcsim checkpoint; give "
                          "--weights FILE for this workload")
    return RankSearchSpec(
        model=workload.model, workload=None if plain else workload,
        dataset=workload.data or "mnist5k" if plain else "mnist5k",
        data_dir=workload.data_dir if plain else None, chip=build_chip(chip, array), mapper=mapper, factorization=factorization,
        selector=selector, groups=_ints(groups, "--groups"), split=split, snap=snap,
        exclude=tuple(split_list(exclude, "--exclude")) if exclude else (),
        finetune_epochs=finetune_epochs, images=images, calibration_images=calibration_images,
        heldout_images=heldout_images, seed=seed, stable_rank_epochs=stable_rank_epochs,
        stable_rank_weight=stable_rank_weight, search=search, checkpoint=checkpoint, **budget,
    )


def _search_config(rank, ratio, energy, beam_width, beam_levels, trials, haloc_steps):
    from imcsim.nn.compress.selectors import SearchConfig

    return SearchConfig(rank=rank, ratio=ratio, energy=energy, beam_width=beam_width,
                        beam_levels=beam_levels, trials=trials, haloc_steps=haloc_steps)


LAYER_COLUMNS = ("name", "factorized", "groups", "rank", "full_rank", "params", "cycles",
                 "energy_pj", "output_error")


@app.command("rank-search")
@workload_options()
def rank_search_command(
    workload: Any, array: ArrayOpt = None, chip: ChipOpt = None,
    mapper: OneMapperOpt = None, factorization: FactOpt = "svd", selector: SelectorOpt = "uniform",
    budget_cycles: CyclesOpt = None, budget_params: ParamsOpt = None, budget_macs: MacsOpt = None,
    budget_energy: EnergyOpt = None, budget_keep: KeepOpt = None, rank: RankOpt = None,
    ratio: RatioOpt = None, energy: ThresholdOpt = None, groups: GroupsOpt = "1",
    split: SplitOpt = "input", snap: SnapOpt = False, exclude: ExcludeOpt = None,
    finetune_epochs: FinetuneOpt = 0, images: ImagesOpt = 1000, calibration_images: CalOpt = 128,
    heldout_images: HeldOpt = 128, seed: SeedOpt = 0, stable_rank_epochs: SrEpochsOpt = 0,
    stable_rank_weight: SrWeightOpt = 0.1, beam_width: BeamOpt = 3, beam_levels: LevelsOpt = 6,
    trials: TrialsOpt = 50, haloc_steps: StepsOpt = 150, checkpoint: CheckpointOpt = None,
    state: Annotated[Path | None, Opt("--state", help="Directory for resumable state (rerun to continue).")] = None,
    workers: WorkersOpt = 1, grad_compression: GradCompressionOpt = "none",
    grad_rank: GradRankOpt = 4, conventions: ConventionsOpt = None,
    convention: ConventionOpt = None,
    fmt: Annotated[Format, Opt("--format", "-f", help="table or json.")] = Format.table,
    device: DeviceOpt = "cpu",
) -> None:
    """Choose a rank (and group count) per layer within a budget on the chip, then
    optionally fine-tune; per-layer ranks, params, cycles, output errors and accuracy.

    "float_accuracy" is the dense model's top-1 accuracy on the same test images,
    "accuracy" the compressed model's after fine-tuning.
    """
    run_device(device)
    from imcsim.studies.rank_search import run_rank_search

    parallel = parallel_config(workers, grad_compression, grad_rank)
    if finetune_epochs == 0 and (workers != 1 or grad_compression != "none"):
        raise ConfigError("--workers/--grad-compression has no effect with --finetune-epochs 0; "
                          "drop them")
    conv = conventions_from(conventions, convention)
    if conv is not None and mapper is not None:
        raise ConfigError("give --mapper or --conventions, not both (the conventions name "
                          "R's mapper: r_mapper)")
    mapper = mapper or "sdk"
    search = _search_config(rank, ratio, energy, beam_width, beam_levels, trials, haloc_steps)
    spec = _base_spec(workload, chip, array, mapper, factorization, selector, groups, split, snap,
                      exclude, finetune_epochs, images, calibration_images, heldout_images, seed,
                      stable_rank_epochs, stable_rank_weight, search, checkpoint,
                      budget=_budget(budget_cycles, budget_params, budget_macs, budget_energy),
                      keep=budget_keep, conventions=conv)
    with _Bar() as bar:
        record = run_rank_search(spec, state, bar, parallel=parallel).record
    out = {"layers": record["layers"], "total": record["total"]}
    how = f"mapper {mapper}" if conv is None else f"conventions {conv.name}"
    title = (f"{spec.model} on {spec.chip.array.label}, {how}, {factorization} + {selector}"
             f"{' (snapped)' if snap else ''}")
    table = format_table(record["layers"], LAYER_COLUMNS, title=title)
    totals = "\n".join(f"{k:26s} {v}" for k, v in record["total"].items())
    emit(out, f"{table}\n\n{totals}", fmt)


@app.command("rank-search-study")
def rank_search_study_command(
    out: Annotated[Path, Opt("--out", "-o", help="JSONL file of finished runs (rerun to resume).")],
    model: ModelOpt = "resnet20", array: ArrayOpt = "128x128", chip: ChipOpt = None,
    mapper: MapperOpt = "vw-sdk",
    selectors: Annotated[str, Opt("--selectors", help="Comma list of selectors.")] = "uniform,energy,alds,bsr,bo,haloc",
    factorizations: Annotated[str, Opt("--factorizations", help="Comma list of factorizations.")] = "svd,drone,feature",
    budgets_cycles: Annotated[str, Opt("--budgets-cycles", help="Comma list of cycle budgets.")] = "5400,4800",
    snap: Annotated[str, Opt("--snap", help="off, on or both.")] = "off",
    groups: GroupsOpt = "1,2,4", finetune_epochs: FinetuneOpt = 1, images: ImagesOpt = 1000,
    calibration_images: CalOpt = 128, heldout_images: HeldOpt = 128, seed: SeedOpt = 0,
    plot: Annotated[Path | None, Opt("--plot", help="Write the accuracy-vs-cycles chart (PNG).")] = None,
    fmt: Annotated[StudyFormat, Opt("--format", "-f", help="table, json or markdown.")] = StudyFormat.markdown,
    device: DeviceOpt = "cpu",
) -> None:
    """Selectors x factorizations at several cycle budgets: accuracy before and after
    fine-tuning, cycles used; resumable; optional Pareto chart."""
    run_device(device)
    from imcsim.nn.compress.hwcost import Budget
    from imcsim.nn.compress.selectors import SearchConfig
    from imcsim.studies.outputs import check_output_file
    from imcsim.studies.rank_search import RankSearchResult
    from imcsim.studies.rank_search_study import (
        grid_specs,
        markdown_table,
        plot_accuracy_vs_cycles,
        run_grid,
    )

    if plot is not None:  # before hours of work, not after
        check_output_file(plot, "--plot")
    snaps = {"off": (False,), "on": (True,), "both": (False, True)}.get(snap)
    if snaps is None:
        raise ConfigError(f"--snap must be off, on or both (got {snap!r})")
    budgets = [Budget(kind="cycles", value=v) for v in _ints(budgets_cycles, "--budgets-cycles")]
    base = _base_spec(build_workload(None, model=model), chip, array, mapper, "svd", "uniform", groups, "input", False, None,
                      finetune_epochs, images, calibration_images, heldout_images, seed, 0, 0.1,
                      SearchConfig(), None)
    specs = grid_specs(base, split_list(selectors, "--selectors"),
                       split_list(factorizations, "--factorizations"), budgets, snaps)
    with _Bar() as bar:
        records = run_grid(specs, out, bar, lambda _r, done, total: bar("runs", done, total),
                           on_notice=notice)
    if plot is not None:
        ax = plot_accuracy_vs_cycles(records)
        ax.figure.savefig(plot, dpi=150)
    rows = [row for r in records for row in RankSearchResult(r, None).to_records()]
    if fmt is StudyFormat.markdown:
        typer.echo(markdown_table(records))
    elif fmt is StudyFormat.json:
        emit({"runs": records}, "", Format.json)
    else:
        cols = ("selector", "factorization", "snap", "budget", "cycles", "params",
                "accuracy_before_finetune", "accuracy")
        typer.echo(format_table(rows, cols, title=f"{model} rank search, {mapper}"))


@app.command("factorization-errors")
def factorization_errors_command(
    model: ModelOpt = "resnet20",
    rank_fraction: Annotated[float, Opt("--rank-fraction", help="Rank of every layer as a fraction of its full rank.")] = 0.25,
    calibration_images: CalOpt = 128, heldout_images: HeldOpt = 128, seed: SeedOpt = 0,
    fmt: Annotated[StudyFormat, Opt("--format", "-f", help="table, json or markdown.")] = StudyFormat.table,
) -> None:
    """Per-layer output error of svd, drone and feature on held-out activations at the same
    rank, next to how low-rank each layer's inputs are."""
    from imcsim.studies.rank_search import factorization_errors

    rows = factorization_errors(model, rank_fraction, calibration_images, heldout_images, seed)
    if fmt is StudyFormat.json:
        emit({"rows": rows}, "", Format.json)
        return
    cols = ("layer", "inputs", "input_rank90", "rank", "full_rank", "svd", "drone", "feature")
    if fmt is StudyFormat.markdown:
        lines = ["| " + " | ".join(cols) + " |", "|---|" + "---:|" * (len(cols) - 1)]
        lines += ["| " + " | ".join(f"{r[c]:.3f}" if isinstance(r[c], float) else str(r[c])
                                    for c in cols) + " |" for r in rows]
        typer.echo("\n".join(lines))
    else:
        typer.echo(format_table(rows, cols, title=f"{model}: held-out output error at "
                                f"{rank_fraction:g} of the full rank"))
