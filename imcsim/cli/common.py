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
    str | None, typer.Option("--model", "-m", help="Built-in model: resnet20, wrn16-4, vgg-cifar, resnet18, vgg13.")
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
