"""``imcsim train``: train a built-in model on the bundled MNIST subset (or CIFAR), resumably."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

from imcsim.cli import app
from imcsim.cli.common import Format, FormatOpt, emit
from imcsim.errors import ConfigError

DataDirOpt = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Directory with the CIFAR python batches (for cifar10/100)."),
]


def _dataset_name(dataset: str | None, data_dir: Path | None) -> str:
    if dataset is not None:
        return dataset
    return "cifar10" if data_dir is not None else "mnist5k"


@app.command("train")
def train_command(
    model: Annotated[str, typer.Option("--model", "-m", help="Built-in 32x32 model.")] = "resnet20",
    epochs: Annotated[int, typer.Option("--epochs", help="Passes over the training set.")] = 8,
    seed: Annotated[int, typer.Option("--seed", help="Initialisation, shuffling, augmentation.")] = 0,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Checkpoint file to write.")] = None,
    dataset: Annotated[
        str | None, typer.Option("--dataset", help="mnist5k (default), cifar10 or cifar100.")
    ] = None,
    data_dir: DataDirOpt = None,
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
        int | None, typer.Option("--train-images", help="Use only the first N training images.")
    ] = None,
    restart: Annotated[
        bool, typer.Option("--restart", help="Ignore a saved training state and start over.")
    ] = False,
    fmt: FormatOpt = Format.table,
) -> None:
    """Train a model (progress bar, seeded); a killed run resumes from OUT.state when rerun."""
    from imcsim.studies.models import build_model
    from imcsim.studies.train import TrainConfig, evaluate, train
    from imcsim.studies.zoo import load_data, round_to_half, save_checkpoint

    if train_images is not None and train_images < 1:
        raise ConfigError(f"--train-images must be >= 1 (got {train_images})")
    name = _dataset_name(dataset, data_dir)
    config = TrainConfig(epochs=epochs, seed=seed, batch_size=batch_size, lr=lr,
                         optimizer=optimizer, weight_decay=weight_decay,
                         warmup_steps=warmup_steps)
    data = load_data(model, name, data_dir)
    out = out if out is not None else Path(f"{model}-{name}.pt")
    state = out.with_name(out.name + ".state")
    if restart and state.exists():
        state.unlink()
    net = build_model(model, num_classes=data.num_classes, seed=seed)
    x, y = data.train_images[:train_images], data.train_labels[:train_images]
    with _progress_bar(f"train {model} on {name}") as report:
        result = train(net, x, y, config, state_path=state, progress=report)
    accuracy = evaluate(round_to_half(net), data.test_images, data.test_labels)
    command = "imcsim " + shlex.join(sys.argv[1:]) if sys.argv[1:2] == ["train"] else ""
    save_checkpoint(net, out, model_name=model, dataset=name, num_classes=data.num_classes,
                    float_accuracy=accuracy, epochs=epochs, seed=seed, command=command)
    record = {"model": model, "dataset": data.description, "train_images": len(x),
              "epochs": epochs, "seed": seed,
              "steps": result.steps, "resumed_from_step": result.resumed_from_step,
              "final_loss": result.final_loss, "float_accuracy": accuracy, "checkpoint": str(out)}
    table = "\n".join(f"{k:18s} {v}" for k, v in record.items())
    emit(record, table, fmt)


class _progress_bar:
    """A rich progress bar on stderr, fed by ``imcsim.studies.train`` progress events."""

    def __init__(self, title: str) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self.title = title
        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeRemainingColumn(), TextColumn("{task.fields[info]}"),
                            console=Console(stderr=True), transient=False)
        self.task = None

    def __enter__(self):
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()

    def __call__(self, event) -> None:
        if self.task is None:
            self.task = self.bar.add_task(self.title, total=event.total_steps, info="",
                                          completed=event.step - 1)
        info = f"epoch {event.epoch} loss {event.loss:.3f} lr {event.lr:.4f}"
        self.bar.update(self.task, completed=event.step, info=info)
