"""``imcsim compare``: compression methods side by side at equal parameter count."""

from __future__ import annotations

from typing import Annotated, Any

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
from imcsim.cli.conventions_opts import ConventionOpt, ConventionsOpt, conventions_from
from imcsim.cli.options import workload_options
from imcsim.compression import METHODS, PRUNINGS, method
from imcsim.errors import ConfigError
from imcsim.hardware import build_chip
from imcsim.studies.compare import compare_methods

__all__ = ["compare_command"]

KeepOpt = Annotated[
    float, typer.Option("--keep", help="Fraction of the dense conv/linear weights kept, in (0, 1].")
]
MethodsOpt = Annotated[
    str, typer.Option("--methods", help=f"Comma list or 'all': {', '.join(METHODS)}.")
]
GroupsOpt = Annotated[int | None, typer.Option("--groups", help="Groups of group low-rank (default 2).")]
SplitOpt = Annotated[
    str | None, typer.Option("--split", help="Group low-rank split axis: input (default) or output.")
]
LModeOpt = Annotated[
    str | None,
    typer.Option("--l-mode", help="1x1 factor L: block-diagonal (default), im2col or independent."),
]
ScheduleOpt = Annotated[
    str | None, typer.Option("--schedule", help="Low-rank factors: sequential (default) or "
                             "pipelined (R and L on two sets of arrays, see active_arrays).")
]
RankOpt = Annotated[
    int | None, typer.Option("--rank", help="Low-rank: fixed network-wide rank (per group) "
                             "instead of --keep.")
]
TapsOpt = Annotated[
    int | None, typer.Option("--taps", help="Kernel patterns: taps kept per kernel "
                             "(default floor(keep*K*K)).")
]
LibraryOpt = Annotated[
    str | None, typer.Option("--pattern-library", help="Kernel patterns: patdnn (default), "
                             "pconv or random.")
]
ShareOpt = Annotated[
    str | None, typer.Option("--pattern-share", help="Kernel patterns: one choice per kernel "
                             "(default), channel or layer.")
]
RMapperOpt = Annotated[
    str | None, typer.Option("--r-mapper", help="Low-rank: dense mapper of R, e.g. "
                             "sdk-unconstrained (default: the method's own).")
]
PrunedMapperOpt = Annotated[
    str | None, typer.Option("--pruned-mapper", help="Pruned methods: pruned-sdk, "
                             "pruned-sdk-unconstrained or pruned-im2col.")
]
DenseLayersOpt = Annotated[
    str | None, typer.Option("--dense-layers", help="Layers left dense: none or stem-1x1-fc "
                             "(default: the conventions', none).")
]


@app.command("compare")
@workload_options(default_model=None)
def compare_command(
    workload: Any,
    array: ArrayOpt = None,
    keep: KeepOpt = 0.5,
    methods: MethodsOpt = "all",
    groups: GroupsOpt = None,
    split: SplitOpt = None,
    l_mode: LModeOpt = None,
    schedule: ScheduleOpt = None,
    rank: RankOpt = None,
    taps: TapsOpt = None,
    pattern_library: LibraryOpt = None,
    pattern_share: ShareOpt = None,
    r_mapper: RMapperOpt = None,
    pruned_mapper: PrunedMapperOpt = None,
    dense_layers: DenseLayersOpt = None,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Seed of the random pattern library (default 0).")
    ] = None,
    chip: ChipOpt = None,
    cell_bits: CellBitsOpt = None,
    weight_bits: WeightBitsOpt = None,
    conventions: ConventionsOpt = None,
    convention: ConventionOpt = None,
    fmt: PlainFormatOpt = PlainFormat.table,
) -> None:
    """Dense, pruned, low-rank and group low-rank at the same kept fraction of weights
    (or each at its own knob: --rank, --taps).  --conventions sets R's mapper, the pruned
    mapper, L's schedule and the dense layers; the explicit flags override them."""
    names = list(METHODS) if methods == "all" else split_list(methods, "--methods")
    chosen = [method(n) for n in names]
    _unused_by(chosen, "group-low-rank", {"--groups": groups, "--split": split})
    _unused_by(chosen, "low-rank", {"--l-mode": l_mode, "--schedule": schedule, "--rank": rank,
                                    "--r-mapper": r_mapper})
    _unused_by(chosen, "kernel-pattern", {"--taps": taps, "--pattern-library": pattern_library,
                                          "--pattern-share": pattern_share, "--seed": seed})
    _unused_by(chosen, "pruned", {"--pruned-mapper": pruned_mapper})
    conv = conventions_from(conventions, convention)
    if conv is not None:
        r_mapper, schedule = r_mapper or conv.r_mapper, schedule or conv.schedule
        pruned_mapper = pruned_mapper or (conv.pruned_mapper if conv.row_skipping else None)
        dense_layers = dense_layers or conv.dense_layers
    chip_cfg = build_chip(chip, array, cell_bits=cell_bits, weight_bits=weight_bits)
    if workload is None:
        raise ConfigError("give --model (a built-in, FILE.py:FACTORY, transformers:NAME, ...)")
    result = compare_methods(
        **_model(workload), array=chip_cfg, keep=keep, methods=tuple(names), groups=2 if groups is None else groups,
        split=split or "input", l_mode=l_mode or "block-diagonal",
        schedule=schedule or "sequential", rank=rank, taps=taps,
        pattern_library=pattern_library or "patdnn", pattern_share=pattern_share or "kernel",
        r_mapper=r_mapper, pruned_mapper=pruned_mapper, dense_layers=dense_layers or "none",
        seed=0 if seed is None else seed,
    )
    emit(result.to_dict(), str(result), fmt)


def _model(workload: Any) -> dict[str, Any]:
    """A built-in name (shipped weights), or the workload's module, example input, name and
    weights (the ``compare_methods`` arguments)."""
    if workload.plain:
        return {"model": workload.model}
    from imcsim.zoo.workload import load_workload

    loaded = load_workload(workload, with_data=False)
    return {"model": loaded.model, "example_input": loaded.example, "name": loaded.name,
            "weights": loaded.weights}


def _unused_by(chosen: list, transform: str, options: dict[str, object]) -> None:
    """Options of ``transform`` (and group low-rank, for ``low-rank``) given while no
    chosen method uses it are an error, not silently ignored."""
    users = {"low-rank": ("low-rank", "group-low-rank"), "pruned": PRUNINGS}.get(
        transform, (transform,))
    given = [flag for flag, value in options.items() if value is not None]
    if given and not any(m.transform in users for m in chosen):
        raise ConfigError(f"{given[0]} applies to {transform} methods only; none is in --methods")
