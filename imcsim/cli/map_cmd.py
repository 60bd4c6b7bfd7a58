"""``imcsim map``: map every layer of a model and print cycles, speedup, utilization."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from imcsim.cli import app
from imcsim.cli.common import (
    ArrayOpt,
    AttentionMacsOpt,
    BatchOpt,
    CellBitsOpt,
    ChipOpt,
    ContextOpt,
    Format,
    FormatOpt,
    LayersOpt,
    MatmulOpt,
    PhaseOpt,
    WeightBitsOpt,
    emit,
    split_list,
    warn_unmapped,
)
from imcsim.cli.conventions_opts import ConventionOpt, ConventionsOpt, conventions_from
from imcsim.cli.options import workload_options
from imcsim.conventions import Conventions
from imcsim.cost import SCHEDULES, estimate_network, with_cost
from imcsim.errors import ConfigError
from imcsim.hardware import build_chip
from imcsim.mappers import DENSE_MAPPERS, Mapper, get_mapper
from imcsim.matmul import with_placement
from imcsim.network import map_network
from imcsim.nodescale import rescale_chip
from imcsim.report import TABLE_COLUMNS, NetworkReport, format_table, matmul_table
from imcsim.tokens import digital_summary, token_totals
from imcsim.zoo.workloads import Workload, load_workload, workload_layers

__all__ = ["COST_COLUMNS", "comparison_table", "map_command"]

MapperOpt = Annotated[
    str | None,
    typer.Option(
        "--mapper", help="Mapper name, comma list, or 'all' (im2col, sdk, sdk-unconstrained, "
        "vw-sdk; default vw-sdk, or the --conventions' mapper)."
    ),
]

CostOpt = Annotated[
    str | None,
    typer.Option(
        "--cost",
        help="Cost preset (isaac, wang2022, neurosim-v1.3, or a TOML file): adds latency, energy and area. "
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
NodeOpt = Annotated[
    float | None,
    typer.Option("--node", help="Rescale the cost preset's CMOS figures to this node in nm "
                 "(Stillmaker & Baas 2017; the preset must state [cost.technology])."),
]
SupplyOpt = Annotated[
    float | None,
    typer.Option("--supply", help="Rescale the cost preset's CMOS energies to this supply in "
                 "volts (Stillmaker & Baas 2017)."),
]
COST_COLUMNS = ("latency_ns", "energy_pj", "area_um2", "tops_per_w")


@app.command("map")
@workload_options(default_model=None)
def map_command(
    workload: Any,
    layers: LayersOpt = None,
    array: ArrayOpt = None,
    mapper: MapperOpt = None,
    chip: ChipOpt = None,
    cell_bits: CellBitsOpt = None,
    weight_bits: WeightBitsOpt = None,
    fmt: FormatOpt = Format.table,
    cost: CostOpt = None,
    schedule: ScheduleOpt = "sequential",
    matmul: MatmulOpt = None,
    node: NodeOpt = None,
    supply: SupplyOpt = None,
    conventions: ConventionsOpt = None,
    convention: ConventionOpt = None,
    spec: Annotated[Path | None, typer.Option("--spec", help="A point written by 'explore --export': map its compressed model exactly as explore counted it.")] = None,
    phase: PhaseOpt = "prefill",
    context: ContextOpt = None,
    batch: BatchOpt = 1,
    attention_macs: AttentionMacsOpt = "full",
) -> None:
    """Map a model (or a CSV layer table) onto crossbar arrays, layer by layer.  With
    --conventions, one mapper counts as they say: factor pairs with R's mapper and L's
    schedule, pruned layers with row skipping, dense layers with R's mapper."""
    if schedule not in SCHEDULES:
        raise ConfigError(f"--schedule {schedule!r} unknown (expected {' or '.join(SCHEDULES)})")
    if spec is not None:
        model = None if workload is None else workload.model
        _map_point(spec, fmt, (model, layers, array, mapper, chip, conventions, convention, cost))
        return
    mappers = _mappers(mapper, conventions_from(conventions, convention))
    if cost is not None and chip is None:
        chip = cost  # the cost preset's own array bits and precisions
    chip_cfg = with_placement(build_chip(chip, array, cell_bits=cell_bits, weight_bits=weight_bits), matmul)
    if workload is not None and layers is not None:
        raise ConfigError("give exactly one of --model NAME or --layers TABLE.csv")
    work = (load_workload(None, layers) if workload is None
            else workload_layers(workload, phase, context, batch))
    warn_unmapped(work)
    reports = [
        map_network(work.layers, m, chip_cfg, model=work.name, unmapped=work.unmapped)
        for m in mappers
    ]
    if cost is not None:
        costed = rescale_chip(with_placement(with_cost(chip_cfg, cost), matmul), node, supply)
        reports = [estimate_network(r, costed, schedule) for r in reports]
    elif schedule != "sequential" or node is not None or supply is not None:
        flag = "--schedule" if schedule != "sequential" else "--node/--supply"
        raise ConfigError(f"{flag} needs --cost PRESET")
    if len(reports) == 1:
        report = reports[0]
        columns = TABLE_COLUMNS + (COST_COLUMNS if cost is not None else ())
        total = workload_totals(report, work, attention_macs)
        table = format_table(report.rows(), columns, total, title=report.title)
        table += matmul_table(report.matmuls) + totals_lines(total)
        emit({**report.to_dict(), "total": total, **digital_ops(work)}, table, fmt,
             report.to_csv())
        return
    data = {
        "layers": [row for r in reports for row in r.rows()],
        "total": {r.mapper: workload_totals(r, work, attention_macs) for r in reports},
        "unmapped": list(work.unmapped), **digital_ops(work),
    }
    emit(data, comparison_table(reports), fmt, "".join(r.to_csv() for r in reports))


