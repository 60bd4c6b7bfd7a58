"""``imcsim export-layers``: write a model's extracted layers as the CSV ``--layers`` reads."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from imcsim.cli import app
from imcsim.cli.common import InputDtypeOpt, InputShapeOpt, input_spec, warn_unmapped
from imcsim.tables import format_layer_table
from imcsim.zoo.workloads import load_workload

__all__ = ["export_layers_command"]


@app.command("export-layers")
def export_layers_command(
    model: Annotated[str, typer.Option("--model", "-m", help="Model, as for imcsim map --model.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="CSV file to write.")],
    shape: InputShapeOpt = None,
    input_dtype: InputDtypeOpt = None,
) -> None:
    """Extract a model's layers and write them as a layer table (unmapped operations as
    comments); imcsim map --layers FILE.csv maps exactly the same layers."""
    work = load_workload(model, None, None, input_spec(shape, input_dtype))
    warn_unmapped(work)
    comments = [f"layers of {work.name}, extracted by imcsim export-layers (one example)"]
    if work.coverage is not None:
        comments.append(f"coverage: {work.coverage.describe()}")
    comments += [f"unmapped: {u}" for u in work.unmapped]
    masked = [layer.name for layer in work.layers if layer.nonzero is not None]
    if masked:
        comments.append(f"pruned weights of {', '.join(masked)} are not part of this format")
    out.write_text(format_layer_table(work.layers, comments))
    typer.echo(f"wrote {len(work.layers)} layers of {work.name} to {out}")
