"""``imcsim draw``: a picture of where one layer's weights sit on the arrays."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from imcsim.cli import app
from imcsim.cli.common import (
    ArrayOpt,
    CellBitsOpt,
    ChipOpt,
    LayersOpt,
    ModelOpt,
    WeightBitsOpt,
    split_list,
)
from imcsim.drawing import ColorBy
from imcsim.errors import ConfigError
from imcsim.hardware import build_chip
from imcsim.studies.pictures import check_suffix, draw_layer, import_mappers, load_layers

__all__ = ["draw_command"]


@app.command("draw")
def draw_command(
    layer: Annotated[str, typer.Option("--layer", "-l", help="Layer name (a low-rank layer's name draws its R/L pair).")],
    model: ModelOpt = None,
    layers: LayersOpt = None,
    array: ArrayOpt = None,
    mapper: Annotated[str, typer.Option("--mapper", help="Mapper, or a comma list drawn side by side.")] = "vw-sdk",
    chip: ChipOpt = None,
    cell_bits: CellBitsOpt = None,
    weight_bits: WeightBitsOpt = None,
    compression: Annotated[str, typer.Option("--compression", help="Compress the model first: unstructured, filter, channel, pattern, low-rank, group-low-rank.")] = "dense",
    keep: Annotated[float, typer.Option("--keep", help="Fraction of the weights the compression keeps.")] = 0.5,
    tile: Annotated[int | None, typer.Option("--tile", help="Draw only this tile (0-based); default: every tile.")] = None,
    color_by: Annotated[str, typer.Option("--color-by", help="Colour weights by 'filter' or by window 'copy'.")] = "filter",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Picture file: .png, .svg or .pdf (default: LAYER-MAPPER.png).")] = None,
    register: Annotated[list[str] | None, typer.Option("--register", help="Python file or module to import first: it registers your own mappers (register_mapper).")] = None,
) -> None:
    """Draw one layer's tiles as images of the array: weights by filter and kernel tap,
    empty and zero cells, skipped rows, utilization."""
    for source in register or ():
        import_mappers(source)
    names = split_list(mapper, "--mapper")
    if color_by not in ("filter", "copy"):
        raise ConfigError(f"--color-by {color_by!r}: expected filter or copy")
    if not 0 < keep <= 1:
        raise ConfigError(f"--keep {keep}: expected a fraction in (0, 1]")
    if tile is not None and tile < 0:
        raise ConfigError(f"--tile {tile}: expected a tile index >= 0")
    target = out or Path(f"{layer}-{'+'.join(names)}.png".replace("/", "_"))
    check_suffix(target, "--out")
    chip_cfg = build_chip(chip, array, cell_bits=cell_bits, weight_bits=weight_bits)
    if (model is None) == (layers is None):
        raise ConfigError("give exactly one of --model NAME or --layers TABLE.csv")
    source = model if model is not None else (layers if layers.endswith(".csv") else f"table:{layers}")
    work = load_layers(source, compression, keep)
    color: ColorBy = "filter" if color_by == "filter" else "copy"
    picture = draw_layer(work, layer, names, chip_cfg, target, tile=tile, color_by=color)
    for m in picture.mappings:
        role = f" ({m.role})" if m.role != "layer" else ""
        typer.echo(f"{m.layer.name}{role} {m.mapper}: window {m.window[0]}x{m.window[1]}, "
                   f"{m.tiles} tiles x {m.windows:,} windows = {m.cycles:,} cycles, "
                   f"utilization {m.utilization:.3f}")
    typer.echo(f"picture: {picture.path}")
