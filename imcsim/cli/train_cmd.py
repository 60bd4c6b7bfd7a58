"""``imcsim train``: train a built-in model on the bundled MNIST subset (or CIFAR), resumably."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from imcsim.cli import app
from imcsim.cli.common import (
    DeviceOpt,
    GradCompressionOpt,
    GradRankOpt,
    PlainFormat,
    PlainFormatOpt,
    WorkersOpt,
    emit,
    on_interrupt,
    parallel_config,
    progress_bar,
    run_device,
)
from imcsim.cli.options import workload_options
from imcsim.errors import ConfigError

__all__ = ["train_command"]

def _dataset_name(dataset: str | None, data_dir: Path | None) -> str:
    if dataset is not None:
        return dataset
    return "cifar10" if data_dir is not None else "mnist5k"


@app.command("train")
@workload_options()
def train_command(
    workload: Any,
    epochs: Annotated[int, typer.Option("--epochs", help="Passes over the training set.")] = 8,
    seed: Annotated[int, typer.Option("--seed", help="Initialisation, shuffling, augmentation.")] = 0,
    out: Annotated[str | None, typer.Option("--out", "-o", help="Checkpoint file to write.")] = None,
    dataset: Annotated[
        str | None, typer.Option("--dataset", help="mnist5k (default), cifar10 or cifar100.")
    ] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Images per step.")] = 64,
    lr: Annotated[float, typer.Option("--lr", help="Peak learning rate.")] = 0.05,
    optimizer: Annotated[
        str, typer.Option("--optimizer", help="sgd (Nesterov) or adamw (for transformers).")
    ] = "sgd",
    weight_decay: Annotated[
        float, typer.Option("--weight-decay", help="Weight decay (L2 for sgd, decoupled for adamw).")
    ] = 5e-4,
    warmup_steps: Annotated[
        int, typer.Option("--warmup-steps", help="Linear warm-up steps before the cosine decay.")
    ] = 30,
    train_images: Annotated[
        int | None,
        typer.Option("--train-images", help="Use a seeded subset of N training images that "
                     "keeps every class's share."),
    ] = None,
    restart: Annotated[
        bool, typer.Option("--restart", help="Ignore a saved training state and start over.")
    ] = False,
    workers: WorkersOpt = 1,
    grad_compression: GradCompressionOpt = "none",
    grad_rank: GradRankOpt = 4,
    grad_warmup: Annotated[int, typer.Option(
        "--grad-warmup-steps", help="First steps sent uncompressed.")] = 10,
    grad_refresh: Annotated[int, typer.Option(
        "--grad-refresh-steps", help="GreedyLore: steps between basis refreshes.")] = 200,
    grad_side: Annotated[str, typer.Option(
        "--grad-side", help="GreedyLore basis side: short (the paper's) or long.")] = "short",
    fmt: PlainFormatOpt = PlainFormat.table,
    device: DeviceOpt = "cpu",
) -> None:
    """Train a model (progress bar, seeded); Ctrl-C or a kill leaves OUT.state, and the
    same command resumes from it.

    With --workers N the run is data-parallel on N CPU processes (or on torchrun's), the
    gradients exchanged as --grad-compression says; the output counts the bytes."""
    run_device(device)
    from imcsim.studies.outputs import check_output_file, exclusive
    from imcsim.train.loop import TrainConfig
    from imcsim.zoo.models import get_spec

    user = not workload.plain
    if user and dataset is not None:
        raise ConfigError("--dataset names built-in data; give --data for this workload")
    model, data_dir = workload.model, workload.data_dir
    name = _dataset_name(dataset or workload.data, data_dir)
    config = TrainConfig(epochs=epochs, seed=seed, batch_size=batch_size, lr=lr,
                         optimizer=optimizer, weight_decay=weight_decay,
                         warmup_steps=warmup_steps)
    if grad_warmup < 0 or grad_refresh < 1:
        raise ConfigError(f"--grad-warmup-steps must be >= 0 and --grad-refresh-steps >= 1 "
                          f"(got {grad_warmup}, {grad_refresh})")
    parallel = parallel_config(workers, grad_compression, grad_rank, warmup_steps=grad_warmup,
                               refresh_every_steps=grad_refresh, side=grad_side)
    default_out = f"{Path(model.rpartition(':')[0] or model).stem}-trained.pt" if user \
        else f"{model}-{name}.pt"
    target = check_output_file(out if out is not None else default_out, "--out")
    state = target.with_name(target.name + ".state")
    check_output_file(state, "training state")
    if not user:
        get_spec(model)  # an unknown model fails before any data is read
    target.parent.mkdir(parents=True, exist_ok=True)
    with exclusive(target, "--out checkpoint"):
        if restart and state.exists():
            state.unlink()
        with on_interrupt(lambda: _resume_hint(state)):
            record = _train_user(workload, config, train_images, target, state, parallel) \
                if user else _train(model, name, data_dir, config, train_images, target, state,
                                    parallel)
    if record is None:  # torchrun: rank 0 reports and saves
        return
    record.update(_parallel_record(record.pop("result"), grad_compression, grad_rank))
    table = "\n".join(f"{k:18s} {v}" for k, v in record.items())
    emit(record, table, fmt)


def _resume_hint(state: Path) -> str:
    if state.exists():
        return f"training state saved in {state}; rerun the same command to resume"
    return "no training state was saved yet"


def _subset(labels, n: int | None, seed: int, what: str):
    """Indices of a stratified seeded subset of ``n`` (all when ``n`` is None)."""
    from imcsim.zoo.data import stratified_subset

    if n is None:
        return None
    if not 1 <= n <= len(labels):
        raise ConfigError(f"--train-images {n}: {what} has {len(labels)} training images "
                          f"(give 1..{len(labels)})")
    return stratified_subset(labels.numpy(), n, seed)


def _parallel_record(result, grad_compression: str, grad_rank: int) -> dict:
    """The data-parallel part of the record: workers, hook, bytes and wall time."""
    ratio = result.bytes_uncompressed / result.bytes_communicated \
        if result.bytes_communicated else None
    return {"workers": result.workers, "grad_compression": grad_compression,
            "grad_rank": None if grad_compression == "none" else grad_rank,
            "bytes_communicated": result.bytes_communicated,
            "bytes_uncompressed": result.bytes_uncompressed,
            "compression_ratio": None if ratio is None else round(ratio, 2),
            "wall_time_s": round(result.wall_time_s, 1)}


def _train(model: str, name: str, data_dir: Path | None, config, train_images: int | None,
           out: Path, state: Path, parallel) -> dict | None:
    """Load data, train (resumably), evaluate, write the checkpoint; then drop the state."""
    from imcsim.train.loop import evaluate, train
    from imcsim.zoo.checkpoints import load_data, round_to_half, save_checkpoint
    from imcsim.zoo.models import build_model

    data = load_data(model, name, data_dir)
    net = build_model(model, num_classes=data.num_classes, seed=config.seed)
    chosen = _subset(data.train_labels, train_images, config.seed, name)
    x, y = (data.train_images, data.train_labels) if chosen is None else (
        data.train_images[chosen], data.train_labels[chosen])
    with _progress_bar(f"train {model} on {name}") as report:
        result = train(net, x, y, config, state_path=state, progress=report, keep_state=True,
                       parallel=parallel)
    if int(os.environ.get("RANK", "0")) != 0:  # torchrun: rank 0 reports and saves
        return None
    accuracy = evaluate(round_to_half(net), data.test_images, data.test_labels)
    command = "imcsim " + shlex.join(sys.argv[1:]) if sys.argv[1:2] == ["train"] else ""
    save_checkpoint(net, out, model_name=model, dataset=name, num_classes=data.num_classes,
                    float_accuracy=accuracy, epochs=config.epochs, seed=config.seed,
                    command=command)
    state.unlink(missing_ok=True)  # the weights are safe: the resume state has done its job
    return {"model": model, "dataset": data.description, "train_images": len(x),
            "epochs": config.epochs, "seed": config.seed,
            "steps": result.steps, "resumed_from_step": result.resumed_from_step,
            "final_loss": result.final_loss, "float_accuracy": accuracy, "checkpoint": str(out),
            "result": result}


def _train_user(workload: Any, config, train_images: int | None, out: Path, state: Path,
                parallel) -> dict | None:
    """Fine-tune a user's model (from --weights, else its factory's initialisation) on its
    data, resumably; write its state dict (what --weights reads) to ``out``."""
    import torch

    from imcsim.train.loop import train
    from imcsim.zoo.workload import load_workload

    loaded = load_workload(workload)
    data = loaded.require_data("train")
    if not loaded.metric.labels:
        raise ConfigError(f"train fine-tunes a classifier (cross-entropy on class labels); "
                          f"metric {loaded.metric.name} has none")
    if data.train_images.dim() != 4:
        config = config.replace(shift_px=0)  # pixel shifts apply to images only
    chosen = _subset(data.train_labels, train_images, config.seed, data.name)
    x, y = (data.train_images, data.train_labels) if chosen is None else (
        data.train_images[chosen], data.train_labels[chosen])
    with _progress_bar(f"train {loaded.name} on {data.name}") as report:
        result = train(loaded.model, x, y, config, state_path=state, progress=report,
                       keep_state=True, parallel=parallel)
    if int(os.environ.get("RANK", "0")) != 0:
        return None
    value = loaded.float_metric(data.test_images, data.test_labels)
    torch.save(loaded.model.state_dict(), out)
    state.unlink(missing_ok=True)
    return {"model": loaded.name, "weights_from": loaded.weights, "dataset": data.description,
            "train_images": len(x), "epochs": config.epochs, "seed": config.seed,
            "steps": result.steps, "resumed_from_step": result.resumed_from_step,
            "final_loss": result.final_loss, "metric_name": loaded.metric.name,
            "float_metric": value, "weights": str(out), "result": result}


class _progress_bar:
    """A rich progress bar on stderr, fed by ``imcsim.train.loop`` progress events."""

    def __init__(self, title: str) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn

        self.title = title
        self._context = progress_bar(TextColumn("{task.description}"), BarColumn(),
                                     MofNCompleteColumn(), TimeRemainingColumn(),
                                     TextColumn("{task.fields[info]}"))
        self.task = None

    def __enter__(self):
        self.bar = self._context.__enter__()
        return self

    def __exit__(self, *exc: object) -> bool | None:
        return self._context.__exit__(*exc)

    def __call__(self, event) -> None:
        if self.task is None:
            self.task = self.bar.add_task(self.title, total=event.total_steps, info="",
                                          completed=event.step - 1)
        info = f"epoch {event.epoch} loss {event.loss:.3f} lr {event.lr:.4f}"
        self.bar.update(self.task, completed=event.step, info=info)
