"""The compression part of a study, and the short summary ``imcsim run`` prints.

Every compression family at one kept fraction, each with the mapper that exploits it
(the method names of ``imcsim.compression``: pruning with row skipping — PAIRS,
ISLPED 2023 — and low-rank / group low-rank with R then the block-diagonal I_N ⊗ L —
Jeon, Rhe, Ko, DATE 2025): computing cycles on one chip and, with the model's shipped
weights, float, ideal-chip and on-chip accuracy at one ADC setting after a short
fine-tune (``accuracy.prepare``; ``imcsim accuracy-study`` is the thorough version).
One record per method is appended to ``compression.jsonl`` as it finishes, so a rerun
skips the methods already done.  Methods sharing a compressed model (low-rank under
SDK and VW-SDK) are fine-tuned once; different models run on local worker processes.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from imcsim._config import StrictModel
from imcsim.compression import METHODS, method
from imcsim.hardware import chip_presets, parse_array
from imcsim.mappers import mapper_names
from imcsim.plotting import render_charts
from imcsim.report import NetworkReport, format_table
from imcsim.studies.results import append_record, content_key, load_results, repair_torn_line

if TYPE_CHECKING:
    from imcsim.studies.pictures import Picture, PictureSpec

__all__ = ["RESULTS", "CompressionStudy", "StudyExtras", "compression_table", "highlights",
           "mapper_of", "method_points", "run_compression", "run_extras", "tile_reports"]

Record = dict[str, Any]
RESULTS = "compression.jsonl"


class CompressionStudy(StrictModel):
    """Compression methods at one kept fraction: cycles, and accuracy on one chip setting."""

    model: str = "resnet20"
    """Built-in model (accuracy needs its shipped checkpoint)."""
    methods: tuple[str, ...] = ("dense-im2col", "dense-vw-sdk", "pruned-unstructured-sdk",
                                "pruned-pattern-sdk", "low-rank-sdk", "low-rank-vw-sdk",
                                "group-low-rank-sdk")
    """Method names of ``imcsim.compression.METHODS`` (transform + mapper)."""
    keep: float = Field(default=0.5, gt=0, le=1)
    """Fraction of the conv/linear weights every compressed method keeps."""
    chip: str = "default"
    """Chip preset (array bits, precisions); its array size is replaced by ``array``."""
    array: str = "128x128"
    accuracy: bool = True
    """Also measure float, ideal-chip and on-chip accuracy."""
    adc_bits: int = Field(default=6, ge=1)
    """ADC resolution of the on-chip accuracy."""
    slicing: Literal["full", "none"] = "none"
    """Crossbar simulation: bit-serial inputs × bit-sliced weights (``full``), or whole
    quantized values with one ADC read per tile column (``none``, ~30× faster)."""
    images: int = Field(default=100, ge=1)
    """Test images per accuracy (a seeded random subset)."""
    finetune_epochs: int = Field(default=1, ge=0)
    """Fine-tuning epochs of every compressed model (0: none; dense is never fine-tuned)."""
    finetune_images: int | None = Field(default=2048, ge=1)
    """Training images fine-tuning sees (a seeded random subset; None: all)."""
    workers: int | None = Field(default=None, ge=1)
    """Worker processes (default: one per core, at most one per compressed model)."""

    @field_validator("methods")
    @classmethod
    def _known_methods(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [m for m in value if m not in METHODS]
        if unknown or not value:
            raise ValueError(f"unknown method {unknown[0] if unknown else ''!r} "
                             f"(known: {', '.join(METHODS)})")
        if len(set(value)) != len(value):
            raise ValueError(f"repeats a method: {list(value)}")
        return value

    @model_validator(mode="after")
    def _check(self) -> CompressionStudy:
        parse_array(self.array)
        if self.chip and self.chip not in chip_presets() and not self.chip.endswith(".toml"):
            raise ValueError(f"unknown chip preset {self.chip!r} (known: {', '.join(chip_presets())})")
        missing = [mapper_of(m) for m in self.methods if mapper_of(m) not in mapper_names()]
        if missing:
            raise ValueError(f"method needs mapper {missing[0]!r}, which is not registered")
        return self


def mapper_of(name: str) -> str:
    """The registered mapper of a method (low-rank methods: ``low-rank-<R's mapper>``)."""
    m = method(name)
    return f"low-rank-{m.mapper}" if m.factorised else m.mapper


def method_points(spec: CompressionStudy) -> list[Record]:
    """One point (the inputs of one record) per method, in ``spec.methods`` order."""
    points = []
    for name in spec.methods:
        transform = method(name).transform
        dense = transform == "dense"
        points.append({
            "model": spec.model, "method": name, "compression": transform,
            "keep": 1.0 if dense else spec.keep, "chip": spec.chip, "array": spec.array,
            "mapper": mapper_of(name), "measure_accuracy": spec.accuracy,
            "adc_bits": spec.adc_bits if spec.accuracy else None,
            "slicing": spec.slicing if spec.accuracy else None,
            "images": spec.images if spec.accuracy else None,
            "finetune_epochs": 0 if dense or not spec.accuracy else spec.finetune_epochs,
            "finetune_images": None if dense or not spec.accuracy else spec.finetune_images,
        })
    return points


class CompressionRecord(BaseModel):
    """The fields a compression record must carry to be reused (others pass through)."""

    model_config = ConfigDict(strict=True, extra="allow", allow_inf_nan=False)

    key: str = Field(min_length=1)
    method: str
    compression: str
    mapper: str
    keep: float = Field(gt=0, le=1)
    cycles: int = Field(ge=1)
    latency_cycles: int = Field(ge=1)
    params: int = Field(ge=0)
    accuracy: float | None = Field(default=None, ge=0, le=1)
    float_accuracy: float | None = Field(default=None, ge=0, le=1)


def _key(point: Record) -> str:
    """Content key: the point's inputs, the model's weights and the chip's content, the
    code version (``studies.results``) — an edited input is never reused."""
    from imcsim.studies.evaluate import chip_digest, model_digest

    contents = {"model": model_digest(point["model"]), "chip": chip_digest(point["chip"])}
    return content_key({k: point[k] for k in _INPUTS if k in point}, contents)


_INPUTS = ("model", "method", "compression", "keep", "chip", "array", "mapper",
           "measure_accuracy", "adc_bits", "slicing", "images", "finetune_epochs",
           "finetune_images")


def run_compression(
    spec: CompressionStudy, out_dir: str | Path,
    on_record: Callable[[Record, int, int], None] | None = None,
) -> list[Record]:
    """Every method's record (``compression.jsonl`` in ``out_dir``), running the missing ones."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / RESULTS
    done = load_results(path, CompressionRecord).records
    points = method_points(spec)
    keys = [_key(p) for p in points]
    groups: dict[str, list[Record]] = {}
    for key, point in zip(keys, points):
        if key not in done:
            groups.setdefault(point["compression"], []).append({**point, "key": key})
    todo = sorted(groups.values(), key=lambda g: g[0]["compression"] == "dense")
    workers = min(spec.workers or os.cpu_count() or 1, len(todo)) if todo else 1
    repair_torn_line(path)
    with path.open("a") as handle:
        for records in _execute(todo, workers):
            for record in records:
                record = append_record(handle, record)
                done[record["key"]] = record
                if on_record is not None:
                    on_record(record, len(done), len(points))
    return [done[key] for key in keys]


def _execute(groups: list[list[Record]], workers: int):
    """Each group's records, in this process (one worker, cycles only) or on spawned
    processes whose CPU kernels are pinned before torch loads (``studies.reproducible``):
    accuracy is the same on every AVX2 machine, whatever its cores and load."""
    from imcsim.studies.compression_eval import evaluate_methods
    from imcsim.studies.reproducible import pin_kernel_env

    if workers <= 1 and not any(p["measure_accuracy"] for group in groups for p in group):
        for group in groups:
            yield evaluate_methods(group, None)
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max(workers, 1), mp_context=context,
                             initializer=pin_kernel_env) as pool:
        futures = [pool.submit(evaluate_methods, group, 1) for group in groups]
        for future in as_completed(futures):
            yield future.result()


TABLE_COLUMNS = ("method", "mapper", "params", "cycles", "speedup", "utilization",
                 "float_accuracy", "ideal_accuracy", "accuracy")


def compression_table(records: list[Record]) -> str:
    """The methods side by side (accuracy columns only when measured)."""
    first = records[0]
    tuned = [r for r in records if r["compression"] != "dense"]
    title = f"{first['model']}" + (f" at keep {tuned[0]['keep']:g}" if tuned else "")
    title += f" on {first['array']} ({first['chip'] or 'mapping chip'})"
    if first.get("adc_bits"):
        title += (f"; accuracy at {first['adc_bits']}-bit ADC on {first['images']} test images, "
                  f"compressed models fine-tuned {_finetune_text(tuned)}")
    return format_table(records, TABLE_COLUMNS, title=title)


def _finetune_text(tuned: list[Record]) -> str:
    if not tuned or not tuned[0].get("finetune_epochs"):
        return "not at all"
    images = tuned[0].get("finetune_images")
    return (f"{tuned[0]['finetune_epochs']} epoch(s) on "
            f"{f'{images:,}' if images else 'all'} training images")


def tile_reports(sweep_records: list[Record]) -> list[NetworkReport]:
    """The reports of the tile-cycles chart: im2col and the fastest mapper of the first
    model, at the smallest array where a mapper beats im2col (else the smallest array),
    mapped again (sweep records do not keep placements)."""
    from imcsim.network import map_network
    from imcsim.studies.evaluate import cached_workload, point_chip

    first = sweep_records[0]
    same = [r for r in sweep_records
            if all(r[k] == first[k] for k in ("model", "compression", "keep", "chip"))]
    arrays = sorted({r["array"] for r in same}, key=lambda a: parse_array(a).cells)
    by_array = {a: sorted((r for r in same if r["array"] == a),
                          key=lambda r: (r["latency_cycles"], r["mapper"] == "im2col"))
                for a in arrays}
    beaten = [a for a in arrays if by_array[a][0]["mapper"] != "im2col"
              and any(r["mapper"] == "im2col" and r["latency_cycles"] > by_array[a][0]["latency_cycles"]
                      for r in by_array[a])]
    here = by_array[beaten[0] if beaten else arrays[0]]
    chosen = [r for r in here if r["mapper"] == "im2col" and r is not here[0]] + [here[0]]
    work = cached_workload(first["model"], first["compression"], first["keep"])
    return [map_network(work.layers, r["mapper"], point_chip(r), model=work.name) for r in chosen]


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"


def _fastest_dense(records: list[Record]) -> str:
    """Per array: the mapper(s) with the fewest cycles and their speedup over im2col."""
    parts = []
    for array in dict.fromkeys(r["array"] for r in records):
        here = [r for r in records if r["array"] == array]
        best = min(r["latency_cycles"] for r in here)
        ties = [r["mapper"] for r in here if r["latency_cycles"] == best]
        who = "all tie" if len(ties) == len(here) > 1 else "/".join(ties)
        speedup = next(r["speedup"] for r in here if r["latency_cycles"] == best)
        parts.append(f"{array} {who} {speedup:.2f}x")
    return "fastest dense mapper per array (speedup over im2col): " + ", ".join(parts)


def _fastest_method(records: list[Record]) -> str:
    fastest = min(records, key=lambda r: r["latency_cycles"])
    line = (f"fastest method at keep {fastest['keep']:g} on {fastest['array']}: "
            f"{fastest['method']} ({fastest['latency_cycles']:,} cycles, "
            f"{fastest['speedup']:.2f}x dense im2col)")
    if fastest.get("accuracy") is None:
        return line
    line += (f"; keeps {_percent(fastest['accuracy'])} on-chip accuracy at "
             f"{fastest['adc_bits']}-bit ADC (float {_percent(fastest['float_accuracy'])}")
    dense = [r for r in records if r["compression"] == "dense"]
    if dense:
        ref = max(dense, key=lambda r: r["accuracy"])
        line += f"; dense model under {ref['mapper']}: {_percent(ref['accuracy'])} on chip"
    return line + ")"


def highlights(sweep_records: list[Record], compressed: list[Record],
               picture: Picture | None = None) -> list[str]:
    """A few lines: the fastest dense mapper per array, the fastest compression method and
    the accuracy it keeps, and where the mapping picture is."""
    lines = []
    if sweep_records:
        lines.append(_fastest_dense(sweep_records))
    if compressed:
        lines.append(_fastest_method(compressed))
    if picture is not None:
        cycles = ", ".join(f"{m.mapper} {m.cycles:,}" for m in picture.mappings)
        lines.append(f"mapping picture: {picture.path} ({picture.mappings[0].layer.name} on "
                     f"{picture.mappings[0].array.label}; cycles {cycles})")
    return lines


@dataclass
class StudyExtras:
    """What a recipe adds to its sweep: compression records, pictures, charts, summary."""

    charts: list[Path] = field(default_factory=list)
    compressed: list[Record] = field(default_factory=list)
    table: str = ""
    picture: Picture | None = None
    highlights: list[str] = field(default_factory=list)


def run_extras(
    charts: Sequence[str], compression: CompressionStudy | None, pictures: PictureSpec | None,
    out_dir: Path, sweep_records: list[Record],
    on_record: Callable[[Record, int, int], None] | None = None,
) -> StudyExtras:
    """The tile-cycles chart, the compression part, the mapping pictures and the summary
    of a recipe (its ``charts``, ``[compression]`` and ``[pictures]``) whose sweep gave
    ``sweep_records`` (files under ``out_dir``)."""
    from imcsim.studies.pictures import draw_picture

    extras = StudyExtras()
    if "tile_cycles" in charts and sweep_records:
        extras.charts += render_charts(tile_reports(sweep_records), out_dir, ["tile_cycles"])
    if compression is not None:
        extras.compressed = run_compression(compression, out_dir, on_record)
        extras.table = compression_table(extras.compressed)
        (out_dir / "compression.txt").write_text(extras.table + "\n")
        wanted = [c for c in charts if c in ("compression", "pareto")]
        extras.charts += render_charts(extras.compressed, out_dir, wanted)
    if pictures is not None and "placement" in charts:
        extras.picture = draw_picture(pictures, out_dir)
        extras.charts.append(extras.picture.path)
    extras.highlights = highlights(sweep_records, extras.compressed, extras.picture)
    (out_dir / "highlights.txt").write_text("\n".join(extras.highlights) + "\n")
    return extras
