"""Design-space sweeps: every point of a product of axes becomes one flat record.

Records are appended to ``results.jsonl`` as each point finishes (one JSON object per
line, flushed), so a sweep that is killed and restarted skips the points
already done and loses nothing.  Points run on an executor from
``imcsim.studies.executors`` (local processes by default, or Ray).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from pydantic import Field, PositiveInt, field_validator, model_validator

from imcsim._config import StrictModel
from imcsim.compression import TRANSFORMS
from imcsim.errors import ConfigError
from imcsim.hardware import chip_presets, parse_array
from imcsim.mappers import DENSE_MAPPERS, MapperOptions, Schedule, mapper_names
from imcsim.tables import table_names

Record = dict[str, Any]
AXES = ("model", "compression", "keep", "chip", "array", "mapper", "adc_bits", "cell_bits")
RESULTS = "results.jsonl"


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
    adc_bits: tuple[PositiveInt | None, ...] = (None,)
    """ADC resolutions overriding the chip's (None keeps it)."""
    cell_bits: tuple[PositiveInt | None, ...] = (None,)
    """Cell bits overriding the chip's (None keeps it)."""
    schedule: Schedule = "sequential"
    """Layer schedule for latency when a chip has a cost model: sequential or pipelined."""
    mapper_options: MapperOptions = MapperOptions()
    """Options of option-bearing mappers (the low-rank ``r_mapper``, ``l_mode``,
    ``schedule`` of the factor pair), the same for every point."""
    accuracy: bool = False
    """Also measure on-chip accuracy (slow: a functional simulation per point)."""
    images: int = Field(default=200, ge=1)
    """Test images per accuracy point."""

    @field_validator("models", "arrays", "mappers", "compressions", "keep", "chips")
    @classmethod
    def _not_empty(cls, value: tuple) -> tuple:
        if not value:
            raise ValueError("needs at least one value")
        if len(set(value)) != len(value):
            raise ValueError(f"repeats a value: {list(value)}")
        return value

    @field_validator("models")
    @classmethod
    def _known_models(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            if name.startswith("table:"):
                if name.removeprefix("table:") not in table_names():
                    raise ValueError(f"unknown layer table {name!r} (known: {', '.join(table_names())})")
            elif not name.endswith(".csv"):
                from imcsim.studies.models import get_spec

                get_spec(name)
        return value

    @field_validator("compressions")
    @classmethod
    def _known_compressions(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(c != "dense" for c in value):
            unknown = [c for c in value if c not in TRANSFORMS]
            if unknown:
                raise ValueError(f"unknown compression {unknown[0]!r} (known: {', '.join(TRANSFORMS)})")
        return value

    @model_validator(mode="after")
    def _check(self) -> SweepSpec:
        for text in self.arrays:
            parse_array(text)
        unknown = [m for m in self.mappers if m not in mapper_names()]
        if unknown:
            raise ValueError(f"unknown mapper {unknown[0]!r} (known: {', '.join(mapper_names())})")
        bad_keep = [k for k in self.keep if not 0 < k <= 1]
        if bad_keep:
            raise ValueError(f"keep={bad_keep[0]} outside (0, 1]")
        missing = [c for c in self.chips if c and c not in chip_presets() and not c.endswith(".toml")]
        if missing:
            raise ValueError(f"unknown chip preset {missing[0]!r} (known: {', '.join(chip_presets())})")
        return self


def points(spec: SweepSpec) -> list[Record]:
    """Every point of the sweep, in a stable order."""
    compressed = [(c, k) for c in spec.compressions for k in (spec.keep if c != "dense" else (1.0,))]
    out = []
    for model, (comp, keep), chip, array, mapper, adc, cell in itertools.product(
        spec.models, compressed, spec.chips, spec.arrays, spec.mappers, spec.adc_bits,
        spec.cell_bits,
    ):
        out.append({"model": model, "compression": comp, "keep": keep, "chip": chip,
                    "array": array, "mapper": mapper, "adc_bits": adc, "cell_bits": cell,
                    "schedule": spec.schedule, "measure_accuracy": spec.accuracy,
                    "mapper_options": spec.mapper_options.model_dump(),
                    "images": spec.images})
    return out


def point_key(point: Record) -> str:
    """Canonical identity of a point (its inputs), used to skip finished points."""
    return json.dumps({k: point[k] for k in sorted(point) if k in _INPUTS}, sort_keys=True)


_INPUTS = (*AXES, "schedule", "measure_accuracy", "images", "mapper_options")


def read_results(path: Path) -> list[Record]:
    """Complete records of a results file; a torn last line (killed mid-write) is dropped."""
    if not path.exists():
        return []
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    records = []
    for number, line in enumerate(lines, start=1):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if number < len(lines):
                raise ConfigError(f"{path}: line {number} is not JSON") from None
    return records


def _repair(path: Path) -> None:
    """Cut a torn last line so that appended records start on a fresh line."""
    if path.exists():
        text = path.read_text()
        if text and not text.endswith("\n"):
            path.write_text(text[: text.rfind("\n") + 1])


def _append(handle, record: Record) -> None:
    """One line per record, flushed: a killed process loses no finished point."""
    handle.write(json.dumps(record) + "\n")
    handle.flush()


def sweep(
    spec: SweepSpec,
    out_dir: str | Path,
    *,
    backend: str = "local",
    workers: int | None = None,
    address: str | None = None,
    on_record: Callable[[Record, int, int], None] | None = None,
) -> list[Record]:
    """Run every point not yet in ``out_dir/results.jsonl``; return all records in point order.

    ``on_record(record, done, total)`` is called as each point finishes (progress bars).
    """
    from imcsim.studies.executors import make_executor

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / RESULTS
    _repair(path)
    done = {point_key(r): r for r in read_results(path)}
    everything = points(spec)
    todo = [p for p in everything if point_key(p) not in done]
    executor = make_executor(backend, workers=workers, address=address)
    with path.open("a") as handle:
        for record in executor.run(todo):
            _append(handle, record)
            done[point_key(record)] = record
            if on_record is not None:
                on_record(record, len(done), len(everything))
    return [done[point_key(p)] for p in everything]


def pending(spec: SweepSpec, out_dir: str | Path) -> int:
    """Points of ``spec`` not yet in the results file."""
    done = {point_key(r) for r in read_results(Path(out_dir) / RESULTS)}
    return sum(point_key(p) not in done for p in points(spec))


def select(records: Iterable[Record], **where: Any) -> list[Record]:
    """Records whose fields equal every ``where`` value."""
    return [r for r in records if all(r.get(k) == v for k, v in where.items())]
