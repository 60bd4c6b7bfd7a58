"""``NetworkReport``: every layer's mapping, typed cost and simulation results, totals,
and one flattening (``to_records``) for JSONL, CSV, tables and charts."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from imcsim.capacity import ResidentLayer, capacity_totals
from imcsim.hardware import ChipConfig
from imcsim.mappers.mapping import LayerMapping
from imcsim.matmul import MatmulResult, matmul_totals

__all__ = ["MATMUL_COLUMNS", "NetworkReport", "Record", "StageResult", "StageTotal",
           "TABLE_COLUMNS", "format_table", "matmul_table"]

Record = dict[str, Any]


class StageResult(Protocol):
    """A typed per-layer result of a later stage (``cost.LayerCost``, ``cyclesim.LayerSim``)."""

    def row(self) -> Record: ...


class StageTotal(Protocol):
    """A typed network total of a later stage (``cost.CostTotals``, ``cyclesim.SimTotals``)."""

    def as_dict(self) -> Record: ...


@dataclass(frozen=True)
class NetworkReport:
    """Every layer's mapping on one chip, plus the im2col baseline for speedups, plus the
    typed results of the stages run on it (cost model, cycle simulator)."""

    model: str
    chip: ChipConfig
    mapper: str
    mappings: tuple[LayerMapping, ...]
    baseline_cycles: tuple[int, ...]
    """im2col computing cycles of each layer (the speedup reference)."""
    unmapped: tuple[str, ...] = ()
    """Operations the extractor met but cannot place on a crossbar (name: reason)."""
    costs: tuple[StageResult, ...] | None = None
    """Per-layer ``cost.LayerCost`` (``estimate_network``)."""
    cost_total: StageTotal | None = None
    sims: tuple[StageResult, ...] | None = None
    """Per-layer ``cyclesim.LayerSim`` (``simulate_activations`` / ``simulate_network``)."""
    sim_total: StageTotal | None = None
    matmuls: tuple[MatmulResult, ...] = ()
    """Activation×activation products, placed where the chip puts them (``imcsim.matmul``)."""

    # -- stages ---------------------------------------------------------------------
    def _check_stage(self, stage: str, results: tuple) -> None:
        if len(results) != len(self.mappings):
            raise ValueError(f"{stage}: {len(results)} results for {len(self.mappings)} layers")

    def with_costs(self, costs: tuple[StageResult, ...], total: StageTotal) -> NetworkReport:
        self._check_stage("costs", costs)
        return replace(self, costs=tuple(costs), cost_total=total)

    def with_sims(self, sims: tuple[StageResult, ...], total: StageTotal) -> NetworkReport:
        self._check_stage("sims", sims)
        return replace(self, sims=tuple(sims), sim_total=total)

    # -- totals -----------------------------------------------------------------------
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

    @property
    def title(self) -> str:
        return f"{self.model} on {self.chip.array.label} ({self.chip.name}), mapper {self.mapper}"

    def total(self) -> Record:
        """Network totals: mapping figures, then each stage's typed totals."""
        m = self.mappings
        total: Record = {
            "model": self.model, "mapper": self.mapper, "array": self.chip.array.label,
            "layers": len(m), "cycles": self.cycles, "latency_cycles": self.latency_cycles,
            "im2col_cycles": sum(self.baseline_cycles), "speedup": self.speedup,
            "utilization": self.utilization, "tiles": sum(x.tiles for x in m),
            "skipped_rows": sum(x.skipped_rows for x in m),
            "index_rows": sum(x.index_rows for x in m),
            "index_bits": sum(x.index_bits for x in m),
            "n_arrays": self.chip.n_arrays,
            "params": sum(x.layer.nonzero_params for x in m), "macs": sum(x.layer.macs for x in m),
            "weights_stored": sum(x.layer.stored_params for x in m),
        }
        total.update(capacity_totals(_resident(m), self.chip.n_arrays, self.chip.reload))
        for stage in (self.cost_total, self.sim_total):
            if stage is not None:
                total.update(stage.as_dict())
        total.update(matmul_totals(self.matmuls, self.chip))
        return total

    # -- flattening -------------------------------------------------------------------
    def rows(self) -> list[Record]:
        """One flat record per layer: mapping, then cost, then simulation columns."""
        rows = []
        for i, (m, base) in enumerate(zip(self.mappings, self.baseline_cycles)):
            row = m.summary()
            row["speedup"] = base / m.latency_cycles if m.latency_cycles else None  # fully overlapped
            row["weights_stored"] = m.layer.stored_params
            row["experts"] = m.layer.experts
            for stage in (self.costs, self.sims):
                if stage is not None:
                    row.update(stage[i].row())
            rows.append(row)
        return rows

    def to_records(self) -> list[Record]:
        """Per-layer records with their context (model, array, chip): JSONL, CSV and the
        per-layer charts read these."""
        context = {"model": self.model, "array": self.chip.array.label, "chip": self.chip.name,
                   "network_mapper": self.mapper}
        return [{**context, **row} for row in self.rows()]

    def summary_record(self) -> Record:
        """One flat network-level record (the shape of a sweep record): totals plus the
        per-layer critical-path cycles; the array-size charts read these."""
        record = self.total()
        record["layer_cycles"] = [[m.layer.name, m.latency_cycles] for m in self.mappings]
        return record

    def to_dict(self) -> Record:
        return {"layers": self.rows(), "matmuls": [r.row() for r in self.matmuls],
                "total": self.total(), "unmapped": list(self.unmapped)}

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
        text = format_table(self.rows(), TABLE_COLUMNS, self.total(), title=self.title)
        return text + matmul_table(self.matmuls)


def _resident(mappings: tuple[LayerMapping, ...]) -> list[ResidentLayer]:
    """Arrays, cells and written rows of each layer (every expert of a routed layer)."""
    out = []
    for m in mappings:
        experts = m.layer.experts
        cells = m.layer.stored_params * m.array.cols_per_weight
        out.append(ResidentLayer(m.layer.name, m.tiles * experts, cells,
                                 min(m.layer.reduction_size, m.array.rows)))
    return out


TABLE_COLUMNS = ("name", "layer", "mapper", "window", "tiles", "cycles", "speedup", "utilization")


MATMUL_COLUMNS = ("name", "layer", "placement", "macs", "cycles", "write_cycles", "latency_ns",
                  "energy_pj")


def matmul_table(matmuls: tuple[MatmulResult, ...]) -> str:
    """The activation products as a second table ("" when there are none)."""
    if not matmuls:
        return ""
    return "\n\nactivation x activation products\n" + format_table(
        [m.row() for m in matmuls], MATMUL_COLUMNS)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def format_table(
    rows: list[Record], columns: tuple[str, ...], total: Record | None = None, title: str = "",
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
