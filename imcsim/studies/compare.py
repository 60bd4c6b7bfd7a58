"""Compression methods side by side at equal parameter count (torch-free core).

A *method* is a model transform (dense, a pruning method, low-rank, group low-rank)
plus a mapper.  ``compare_methods`` compresses a model every way at the same kept
fraction ``keep`` of its conv/linear weights (torch, ``imcsim.studies.variants``),
maps each variant on the same chip and reports per method: weights kept, computing
cycles, critical-path cycles, speedup over the *dense* model under im2col, utilization,
arrays occupied (tiles) and busy at once, and the sparsity periphery (rows routed by
index logic, pattern-index bits).  Each method's own knob can replace the kept
fraction: a fixed ``rank`` for low-rank, ``taps`` per kernel (library, sharing) for
kernel patterns; ``r_mapper`` / ``pruned_mapper`` replace the methods' mappers.
Low-rank vs pruning on IMC arrays: Jeon, Rhe, Ko, DATE 2025; row skipping of pruned
layers: PAIRS (ISLPED 2023), GAROS (JSA 2025).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import Field

from imcsim._config import StrictModel
from imcsim.compression import (
    METHODS,
    DenseLayers,
    PatternLibrary,
    PatternShare,
    method,
)
from imcsim.errors import ConfigError
from imcsim.hardware import ArrayConfig, ChipConfig, parse_array
from imcsim.layers import LayerShape
from imcsim.mappers import LMode, Mapper, MapperOptions, Schedule, get_mapper
from imcsim.network import as_chip, map_network
from imcsim.report import format_table

__all__ = ["TABLE_COLUMNS", "CompareOptions", "Comparison", "MethodResult", "active_arrays",
           "compare_methods", "compare_workloads"]


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
    rank: int | None = Field(default=None, ge=1)
    """Low-rank: a fixed network-wide rank (per group) instead of the ``keep`` budget."""
    taps: int | None = Field(default=None, ge=1)
    """Kernel patterns: taps kept per kernel (default ⌊keep·K²⌋)."""
    pattern_library: PatternLibrary = "patdnn"
    """Kernel patterns: where the n-tap patterns come from."""
    pattern_share: PatternShare = "kernel"
    """Kernel patterns: each kernel, each input channel or the whole layer picks one."""
    r_mapper: str | None = None
    """Low-rank: the dense mapper of R (None: each method's own, e.g. sdk for low-rank-sdk)."""
    pruned_mapper: str | None = None
    """Pruned methods: the mapper (None: each method's own, e.g. pruned-sdk)."""
    dense_layers: DenseLayers = "none"
    """Layers every compression leaves dense: none, or stem-1x1-fc (the paper group's)."""
    seed: int = 0
    """Seed of the random pattern library."""

    def model_post_init(self, _context: Any) -> None:
        if not self.methods:
            raise ConfigError("methods: give at least one method")
        for name in self.methods:
            method(name)
        if self.r_mapper is not None:
            get_mapper("low-rank-sdk", MapperOptions(r_mapper=self.r_mapper))
        if self.pruned_mapper is not None and not self.pruned_mapper.startswith("pruned-"):
            raise ConfigError(f"pruned_mapper={self.pruned_mapper!r}: give a pruned mapper "
                              "(pruned-sdk, pruned-sdk-unconstrained, pruned-im2col)")
        if self.pruned_mapper is not None:
            get_mapper(self.pruned_mapper)

    def mapper_name(self, name: str) -> str:
        """The mapper method ``name`` uses (for low-rank methods: R's dense mapper)."""
        m = method(name)
        if m.factorised:
            return self.r_mapper or m.mapper
        pruned = m.transform != "dense" and self.pruned_mapper is not None
        return self.pruned_mapper if pruned else m.mapper  # type: ignore[return-value]

    def mapper(self, name: str) -> Mapper:
        if not method(name).factorised:
            return get_mapper(self.mapper_name(name))
        options = MapperOptions(r_mapper=self.mapper_name(name), l_mode=self.l_mode,
                                schedule=self.schedule)
        return get_mapper("low-rank-sdk", options)

    def knobs(self) -> dict[str, Any]:
        """The ``imcsim.studies.variants.Knobs`` fields these options set."""
        return {"rank": self.rank, "taps": self.taps, "library": self.pattern_library,
                "share": self.pattern_share, "seed": self.seed, "dense_layers": self.dense_layers}


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
    """Arrays the weights occupy (every layer's tiles, both factors of a pair)."""
    active_arrays: int
    """Most arrays computing at once: a layer's tiles, or R's and L's together when a
    pipelined pair runs on two sets of arrays."""
    skipped_rows: int
    index_rows: int
    index_bits: int
    """Pattern-index bits the sparse layers store (``LayerMapping.index_bits``)."""

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
            + (f", rank {self.options.rank}" if self.options.rank else "")
            + (f", {self.options.taps} taps" if self.options.taps else "")
        )
        return format_table(rows, TABLE_COLUMNS, title=title)


