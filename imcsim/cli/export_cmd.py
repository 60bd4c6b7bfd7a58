"""``imcsim export-layers``: write a model's extracted layers as the CSV ``--layers`` reads."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from imcsim.cli import app
from imcsim.cli.common import warn_unmapped
from imcsim.cli.options import workload_options
from imcsim.errors import ConfigError
from imcsim.tables import format_layer_table
from imcsim.zoo.workloads import workload_layers

__all__ = ["export_layers_command"]


@app.command("export-layers")
@workload_options(default_model=None)
def export_layers_command(
    workload: Any,
    out: Annotated[Path, typer.Option("--out", "-o", help="CSV file to write.")],
) -> None:
    """Extract a model's layers and write them as a layer table (unmapped operations as
    comments); imcsim map --layers FILE.csv maps exactly the same layers."""
    if workload is None:
        raise ConfigError("give --model (as for imcsim map --model)")
    work = workload_layers(workload)
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
