"""``imcsim sweep``, ``imcsim run`` and ``imcsim plot``: studies, their records and charts."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn

from imcsim.cli import app
from imcsim.cli.common import (
    DeviceOpt,
    notice,
    on_interrupt,
    parse_float,
    parse_int,
    progress_bar,
    run_device,
    split_list,
)
from imcsim.cli.options import workload_options
from imcsim.errors import ConfigError
from imcsim.plotting import CHARTS
from imcsim.report import format_table
from imcsim.studies.executors import make_executor
from imcsim.studies.mission import run_extras
from imcsim.studies.outputs import check_output_dir, exclusive
from imcsim.studies.recipes import load_recipe
from imcsim.studies.results import load_results
from imcsim.studies.sweep import RESULTS, SweepSpec, plan, sweep

__all__ = ["SUMMARY_COLUMNS", "plot_command", "run_command", "run_with_progress", "summary",
           "sweep_command", "write_outputs"]

SUMMARY_COLUMNS = ("model", "compression", "keep", "chip", "array", "mapper", "adc_bits",
                   "cycles", "speedup", "utilization", "latency_ns", "energy_pj", "accuracy")


def run_with_progress(spec: SweepSpec, out: str | Path, backend: str, workers: int | None,
                      address: str | None) -> list[dict]:
    """Run a sweep with a rich progress bar (points done, rate, ETA) on stderr.

    Everything is checked before the first point runs: the output folder (writable, not
    in use by another sweep), the backend, every input file.  Ctrl-C stops the workers
    and keeps every finished point; rerunning the same command resumes.
    """
    folder = check_output_dir(out, "--out")
    make_executor(backend, workers=workers, address=address)  # bad backend: fail before the bar
    with exclusive(folder, "--out folder"):  # fail at once if another sweep writes here
        work = plan(spec, folder)
    for line in work.notices:
        notice(line)
    columns = (TextColumn("[bold]sweep"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[rate]} pt/s"), TimeRemainingColumn())
    results = folder / RESULTS

    def hint() -> str:
        return (f"finished points are saved in {results}; rerun the same command to resume")

    with on_interrupt(hint), progress_bar(*columns) as progress:
        task = progress.add_task("sweep", total=len(work.todo), rate="-")

        def advance(_record: dict, _done: int, _all: int) -> None:
            progress.advance(task)
            elapsed = progress.tasks[0].elapsed or 1e-9
            progress.update(task, rate=f"{progress.tasks[0].completed / elapsed:.1f}")

        return sweep(spec, folder, backend=backend, workers=workers, address=address,
                     on_record=advance)


@contextmanager
def _bar(label: str, total: int):
    """A progress bar on stderr (nothing when there is nothing to count); yields the
    ``on_record(record, done, total)`` callback that moves it."""
    if not total:
        yield None
        return
    columns = (TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn(),
               TimeRemainingColumn())
    with progress_bar(*columns) as progress:
        task = progress.add_task(label, total=total)
        yield lambda _record, done, _all: progress.update(task, completed=done)


def summary(records: list[dict]) -> str:
    return format_table([{c: r.get(c) for c in SUMMARY_COLUMNS} for r in records],
                        SUMMARY_COLUMNS)


def write_outputs(records: list[dict], out: Path, charts: tuple[str, ...]) -> list[Path]:
    """summary.txt / summary.csv and the requested charts that the records support."""
    import csv
    import io

    from imcsim.plotting import render_charts

    (out / "summary.txt").write_text(summary(records) + "\n")
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=SUMMARY_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(records)
    (out / "summary.csv").write_text(buffer.getvalue())
    return render_charts(records, out, charts)


def axis(text: str | None, what: str, cast=str) -> tuple | None:
    """A comma list option as a tuple (``none`` → None for the bit axes)."""
    if text is None:
        return None
    parse = {int: parse_int, float: parse_float}.get(cast, lambda v, _what: v)
    return tuple(parse(v, what) if v.lower() != "none" or cast is str else None
                 for v in split_list(text, what))


@app.command("sweep")
@workload_options(default_model=None)
def sweep_command(
    workload: Any,
    out: Annotated[str, typer.Option("--out", "-o", help="Output directory (results.jsonl).")],
    models: Annotated[str | None, typer.Option("--models", help="Comma list of built-in models (or table:NAME); --model for one model of yours.")] = None,
    arrays: Annotated[str, typer.Option("--arrays", "-a", help="Comma list ROWSxCOLS.")] = "64x64,128x128,256x256,512x512",
    mappers: Annotated[str, typer.Option("--mappers", help="Comma list of mappers.")] = "im2col,sdk,sdk-unconstrained,vw-sdk,sdk-rect",
    compressions: Annotated[str, typer.Option("--compressions", help="Comma list: dense and/or compression methods.")] = "dense",
    keep: Annotated[str | None, typer.Option("--keep", help="Comma list of parameter fractions kept (compressed points; default 0.5).")] = None,
    chips: Annotated[str | None, typer.Option("--chips", help="Comma list of chip presets (cost, bit slicing).")] = None,
    adc_bits: Annotated[str | None, typer.Option("--adc-bits", help="Comma list of ADC bits.")] = None,
    cell_bits: Annotated[str | None, typer.Option("--cell-bits", help="Comma list of cell bits.")] = None,
    accuracy: Annotated[bool, typer.Option("--accuracy", help="Also measure on-chip accuracy (slow).")] = False,
    images: Annotated[int, typer.Option("--images", help="Test images per accuracy point.")] = 200,
    backend: Annotated[str, typer.Option("--backend", help="local or ray.")] = "local",
    address: Annotated[str | None, typer.Option("--address", help="Ray cluster address (default: start a local Ray).")] = None,
    workers: Annotated[int | None, typer.Option("--workers", help="Worker processes / Ray CPUs.")] = None,
    charts: Annotated[bool, typer.Option("--charts/--no-charts", help="Render PNG charts into --out.")] = False,
) -> None:
    """Sweep models × arrays × mappers × compression × chips; append one JSON record per point.

    Rerunning the same command after a kill completes the missing points only.
    """
    models, workload = _models(models, workload)
    fields = {"models": models, "workload": workload, "arrays": axis(arrays, "--arrays"),
              "mappers": axis(mappers, "--mappers"), "compressions": axis(compressions, "--compressions"),
              "keep": axis(keep, "--keep", float), "chips": axis(chips, "--chips"),
              "adc_bits": axis(adc_bits, "--adc-bits", int), "cell_bits": axis(cell_bits, "--cell-bits", int),
              "accuracy": accuracy, "images": images}
    spec = SweepSpec(**{k: v for k, v in fields.items() if v is not None})
    records = run_with_progress(spec, out, backend, workers, address)
    typer.echo(summary(records))
    if charts:
        for path in write_outputs(records, Path(out), CHARTS):
            typer.echo(f"chart: {path}")
    typer.echo(f"{len(records)} records in {Path(out) / RESULTS}")


def _models(models: str | None, workload: Any) -> tuple[tuple[str, ...] | None, Any]:
    """The models axis and the workload: ``--models a,b`` (built-ins, tables), or ``--model``
    (one model of yours with its weights and data; a comma list of built-ins or layer
    tables still works)."""
    if workload is None:
        return axis(models or "resnet20", "--models"), None
    if models is not None:
        raise ConfigError("give --model (one workload) or --models (a list), not both")
    from imcsim.zoo.models import MODELS

    names = axis(workload.model, "--model")
    plain = [n for n in names if n in MODELS or n.startswith("table:") or n.endswith(".csv")]
    if workload == type(workload)(model=workload.model) and plain == list(names):
        return names, None  # built-ins and layer tables: a models axis
    if workload.plain:
        return (workload.model,), None
    return (workload.model,), workload


@app.command("run")
def run_command(
    recipe: Annotated[str, typer.Argument(help="Recipe name (mappings/recipes) or TOML file.")] = "default",
    out: Annotated[str | None, typer.Option("--out", "-o", help="Override the recipe's output directory.")] = None,
    data_dir: Annotated[Path | None, typer.Option("--data-dir", help="date2025 recipes: CIFAR python batches; ResNet-20 runs on CIFAR-10, WRN-16-4 on CIFAR-100.")] = None,
    device: DeviceOpt = "cpu",
) -> None:
    """Run a whole study from a recipe; with no argument, the built-in default study.

    Rerunning after a kill completes what is missing (sweep points, fine-tuned variants).
    """
    run_device(device)
    study = load_recipe(recipe)
    if data_dir is not None and study.date2025 is None:
        raise ConfigError(f"--data-dir applies to date2025 recipes; {study.name!r} is a sweep")
    target = check_output_dir(out if out is not None else study.out,
                              "--out" if out is not None else f"recipe {recipe} out")
    if study.date2025 is not None:
        spec = study.date2025 if data_dir is None else study.date2025.with_cifar(data_dir)
        _run_date2025(spec, target, study.charts)
        return
    records = run_with_progress(study.sweep, target, study.backend, study.workers, None)
    typer.echo(summary(records))
    charts = write_outputs(records, target, study.charts)
    total = len(study.compression.methods) if study.compression is not None else 0
    with _bar("compression", total) as advance:
        extras = run_extras(study.charts, study.compression, study.pictures, target, records,
                            on_record=advance)
    if extras.table:
        typer.echo("\n" + extras.table)
    for path in charts + extras.charts:
        typer.echo(f"chart: {path}")
    typer.echo(f"{len(records)} records in {target / RESULTS}; table in {target / 'summary.txt'}")
    typer.echo("\nsummary\n" + "\n".join(f"  {line}" for line in extras.highlights))


def _run_date2025(spec, target: Path, charts: tuple[str, ...]) -> None:
    from imcsim.studies.date2025 import run_date2025
    from imcsim.studies.date2025_claims import claims_markdown

    def hint() -> str:
        return (f"fine-tuned variants and mapped points are saved in {target}; "
                "rerun the same command to resume")

    with exclusive(target, "--out folder"), on_interrupt(hint):
        claims = run_date2025(spec, target, charts,
                              progress=lambda text: typer.echo(text, err=True))
    typer.echo(claims_markdown(claims))
    typer.echo(f"points in {target / 'points.jsonl'}; claims in {target / 'claims.md'}")


@app.command("plot")
def plot_command(
    results: Annotated[Path, typer.Argument(help="A results.jsonl file (or the directory holding it).")],
    out: Annotated[str | None, typer.Option("--out", "-o", help="Where the PNGs go (default: beside results).")] = None,
) -> None:
    """Render every chart a results file supports (records that fail validation are
    left out, each with a one-line notice)."""
    from imcsim.plotting import render_charts

    path = results / RESULTS if results.is_dir() else results
    if not path.exists():
        raise ConfigError(f"results file {str(path)!r} does not exist")
    target = check_output_dir(out if out is not None else path.parent, "--out")
    loaded = load_results(path, accept_unsealed=True)
    for line in loaded.summary():
        notice(line)
    records = list(loaded.records.values())
    if not records:
        raise ConfigError(f"results file {str(path)!r} holds no valid records")
    for chart in render_charts(records, target):
        typer.echo(f"chart: {chart}")
