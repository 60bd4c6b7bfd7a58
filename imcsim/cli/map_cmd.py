"""``imcsim map``: map every layer of a model and print cycles, speedup, utilization."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from imcsim.cli import app
from imcsim.cli.common import (
    ArrayOpt,
    CellBitsOpt,
    ChipOpt,
    Format,
    FormatOpt,
    LayersOpt,
    MatmulOpt,
    WeightBitsOpt,
    emit,
    split_list,
    warn_unmapped,
)
from imcsim.cli.options import workload_options
from imcsim.cost import SCHEDULES, estimate_network, with_cost
from imcsim.errors import ConfigError
from imcsim.hardware import build_chip
from imcsim.mappers import DENSE_MAPPERS, get_mapper
from imcsim.matmul import with_placement
from imcsim.network import map_network
from imcsim.report import TABLE_COLUMNS, format_table, matmul_table
from imcsim.zoo.workloads import load_workload, spec_workload

__all__ = ["COST_COLUMNS", "comparison_table", "map_command"]

MapperOpt = Annotated[
    str,
    typer.Option(
        "--mapper", help="Mapper name, comma list, or 'all' (im2col, sdk, sdk-unconstrained, vw-sdk)."
    ),
]

CostOpt = Annotated[
    str | None,
    typer.Option(
        "--cost",
        help="Cost preset (isaac, wang2022, or a TOML file): adds latency, energy and area. "
        "Without --chip, the preset's own array bits and precisions are used.",
    ),
]
ScheduleOpt = Annotated[
    str,
    typer.Option(
        "--schedule",
        help=f"Layer schedule for the cost totals: {' or '.join(SCHEDULES)} "
        "(pipelined: layers on their own arrays, throughput set by the slowest layer).",
    ),
]
COST_COLUMNS = ("latency_ns", "energy_pj", "area_um2", "tops_per_w")


@app.command("map")
@workload_options(default_model=None)
def map_command(
    workload: Any,
    layers: LayersOpt = None,
    array: ArrayOpt = None,
    mapper: MapperOpt = "vw-sdk",
    chip: ChipOpt = None,
    cell_bits: CellBitsOpt = None,
    weight_bits: WeightBitsOpt = None,
    fmt: FormatOpt = Format.table,
    cost: CostOpt = None,
    schedule: ScheduleOpt = "sequential",
    matmul: MatmulOpt = None,
) -> None:
    """Map a model (or a CSV layer table) onto crossbar arrays, layer by layer."""
    if schedule not in SCHEDULES:
        raise ConfigError(f"--schedule {schedule!r} unknown (expected {' or '.join(SCHEDULES)})")
    names = list(DENSE_MAPPERS) if mapper == "all" else split_list(mapper, "--mapper")
    if len(set(names)) != len(names):
        raise ConfigError(f"--mapper {mapper!r} repeats a mapper")
    mappers = [get_mapper(n) for n in names]
    if cost is not None and chip is None:
        chip = cost  # the cost preset's own array bits and precisions
    chip_cfg = with_placement(build_chip(chip, array, cell_bits=cell_bits, weight_bits=weight_bits), matmul)
    if workload is not None and layers is not None:
        raise ConfigError("give exactly one of --model NAME or --layers TABLE.csv")
    work = load_workload(None, layers) if workload is None else spec_workload(workload)
    warn_unmapped(work)
    reports = [
        map_network(work.layers, m, chip_cfg, model=work.name, unmapped=work.unmapped)
        for m in mappers
    ]
    if cost is not None:
        costed = with_placement(with_cost(chip_cfg, cost), matmul)
        reports = [estimate_network(r, costed, schedule) for r in reports]
    elif schedule != "sequential":
        raise ConfigError(f"--schedule {schedule} needs --cost PRESET")
    if len(reports) == 1:
        report = reports[0]
        columns = TABLE_COLUMNS + (COST_COLUMNS if cost is not None else ())
        table = format_table(report.rows(), columns, report.total(), title=report.title)
        table += matmul_table(report.matmuls)
        emit(report.to_dict(), table, fmt, report.to_csv())
        return
    data = {
        "layers": [row for r in reports for row in r.rows()],
        "total": {r.mapper: r.total() for r in reports},
        "unmapped": list(work.unmapped),
    }
    emit(data, comparison_table(reports), fmt, "".join(r.to_csv() for r in reports))


def comparison_table(reports: list) -> str:
    """Side-by-side cycles per layer, one column per mapper, totals and speedups."""
    rows = []
    for i, m in enumerate(reports[0].mappings):
        row = {"name": m.layer.name, "layer": m.layer.describe()}
        row.update({r.mapper: r.mappings[i].cycles for r in reports})
        rows.append(row)
    total = {r.mapper: r.cycles for r in reports}
    speed = {"name": "speedup", **{r.mapper: r.speedup for r in reports}}
    util = {"name": "utilization", **{r.mapper: r.utilization for r in reports}}
    cols = ("name", "layer", *(r.mapper for r in reports))
    title = f"{reports[0].model} on {reports[0].chip.array.label}: computing cycles per mapper"
    table = format_table(rows, cols, total, title=title)
    extra = format_table([speed, util], cols)
    return table + "\n" + "\n".join(extra.splitlines()[2:])