def _map_point(path: Path, fmt: Format, others: tuple) -> None:
    from imcsim.studies.explore_point import replay
    from imcsim.studies.explore_space import read_point

    if any(x for x in others):
        raise ConfigError("--spec carries the model, array, chip, conventions and cost; "
                          "give none of --model/--layers/--array/--mapper/--chip/--conventions/--cost")
    point = read_point(path)
    report = replay(point)
    total = {**report.total(), "cycles_counted": point.conventions.count(
        report.cycles, report.latency_cycles)}
    table = format_table(report.rows(), TABLE_COLUMNS + COST_COLUMNS, report.total(),
                         title=f"{report.title} (conventions {point.conventions.name})")
    emit({**report.to_dict(), "total": total}, table, fmt, report.to_csv())


def _mappers(mapper: str | None, conv: Conventions | None) -> list[Mapper]:
    if conv is not None:
        if mapper is not None:
            raise ConfigError("give --mapper or --conventions, not both")
        return [conv.mapper()]
    mapper = mapper or "vw-sdk"
    names = list(DENSE_MAPPERS) if mapper == "all" else split_list(mapper, "--mapper")
    if len(set(names)) != len(names):
        raise ConfigError(f"--mapper {mapper!r} repeats a mapper")
    return [get_mapper(n) for n in names]


def workload_totals(report: NetworkReport, work: Workload, attention: str) -> dict:
    """The report's totals, with the phase's per-token figures for a token model."""
    if work.inference is None:
        if attention != "full":
            raise ConfigError("--attention-macs applies to --model, not to --layers")
        return report.total()
    return token_totals(report, work.inference, attention)  # type: ignore[arg-type]


def digital_ops(work: Workload) -> dict:
    """The digital operations and embedding lookups of a torch model ({} for a table)."""
    if work.inference is None:
        return {}
    return {"digital": digital_summary(work.digital, work.layers)}


LLM_KEYS = ("phase", "tokens_per_step", "macs", "matmul_macs", "attention_macs", "context",
            "attention_keys", "kv_cache_bytes", "weights_stored", "arrays_needed",
            "fits_on_chip", "reload_energy_pj", "reload_latency_ns", "token_latency_ns",
            "energy_per_token_pj", "tokens_per_s", "array_busy")


def totals_lines(total: dict) -> str:
    """The language-model totals under the table (only those the run has)."""
    shown = [(k, total[k]) for k in LLM_KEYS if total.get(k) is not None]
    if not any(k == "phase" for k, _ in shown):
        return ""
    return "\n\n" + "\n".join(f"{k}: {_show(v)}" for k, v in shown)


def _show(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


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
