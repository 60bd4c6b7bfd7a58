"""``imcsim list``: what is built in (models, tables, mappers, chip presets)."""

from __future__ import annotations

import typer

from imcsim.cli import app
from imcsim.hardware import chip_presets
from imcsim.mappers import mapper_names
from imcsim.tables import table_names

__all__ = ["list_command"]


@app.command("list")
def list_command() -> None:
    """List built-in models, layer tables, mappers and chip presets."""
    from imcsim.zoo.models import MODELS

    typer.echo("models:   " + ", ".join(MODELS))
    typer.echo("tables:   " + ", ".join(table_names()))
    typer.echo("mappers:  " + ", ".join(mapper_names()))
    typer.echo("chips:    " + ", ".join(chip_presets()))
