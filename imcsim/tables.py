"""Layer tables: CSV files of layer shapes, the torch-free way into imcsim.

Columns (header required): ``name, kind, in_channels, out_channels, kernel, input,
stride, padding, groups, dilation``.  ``kind`` is ``conv2d`` (default) or ``linear``;
``kernel``/``input``/``stride``/``padding``/``dilation`` take ``3`` or ``3x5``.
Only ``in_channels, out_channels, kernel, input`` are required; lines starting with
``#`` are comments.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from imcsim._data import data_dir, find_preset
from imcsim.errors import ConfigError, ImcsimError
from imcsim.layers import LayerShape, Pair

REQUIRED = ("in_channels", "out_channels", "kernel", "input")
OPTIONAL = ("name", "kind", "stride", "padding", "groups", "dilation")


def table_names() -> list[str]:
    """Layer tables shipped under ``mappings/networks/``."""
    return sorted(p.stem for p in data_dir("networks").glob("*.csv"))


def _pair(text: str, field: str, where: str) -> Pair:
    parts = text.lower().replace("×", "x").split("x")
    if len(parts) not in (1, 2) or not all(p.strip().isdigit() for p in parts):
        raise ConfigError(f"{where}: {field}={text!r} is not an int or HxW")
    values = [int(p) for p in parts]
    return (values[0], values[-1])


def _int(text: str, field: str, where: str) -> int:
    if not text.strip().isdigit():
        raise ConfigError(f"{where}: {field}={text!r} is not a non-negative integer")
    return int(text)


def _row_to_layer(row: dict[str, str], where: str) -> LayerShape:
    missing = [c for c in REQUIRED if not (row.get(c) or "").strip()]
    if missing:
        raise ConfigError(f"{where}: missing {', '.join(missing)}")
    kind = (row.get("kind") or "conv2d").strip()
    name = (row.get("name") or "").strip() or where
    cin, cout = _int(row["in_channels"], "in_channels", where), _int(row["out_channels"], "out_channels", where)
    if kind == "linear":
        positions = _pair(row["input"], "input", where)
        return LayerShape.linear(cin, cout, positions=positions[0] * positions[1], name=name)
    if kind != "conv2d":
        raise ConfigError(f"{where}: kind={kind!r} (expected conv2d or linear)")
    opt = {k: (row.get(k) or "").strip() for k in OPTIONAL}
    try:
        return LayerShape.conv2d(
            cin, cout, _pair(row["kernel"], "kernel", where), _pair(row["input"], "input", where),
            stride=_pair(opt["stride"] or "1", "stride", where),
            padding=_pair(opt["padding"] or "0", "padding", where),
            dilation=_pair(opt["dilation"] or "1", "dilation", where),
            groups=_int(opt["groups"] or "1", "groups", where), name=name,
        )
    except ImcsimError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def parse_layer_table(text: str, source: str = "table") -> list[LayerShape]:
    """Parse CSV text into layer shapes; errors name the file and line."""
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    reader = csv.DictReader(io.StringIO("\n".join(lines)), skipinitialspace=True)
    header = [h.strip() for h in reader.fieldnames or []]
    reader.fieldnames = header
    unknown = set(header) - set(REQUIRED) - set(OPTIONAL)
    if unknown or not set(REQUIRED) <= set(header):
        raise ConfigError(
            f"{source}: header must hold {', '.join(REQUIRED)} (+ optional {', '.join(OPTIONAL)}); "
            f"got {', '.join(header) or 'nothing'}"
        )
    layers = []
    for number, row in enumerate(reader, start=2):
        if None in row:
            raise ConfigError(f"{source} line {number}: more cells than header columns")
        layers.append(_row_to_layer(row, f"{source} line {number}"))
    if not layers:
        raise ConfigError(f"{source}: no layer rows")
    return layers


def load_layer_table(name_or_path: str | Path) -> list[LayerShape]:
    """Layer shapes from a CSV file, or a shipped table by name (``vgg13``, ``resnet18``…)."""
    path = find_preset("networks", name_or_path, ".csv", "layer table")
    return parse_layer_table(path.read_text(), source=path.name)