TABLE_COLUMNS = (
    "method", "params", "keep", "cycles", "latency_cycles", "speedup", "utilization",
    "tiles", "active_arrays", "skipped_rows", "index_rows", "index_bits",
)


def active_arrays(mappings: Sequence[Any]) -> int:
    """Peak arrays busy at once: a pipelined pair (L overlapping R) counts R's and L's."""
    peak, previous = 0, None
    for m in mappings:
        busy = m.tiles + (previous.tiles if m.overlap_cycles and previous is not None else 0)
        peak, previous = max(peak, busy), m
    return peak


def _result(method: str, layers: Sequence[LayerShape], options: CompareOptions, chip: ChipConfig,
            dense_params: int, im2col_cycles: int) -> MethodResult:
    report = map_network(layers, options.mapper(method), chip, model=method)
    total = report.total()
    return MethodResult(
        method=method, transform=METHODS[method].transform, mapper=options.mapper_name(method),
        params=total["params"],
        keep=total["params"] / dense_params, cycles=report.cycles,
        latency_cycles=report.latency_cycles, speedup=im2col_cycles / report.latency_cycles,
        utilization=report.utilization, tiles=total["tiles"],
        active_arrays=active_arrays(report.mappings),
        skipped_rows=sum(m.skipped_rows for m in report.mappings),
        index_rows=sum(m.index_rows for m in report.mappings),
        index_bits=sum(m.index_bits for m in report.mappings),
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
        _result(m, workloads[METHODS[m].transform], options, chip, dense_params, im2col_cycles)
        for m in options.methods
    )
    return Comparison(
        model=model, array=chip.array.label, options=options, weights=weights,
        dense_params=dense_params, im2col_cycles=im2col_cycles, methods=results,
    )


def compare_methods(
    model: Any, array: ChipConfig | ArrayConfig | str, keep: float = 0.5, *,
    example_input: Any = None, name: str | None = None, weights: str | None = None,
    **options: Any,
) -> Comparison:
    """Compress ``model`` (built-in name or ``nn.Module``) every way and compare (needs torch).

    ``options`` are the other ``CompareOptions`` fields (methods, groups, split, l_mode,
    schedule, rank, taps, pattern_library, pattern_share, r_mapper, pruned_mapper,
    dense_layers, seed); ``name`` and ``weights`` describe a given module in the report.
    """
    opts = CompareOptions(keep=keep, **options)
    chip = parse_array(array) if isinstance(array, str) else array
    from imcsim.studies.variants import Knobs, build_workloads, resolve_model

    found, module, x, described = resolve_model(model, example_input)
    name, weights = name or found, weights or described
    transforms = ["dense", *(METHODS[m].transform for m in opts.methods)]
    workloads = build_workloads(module, x, transforms, opts.keep, opts.groups, opts.split,
                                Knobs(**opts.knobs()))
    return compare_workloads(workloads, chip, opts, model=name, weights=weights)
