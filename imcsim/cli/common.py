"""Options and helpers shared by the verbs."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated, Any

import typer

from imcsim.errors import ConfigError


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model", "-m",
        help="Built-in model (resnet20, wrn16-4, vgg-cifar, tiny-vit, resnet18, vgg13), "
        "FILE.py:FACTORY, module.path:FACTORY, or timm:/torchvision:/transformers:NAME "
        "(random weights, never downloaded).",
    ),
]
InputShapeOpt = Annotated[
    str | None,
    typer.Option("--input-shape", help="Example input shape for --model, e.g. 1,3,224,224 "
                 "(default: the factory module's INPUT_SHAPE or the model's own)."),
]
MatmulOpt = Annotated[
    str | None,
    typer.Option("--matmul", help="Where activation x activation products (QK^T, A.V) run: "
                 "digital or crossbar (written per input); default: the chip's [matmul] section."),
]
LayersOpt = Annotated[
    str | None, typer.Option("--layers", help="CSV layer table (file, or shipped name: vgg13, resnet18, cnn8).")
]
ArrayOpt = Annotated[
    str | None, typer.Option("--array", "-a", help="Array ROWSxCOLS, e.g. 128x128 (overrides the chip's).")
]
ChipOpt = Annotated[
    str | None,
    typer.Option("--chip", help="Chip preset or TOML file (array bits, precisions, periphery)."),
]
CellBitsOpt = Annotated[int | None, typer.Option("--cell-bits", help="Bits per cell.")]
WeightBitsOpt = Annotated[int | None, typer.Option("--weight-bits", help="Bits per weight.")]
FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="Output format.")]


def input_shape(text: str | None) -> tuple[int, ...] | None:
    """Parsed ``--input-shape`` (``None`` when not given)."""
    from imcsim.studies.user_models import parse_shape

    return None if text is None else parse_shape(text)


def warn_unmapped(work: object) -> None:
    """One yellow line on stderr when something ran that is not mapped (or MACs disagree)."""
    unmapped, coverage = getattr(work, "unmapped", ()), getattr(work, "coverage", None)
    if not unmapped and (coverage is None or coverage.difference == 0):
        return
    parts = [coverage.describe()] if coverage is not None else []
    if unmapped:
        parts.append(f"{len(unmapped)} not mapped: {'; '.join(unmapped)}")
    typer.secho(f"imcsim: warning: {' | '.join(parts)}", fg="yellow", err=True)


def split_list(text: str, what: str) -> list[str]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise ConfigError(f"{what}: empty list {text!r}")
    return items


def emit(data: dict[str, Any], table: str, fmt: Format, csv_text: str | None = None) -> None:
    """Print a result as a table, one JSON object, or CSV."""
    if fmt is Format.json:
        typer.echo(json.dumps(data, indent=2, default=str))
    elif fmt is Format.csv:
        if csv_text is None:
            raise ConfigError("--format csv is not available for this command")
        typer.echo(csv_text, nl=False)
    else:
        typer.echo(table)
