"""``imcsim compare``: compression methods side by side at equal parameter count."""

from __future__ import annotations

from typing import Annotated

import typer

from imcsim.cli import app
from imcsim.cli.common import (
    ArrayOpt,
    CellBitsOpt,
    ChipOpt,
    PlainFormat,
    PlainFormatOpt,
    WeightBitsOpt,
    emit,
    split_list,
)
from imcsim.compression import METHODS
from imcsim.hardware import build_chip
from imcsim.studies.compare import compare_methods

KeepOpt = Annotated[
    float, typer.Option("--keep", help="Fraction of the dense conv/linear weights kept, in (0, 1].")
]
MethodsOpt = Annotated[
    str, typer.Option("--methods", help=f"Comma list or 'all': {', '.join(METHODS)}.")
]
GroupsOpt = Annotated[int, typer.Option("--groups", help="Groups of group low-rank.")]
SplitOpt = Annotated[str, typer.Option("--split", help="Group low-rank split axis: input or output.")]
LModeOpt = Annotated[
    str, typer.Option("--l-mode", help="1x1 factor L: block-diagonal, im2col or independent.")
]
ScheduleOpt = Annotated[
    str, typer.Option("--schedule", help="Low-rank factors: sequential or pipelined.")
]


@app.command("compare")
def compare_command(
    model: Annotated[str, typer.Option("--model", "-m", help="Built-in model, e.g. resnet20, wrn16-4.")],
    array: ArrayOpt = None,
    keep: KeepOpt = 0.5,
    methods: MethodsOpt = "all",
    groups: GroupsOpt = 2,
    split: SplitOpt = "input",
    l_mode: LModeOpt = "block-diagonal",
    schedule: ScheduleOpt = "sequential",
    chip: ChipOpt = None,
    cell_bits: CellBitsOpt = None,
    weight_bits: WeightBitsOpt = None,
    fmt: PlainFormatOpt = PlainFormat.table,
) -> None:
    """Dense, pruned, low-rank and group low-rank at the same kept fraction of weights."""
    names = list(METHODS) if methods == "all" else split_list(methods, "--methods")
    chip_cfg = build_chip(chip, array, cell_bits=cell_bits, weight_bits=weight_bits)
    result = compare_methods(
        model, chip_cfg, keep, methods=tuple(names), groups=groups, split=split,
        l_mode=l_mode, schedule=schedule,
    )
    emit(result.to_dict(), str(result), fmt)
