"""What every chart shares: records from reports, a fresh axis, labels of series."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from imcsim.placement_view import layer_tiles
from imcsim.report import NetworkReport, Record

__all__ = ["LINESTYLES", "MARKERS", "RecordsLike", "as_records", "cells", "new_ax", "series_label",
           "varying"]

MARKERS = "osD^v<>pXh*"
LINESTYLES = ("-", "--", ":", "-.")
RecordsLike = Sequence[NetworkReport | Record]
"""What every chart takes: reports or network-level records."""
_DEFAULTS: Record = {"compression": "dense", "keep": 1.0, "chip": "", "adc_bits": None}


def as_records(data: RecordsLike) -> list[Record]:
    """Network-level records of ``data``: a report becomes its ``summary_record()``; keys
    a chart groups by (compression, keep, chip, adc_bits) get neutral defaults."""
    out = []
    for item in data:
        record = item.summary_record() if isinstance(item, NetworkReport) else item
        if isinstance(item, NetworkReport):
            record["chip"] = item.chip.name
            record["layer_tiles"] = layer_tiles(item.mappings)
        out.append({**_DEFAULTS, **record})
    return out


def new_ax(ax: Axes | None, size: tuple[float, float] = (6.4, 4.2)) -> Axes:
    """``ax`` itself, or the axis of a new figure of ``size`` inches."""
    return ax if ax is not None else plt.figure(figsize=size, layout="constrained").add_subplot()


def cells(label: str) -> int:
    """Cells of an array label ``RxC`` (sorts array sizes)."""
    rows, cols = label.lower().split("x")
    return int(rows) * int(cols)


def series_label(record: Record, keys: Sequence[str]) -> str:
    """The label of a record's series: its values of ``keys``."""
    parts = []
    for key in keys:
        value = record[key]
        if key == "compression" and value != "dense":
            value = f"{value} (keep {record['keep']:g})"
        parts.append(str(value))
    return " / ".join(parts)


def varying(records: list[Record], keys: Sequence[str]) -> list[str]:
    """The ``keys`` whose values differ across ``records``."""
    return [k for k in keys if len({str(r.get(k)) for r in records}) > 1]
