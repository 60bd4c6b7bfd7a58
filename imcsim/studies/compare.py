"""Compression methods side by side at equal parameter count (torch-free core).

A *method* is a model transform (dense, a pruning method, low-rank, group low-rank)
plus a mapper.  ``compare_methods`` compresses a model every way at the same kept
fraction ``keep`` of its conv/linear weights (torch, ``imcsim.studies.variants``),
maps each variant on the same chip and reports per method: weights kept, computing
cycles, critical-path cycles, speedup over the *dense* model under im2col, and
utilization.  Low-rank vs pruning on IMC arrays: Jeon, Rhe, Ko, DATE 2025; row
skipping of pruned layers: PAIRS (ISLPED 2023), GAROS (JSA 2025).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import Field

from imcsim._config import StrictModel
from imcsim.compression import METHODS, method
from imcsim.errors import ConfigError
from imcsim.hardware import ArrayConfig, ChipConfig, parse_array
from imcsim.layers import LayerShape
from imcsim.mappers import LMode, Mapper, MapperOptions, Schedule, get_mapper
from imcsim.network import as_chip, map_network
from imcsim.report import format_table


class CompareOptions(StrictModel):
    """What ``compare_methods`` compares and how low-rank pairs are scheduled."""

    keep: float = Field(default=0.5, gt=0, le=1)
    """Fraction of the dense model's conv/linear weights every compressed method keeps."""
    methods: tuple[str, ...] = tuple(METHODS)
    """Method names (keys of ``METHODS``), in output order."""
    groups: int = Field(default=2, ge=1)
    """Groups of group low-rank (layers whose split axis it does not divide stay plain)."""
    split: Literal["input", "output"] = "input"
    """Axis group low-rank splits W along."""
    l_mode: LMode = "block-diagonal"
    """How the 1×1 factor L runs on R's window outputs (see ``mappers.low_rank``)."""
    schedule: Schedule = "sequential"
    """Factors one after the other (cycles add) or pipelined on separate arrays."""

    def model_post_init(self, _context: Any) -> None:
        if not self.methods:
            raise ConfigError("methods: give at least one method")
        for name in self.methods:
            method(name)

    def mapper(self, name: str) -> Mapper:
        m = method(name)
        if not m.factorised:
            return get_mapper(m.mapper)
        options = MapperOptions(r_mapper=m.mapper, l_mode=self.l_mode, schedule=self.schedule)
        return get_mapper("low-rank-sdk", options)


@dataclass(frozen=True)
class MethodResult:
    """One method's totals over the mapped layers."""

    method: str
    transform: str
    mapper: str
    params: int
    """Nonzero weights of the mapped layers."""
    keep: float
    """params / the dense model's weights (the achieved compression)."""
    cycles: int
    """Computing cycles: every tile activation (both factors of a low-rank pair)."""
    latency_cycles: int
    """Critical-path cycles (pipelined low-rank factors overlap)."""
    speedup: float
    """Dense im2col cycles / latency_cycles."""
    utilization: float
    tiles: int
    skipped_rows: int
    index_rows: int

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Comparison:
    """Every method's result on one model and chip."""

    model: str
    array: str
    options: CompareOptions
    weights: str
    dense_params: int
    im2col_cycles: int
    methods: tuple[MethodResult, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model, "array": self.array, "keep": self.options.keep,
            "weights": self.weights, "dense_params": self.dense_params,
            "im2col_cycles": self.im2col_cycles,
            "options": self.options.model_dump(exclude={"methods", "keep"}),
            "methods": [m.to_dict() for m in self.methods],
        }

    def __str__(self) -> str:
        rows = [m.to_dict() for m in self.methods]
        title = (
            f"{self.model} on {self.array}, keep {self.options.keep:g} of {self.dense_params:,} "
            f"weights ({self.weights}); low-rank L {self.options.l_mode}, {self.options.schedule}"
        )
        return format_table(rows, TABLE_COLUMNS, title=title)


TABLE_COLUMNS = (
    "method", "params", "keep", "cycles", "latency_cycles", "speedup", "utilization",
    "skipped_rows", "index_rows",
)


def _result(method: str, layers: Sequence[LayerShape], mapper: Mapper, chip: ChipConfig,
            dense_params: int, im2col_cycles: int) -> MethodResult:
    report = map_network(layers, mapper, chip, model=method)
    total = report.total()
    return MethodResult(
        method=method, transform=METHODS[method].transform, mapper=METHODS[method].mapper, params=total["params"],
        keep=total["params"] / dense_params, cycles=report.cycles,
        latency_cycles=report.latency_cycles, speedup=im2col_cycles / report.latency_cycles,
        utilization=report.utilization, tiles=total["tiles"],
        skipped_rows=sum(m.skipped_rows for m in report.mappings),
        index_rows=sum(m.index_rows for m in report.mappings),
    )


def compare_workloads(
    workloads: Mapping[str, Sequence[LayerShape]], chip: ChipConfig | ArrayConfig,
    options: CompareOptions, *, model: str = "network", weights: str = "",
) -> Comparison:
    """Map each method's layers (``workloads`` keyed by transform, ``dense`` required)."""
    chip = as_chip(chip)
    dense = workloads["dense"]
    dense_params = sum(layer.params for layer in dense)
    im2col_cycles = map_network(dense, "im2col", chip).cycles
    results = tuple(
        _result(m, workloads[METHODS[m].transform], options.mapper(m), chip, dense_params, im2col_cycles)
        for m in options.methods
    )
    return Comparison(
        model=model, array=chip.array.label, options=options, weights=weights,
        dense_params=dense_params, im2col_cycles=im2col_cycles, methods=results,
    )


def compare_methods(
    model: Any, array: ChipConfig | ArrayConfig | str, keep: float = 0.5, *,
    example_input: Any = None, **options: Any,
) -> Comparison:
    """Compress ``model`` (built-in name or ``nn.Module``) every way and compare (needs torch).

    ``options`` are the other ``CompareOptions`` fields (methods, groups, split,
    l_mode, schedule).
    """
    opts = CompareOptions(keep=keep, **options)
    chip = parse_array(array) if isinstance(array, str) else array
    from imcsim.studies.variants import build_workloads, resolve_model

    name, module, x, weights = resolve_model(model, example_input)
    transforms = ["dense", *(METHODS[m].transform for m in opts.methods)]
    workloads = build_workloads(module, x, transforms, opts.keep, opts.groups, opts.split)
    return compare_workloads(workloads, chip, opts, model=name, weights=weights)
