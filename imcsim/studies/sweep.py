"""Design-space sweeps: every point of a product of axes becomes one flat record.

Records are appended to ``results.jsonl`` as each point finishes (one JSON object per
line, flushed), so a sweep that is interrupted or killed and restarted skips the points
already done and loses nothing.  A record is reused only if its content key matches
(``imcsim.studies.results``): editing a layer table, a chip file, a user's weights or data,
or a change of the records' meaning (``RESULT_SEMANTICS``) recomputes the points it affects.  One sweep at a time may write into a folder (an OS
lock), and the size of a sweep is checked before anything is expanded.  Points run on
an executor from ``imcsim.studies.executors`` (local processes by default, or Ray).
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator

from imcsim._config import StrictModel
from imcsim.compression import TRANSFORMS
from imcsim.hardware import chip_presets, parse_array
from imcsim.mappers import DENSE_MAPPERS, MapperOptions, Schedule, mapper_names
from imcsim.studies.outputs import check_output_dir, exclusive
from imcsim.studies.results import (
    RESULTS,
    Record,
    append_record,
    content_key,
    load_results,
    repair_torn_line,
)
from imcsim.tables import table_names
from imcsim.zoo.workload import Workload

__all__ = ["AXES", "MAX_AXIS_VALUES", "MAX_POINTS", "RESULTS", "SweepPlan", "SweepSpec",
           "count_points", "input_digests", "pending", "plan", "point_key", "points",
           "read_results", "record_key", "select", "sweep"]

AXES = ("model", "compression", "keep", "chip", "array", "mapper", "adc_bits", "cell_bits")
MAX_POINTS = 100_000
"""Most points one sweep may have (checked from the axis lengths, before expansion)."""
MAX_AXIS_VALUES = 10_000
"""Most values one axis may list."""

AdcBits = Annotated[int, Field(ge=1, le=16)]
CellBits = Annotated[int, Field(ge=1, le=8)]


class SweepSpec(StrictModel):
    """The axes of a sweep; the points are their product (``keep`` only for compressions)."""

    models: tuple[str, ...] = ("resnet20",)
    """Built-in models, or layer tables as ``table:NAME`` / a ``.csv`` path."""
    arrays: tuple[str, ...] = ("64x64", "128x128", "256x256", "512x512")
    """Array sizes ROWSxCOLS (non-square allowed)."""
    mappers: tuple[str, ...] = DENSE_MAPPERS
    compressions: tuple[str, ...] = ("dense",)
    """``dense`` or a model transform: unstructured, filter, channel, pattern (pruning at
    sparsity 1 − keep), low-rank, group-low-rank (2 groups).  Pair them with mappers
    that exploit them: ``pruned-sdk``/``pruned-im2col`` skip zero rows,
    ``low-rank-sdk``/``low-rank-vw-sdk`` map factor pairs (Jeon, Rhe, Ko, DATE 2025)."""
    keep: tuple[float, ...] = (0.5,)
    """Fractions of the dense parameters kept, for every compression but ``dense``."""
    chips: tuple[str, ...] = ("",)
    """Chip presets (bit slicing, precisions, cost); "" is the 1-bit mapping-study chip."""
    adc_bits: tuple[AdcBits | None, ...] = (None,)
    """ADC resolutions overriding the chip's (None keeps it); 1..16 as ``PrecisionConfig``."""
    cell_bits: tuple[CellBits | None, ...] = (None,)
    """Cell bits overriding the chip's (None keeps it); 1..8 as ``ArrayConfig``."""
    schedule: Schedule = "sequential"
    """Layer schedule for latency when a chip has a cost model: sequential or pipelined."""
    mapper_options: MapperOptions = MapperOptions()
    """Options of option-bearing mappers (the low-rank ``r_mapper``, ``l_mode``,
    ``schedule`` of the factor pair), the same for every point."""
    accuracy: bool = False
    """Also measure on-chip accuracy (slow: a functional simulation per point)."""
    images: int = Field(default=200, ge=1, le=100_000)
    """Test images per accuracy point."""
    workload: Workload | None = None
    """A user's model, weights, inputs and data (``imcsim.zoo.workload``); ``models`` is
    then its one model.  Records are keyed by its content."""

    @field_validator("models", "arrays", "mappers", "compressions", "keep", "chips",
                     "adc_bits", "cell_bits")
    @classmethod
    def _not_empty(cls, value: tuple) -> tuple:
        if not value:
            raise ValueError("needs at least one value")
        if len(value) > MAX_AXIS_VALUES:
            raise ValueError(f"{len(value):,} values exceed the limit of {MAX_AXIS_VALUES:,}")
        if len(set(value)) != len(value):
            raise ValueError(f"repeats a value: {list(value)[:10]}")
        return value

    @field_validator("models")
    @classmethod
    def _known_models(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            if name.startswith("table:"):
                if name.removeprefix("table:") not in table_names():
                    raise ValueError(f"unknown layer table {name!r} (known: {', '.join(table_names())})")
            elif name.endswith(".csv"):
                _must_exist(name, "layer table")
            elif ":" in name or Path(name).is_dir():
                continue  # a user's model: checked against ``workload`` below
            else:
                from imcsim.zoo.models import get_spec

                get_spec(name)
        return value

    @field_validator("arrays")
    @classmethod
    def _arrays(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        labels = tuple(parse_array(text).label for text in value)  # "64 X 64" → "64x64"
        if len(set(labels)) != len(labels):
            raise ValueError(f"repeats an array size: {list(value)[:10]}")
        return labels

    @field_validator("mappers")
    @classmethod
    def _mappers(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [m for m in value if m not in mapper_names()]
        if unknown:
            raise ValueError(f"unknown mapper {unknown[0]!r} (known: {', '.join(mapper_names())})")
        return value

    @field_validator("compressions")
    @classmethod
    def _known_compressions(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(c != "dense" for c in value):
            unknown = [c for c in value if c not in TRANSFORMS]
            if unknown:
                raise ValueError(f"unknown compression {unknown[0]!r} (known: {', '.join(TRANSFORMS)})")
        return value

    @field_validator("keep")
    @classmethod
    def _keep(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        bad = [k for k in value if not 0 < k <= 1]
        if bad:
            raise ValueError(f"keep={bad[0]} outside (0, 1]")
        return value

    @field_validator("chips")
    @classmethod
    def _chips(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for chip in value:
            if chip.endswith(".toml"):
                _must_exist(chip, "chip file")
            elif chip and chip not in chip_presets():
                raise ValueError(f"unknown chip preset {chip!r} (known: {', '.join(chip_presets())})")
        return value

    @model_validator(mode="before")
    @classmethod
    def _models_of_workload(cls, data: Any) -> Any:
        """A recipe's ``[sweep.workload]`` table alone names the models axis."""
        if isinstance(data, dict) and data.get("workload") is not None and "models" not in data:
            w = data["workload"]
            data = {**data, "models": ((w.get("model", "resnet20") if isinstance(w, dict)
                                        else w.model),)}
        return data

    @model_validator(mode="after")
    def _user_model(self) -> SweepSpec:
        from imcsim.zoo.models import MODELS

        if self.workload is not None:
            if self.models != (self.workload.model,):
                raise ValueError(f"models must be ({self.workload.model!r},), the workload's")
        else:
            user = [m for m in self.models if ":" in m and not m.startswith("table:")
                    and m not in MODELS]
            if user:
                raise ValueError(f"model {user[0]!r} is a user's model: give it as the "
                                 "workload (weights, inputs, data)")
        return self

    @model_validator(mode="after")
    def _size(self) -> SweepSpec:
        if "keep" in self.model_fields_set and set(self.compressions) == {"dense"}:
            raise ValueError("keep applies to compressed models only; every compression "
                             "is 'dense' (add one, e.g. unstructured or low-rank)")
        n = count_points(self)
        if n > MAX_POINTS:
            raise ValueError(f"{n:,} points exceed the limit of {MAX_POINTS:,}; split the "
                             "sweep into several (one output folder each)")
        return self


def _must_exist(name: str, what: str) -> None:
    path = Path(name)
    if not path.is_file():
        raise ValueError(f"{what} {name!r} does not exist" if not path.exists()
                         else f"{what} {name!r} is not a file")


def count_points(spec: SweepSpec) -> int:
    """Points of ``spec`` from its axis lengths alone (nothing is expanded)."""
    compressed = sum(1 if c == "dense" else len(spec.keep) for c in spec.compressions)
    return math.prod((len(spec.models), compressed, len(spec.chips), len(spec.arrays),
                      len(spec.mappers), len(spec.adc_bits), len(spec.cell_bits)))


def points(spec: SweepSpec) -> list[Record]:
    """Every point of the sweep, in a stable order."""
    compressed = [(c, k) for c in spec.compressions for k in (spec.keep if c != "dense" else (1.0,))]
    workload = None if spec.workload is None else spec.workload.model_dump(mode="json")
    out = []
    for model, (comp, keep), chip, array, mapper, adc, cell in itertools.product(
        spec.models, compressed, spec.chips, spec.arrays, spec.mappers, spec.adc_bits,
        spec.cell_bits,
    ):
        out.append({"model": model, "compression": comp, "keep": keep, "chip": chip,
                    "array": array, "mapper": mapper, "adc_bits": adc, "cell_bits": cell,
                    "schedule": spec.schedule, "measure_accuracy": spec.accuracy,
                    "mapper_options": spec.mapper_options.model_dump(),
                    "images": spec.images, "workload": workload})
    return out


_INPUTS = (*AXES, "schedule", "measure_accuracy", "images", "mapper_options", "workload")


def point_key(point: Record) -> str:
    """Canonical identity of a point (its inputs, not their content)."""
    return json.dumps({k: point[k] for k in sorted(point) if k in _INPUTS}, sort_keys=True)


def input_digests(spec: SweepSpec) -> dict[str, str]:
    """``{"model:NAME": digest, "chip:NAME": digest}``; reads (and validates) every input."""
    from imcsim.studies.evaluate import chip_digest, model_digest

    if spec.workload is not None:
        found = {f"model:{spec.workload.model}": spec.workload.key()}
    else:
        found = {f"model:{m}": model_digest(m) for m in spec.models}
    found.update({f"chip:{c}": chip_digest(c) for c in spec.chips})
    return found


def _with_contents(point: Record, digests: dict[str, str]) -> Record:
    """``point`` plus the digests of what it reads (workers check them; records keep them)."""
    return {**point, "model_digest": digests[f"model:{point['model']}"],
            "chip_digest": digests[f"chip:{point['chip']}"]}


def record_key(point: Record) -> str:
    """The content key of a point that carries its input digests."""
    contents = {"model": point["model_digest"], "chip": point["chip_digest"]}
    return content_key({k: point[k] for k in _INPUTS}, contents)


@dataclass(frozen=True)
class SweepPlan:
    """What a sweep into a folder will do: every point with its key, what is done."""

    everything: list[tuple[str, Record]]
    """(content key, point) in point order."""
    done: dict[str, Record]
    """Trusted records of the results file, by key."""
    notices: list[str]
    """Lines of the results file that were ignored, one line each."""

    @property
    def todo(self) -> list[tuple[str, Record]]:
        return [(k, p) for k, p in self.everything if k not in self.done]


def plan(spec: SweepSpec, out_dir: str | Path) -> SweepPlan:
    """Read the inputs and the results file; nothing runs and nothing is written."""
    digests = input_digests(spec)
    located = [_with_contents(p, digests) for p in points(spec)]
    everything = [(record_key(p), p) for p in located]
    results = load_results(Path(out_dir) / RESULTS)
    return SweepPlan(everything, results.records, results.summary())


def sweep(
    spec: SweepSpec,
    out_dir: str | Path,
    *,
    backend: str = "local",
    workers: int | None = None,
    address: str | None = None,
    on_record: Callable[[Record, int, int], None] | None = None,
    on_notice: Callable[[str], None] | None = None,
) -> list[Record]:
    """Run every point not yet in ``out_dir/results.jsonl``; return all records in point order.

    ``on_record(record, done, total)`` is called as each point finishes (progress bars),
    ``on_notice(line)`` for each results line that is ignored (invalid, stale format).
    A second sweep into the same folder while this one runs fails at once.
    """
    from imcsim.studies.executors import closing_iterator, make_executor

    out = check_output_dir(out_dir)
    executor = make_executor(backend, workers=workers, address=address)
    with exclusive(out):
        path = out / RESULTS
        repair_torn_line(path)
        work = plan(spec, out)
        for notice in work.notices:
            if on_notice is not None:
                on_notice(notice)
        done, keys = dict(work.done), {point_key(p): k for k, p in work.everything}
        finished = len(work.everything) - len(work.todo)
        runs = executor.run([p for _, p in work.todo])
        with path.open("a") as handle, closing_iterator(runs):
            for record in runs:
                key = keys[point_key(record)]
                record = {"key": key, **record}
                record = append_record(handle, record)
                done[key] = record
                finished += 1
                if on_record is not None:
                    on_record(record, finished, len(work.everything))
    return [done[k] for k, _ in work.everything]


def pending(spec: SweepSpec, out_dir: str | Path) -> int:
    """Points of ``spec`` not yet (validly) in the results file."""
    return len(plan(spec, out_dir).todo)


def read_results(path: str | Path) -> list[Record]:
    """The trusted records of a results file, one per key (ignored lines are dropped)."""
    return list(load_results(path).records.values())


def select(records: Iterable[Record], **where: Any) -> list[Record]:
    """Records whose fields equal every ``where`` value."""
    return [r for r in records if all(r.get(k) == v for k, v in where.items())]
