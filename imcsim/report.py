"""``NetworkReport``: per-layer mapping rows, totals, table / CSV / JSON output."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from imcsim.hardware import ChipConfig
from imcsim.mappers.base import LayerMapping


@dataclass(frozen=True)
class NetworkReport:
    """Every layer's mapping on one chip, plus the im2col baseline for speedups."""

    model: str
    chip: ChipConfig
    mapper: str
    mappings: tuple[LayerMapping, ...]
    baseline_cycles: tuple[int, ...]
    """im2col computing cycles of each layer (the speedup reference)."""
    unmapped: tuple[str, ...] = ()
    """Modules the extractor met but cannot place on a crossbar (name: reason)."""
    extras: dict[str, tuple[dict[str, Any], ...]] = field(default_factory=dict)
    """Per-layer columns added by later stages (cost, simulation), keyed by stage."""
    extra_totals: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Network totals of later stages, keyed by stage; they override plain sums."""

    @property
    def cycles(self) -> int:
        return sum(m.cycles for m in self.mappings)

    @property
    def latency_cycles(self) -> int:
        return sum(m.latency_cycles for m in self.mappings)

    @property
    def speedup(self) -> float:
        """Total im2col cycles / this mapping's critical-path cycles."""
        return sum(self.baseline_cycles) / self.latency_cycles

    @property
    def utilization(self) -> float:
        """Weight cells / cells of all tiles used (tile-weighted mean)."""
        used = sum(m.tiles * m.array.cells for m in self.mappings)
        return sum(m.weight_cells for m in self.mappings) / used

    def rows(self) -> list[dict[str, Any]]:
        """One flat record per layer."""
        rows = []
        for i, (m, base) in enumerate(zip(self.mappings, self.baseline_cycles)):
            row = m.summary()
            row["speedup"] = base / m.latency_cycles if m.latency_cycles else None  # fully overlapped
            for stage in self.extras.values():
                row.update(stage[i])
            rows.append(row)
        return rows

    def total(self) -> dict[str, Any]:
        """Network totals (cycles, speedup vs im2col, utilization, and stage totals)."""
        rows = self.rows()
        total: dict[str, Any] = {
            "model": self.model,
            "mapper": self.mapper,
            "array": self.chip.array.label,
            "layers": len(self.mappings),
            "cycles": self.cycles,
            "latency_cycles": self.latency_cycles,
            "im2col_cycles": sum(self.baseline_cycles),
            "speedup": self.speedup,
            "utilization": self.utilization,
            "tiles": sum(m.tiles for m in self.mappings),
            "n_arrays": self.chip.n_arrays,
            "fits_on_chip": _fits(self.mappings, self.chip.n_arrays),
            "params": sum(m.layer.nonzero_params for m in self.mappings),
            "macs": sum(m.layer.macs for m in self.mappings),
        }
        for key in _summable(rows) - total.keys():
            total[key] = sum(r[key] for r in rows)
        for stage in self.extra_totals.values():
            total.update(stage)
        return total

    def with_stage(
        self, stage: str, rows: list[dict[str, Any]], total: dict[str, Any] | None = None
    ) -> NetworkReport:
        """A copy with per-layer columns (and totals) of a later stage, e.g. ``cost``."""
        if len(rows) != len(self.mappings):
            raise ValueError(f"stage {stage!r}: {len(rows)} rows for {len(self.mappings)} layers")
        extras = {**self.extras, stage: tuple(rows)}
        totals = {**self.extra_totals, stage: dict(total or {})}
        return replace(self, extras=extras, extra_totals=totals)

    def as_record(self) -> dict[str, Any]:
        """One flat record (the shape of a sweep record): totals plus per-layer cycles."""
        record = self.total()
        record["layer_cycles"] = [[m.layer.name, m.latency_cycles] for m in self.mappings]
        return record

    def to_dict(self) -> dict[str, Any]:
        return {"layers": self.rows(), "total": self.total(), "unmapped": list(self.unmapped)}

    def to_json(self, path: str | Path | None = None) -> str:
        text = json.dumps(self.to_dict(), indent=2)
        if path is not None:
            Path(path).write_text(text)
        return text

    def to_csv(self, path: str | Path | None = None) -> str:
        rows = self.rows()
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
        if path is not None:
            Path(path).write_text(buf.getvalue())
        return buf.getvalue()

    def __str__(self) -> str:
        return format_table(self.rows(), TABLE_COLUMNS, self.total(), title=self.title)

    @property
    def title(self) -> str:
        return f"{self.model} on {self.chip.array.label} ({self.chip.name}), mapper {self.mapper}"


def _fits(mappings: tuple[LayerMapping, ...], n_arrays: int | None) -> bool | None:
    """Whether every layer's tiles stay resident at once (None: array count not given)."""
    return None if n_arrays is None else sum(m.tiles for m in mappings) <= n_arrays


TABLE_COLUMNS = ("name", "layer", "mapper", "window", "tiles", "cycles", "speedup", "utilization")
_EXTENSIVE = ("energy_pj", "latency_ns", "area_um2", "sim_cycles", "adc_conversions")


def _summable(rows: list[dict[str, Any]]) -> set[str]:
    """Per-layer extra columns whose network total is their sum (units in the name)."""
    keys = set(rows[0]) if rows else set()
    return {k for k in keys if k.endswith(("_pj", "_ns", "_um2")) or k in _EXTENSIVE}


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def format_table(
    rows: list[dict[str, Any]], columns: tuple[str, ...], total: dict[str, Any] | None = None,
    title: str = "",
) -> str:
    """Plain-text table with right-aligned numbers and an optional total line."""
    cols = [c for c in columns if rows and c in rows[0] and any(r[c] is not None for r in rows)]
    body = [[_fmt(r[c]) for c in cols] for r in rows]
    if total is not None:
        body.append([_fmt(total.get(c, "")) if c != cols[0] else "TOTAL" for c in cols])
    widths = [max(len(c), *(len(line[i]) for line in body)) for i, c in enumerate(cols)]
    numeric = [any(isinstance(r[c], (int, float)) for r in rows) for c in cols]

    def line(cells: list[str]) -> str:
        return "  ".join(
            cell.rjust(w) if num else cell.ljust(w) for cell, w, num in zip(cells, widths, numeric)
        )

    out = [title] if title else []
    out += [line(cols), line(["-" * w for w in widths])]
    out += [line(r) for r in body[:-1]] if total is not None else [line(r) for r in body]
    if total is not None:
        out += [line(["-" * w for w in widths]), line(body[-1])]
    return "\n".join(out)
