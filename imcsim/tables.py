"""Layer tables: CSV files of layer shapes, the torch-free way into imcsim.

Columns (header required): ``name, kind, in_channels, out_channels, kernel, input,
stride, padding, groups, dilation``.  ``kind`` is ``conv2d`` (default) or ``linear``;
``kernel``/``input``/``stride``/``padding``/``dilation`` take ``3`` or ``3x5``.
Only ``in_channels, out_channels, kernel, input`` are required; lines starting with
``#`` are comments.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from pathlib import Path

from imcsim._data import data_dir, find_preset, read_text
from imcsim.errors import ConfigError
from imcsim.layers import LayerShape, Pair

__all__ = ["MAX_LAYERS", "OPTIONAL", "REQUIRED", "load_layer_table", "parse_layer_table",
           "table_names"]

MAX_LAYERS = 10_000
"""Most layer rows a table may hold (the deepest CNNs and LLMs have a few thousand)."""
_UINT = re.compile(r"[0-9]+", re.ASCII)
REQUIRED = ("in_channels", "out_channels", "kernel", "input")
OPTIONAL = ("name", "kind", "stride", "padding", "groups", "dilation")


def table_names() -> list[str]:
    """Layer tables shipped under ``mappings/networks/``."""
    return sorted(p.stem for p in data_dir("networks").glob("*.csv"))


def _pair(text: str, field: str, where: str) -> Pair:
    parts = [p.strip() for p in text.lower().replace("×", "x").split("x")]
    if len(parts) not in (1, 2) or not all(_UINT.fullmatch(p) for p in parts):
        raise ConfigError(f"{where}: {field}={text!r} is not an int or HxW (ASCII digits)")
    values = [_number(p, field, where) for p in parts]
    return (values[0], values[-1])


def _int(text: str, field: str, where: str) -> int:
    if not _UINT.fullmatch(text.strip()):
        raise ConfigError(
            f"{where}: {field}={text!r} is not a non-negative integer (ASCII digits)"
        )
    return _number(text.strip(), field, where)


def _number(digits: str, field: str, where: str) -> int:
    if len(digits) > 18:
        raise ConfigError(f"{where}: {field}={digits[:20]}… is too large")
    return int(digits)


def _row_to_layer(row: dict[str, str], where: str) -> LayerShape:
    missing = [c for c in REQUIRED if not (row.get(c) or "").strip()]
    if missing:
        raise ConfigError(f"{where}: missing {', '.join(missing)}")
    kind = (row.get("kind") or "conv2d").strip()
    if kind not in ("conv2d", "linear"):
        raise ConfigError(f"{where}: kind={kind!r} (expected conv2d or linear)")
    name = (row.get("name") or "").strip() or where
    cin, cout = _int(row["in_channels"], "in_channels", where), _int(row["out_channels"], "out_channels", where)
    opt = {k: (row.get(k) or "").strip() for k in OPTIONAL}
    try:
        if kind == "linear":
            positions = _pair(row["input"], "input", where)
            return LayerShape.linear(cin, cout, positions=positions[0] * positions[1], name=name)
        return LayerShape.conv2d(
            cin, cout, _pair(row["kernel"], "kernel", where), _pair(row["input"], "input", where),
            stride=_pair(opt["stride"] or "1", "stride", where),
            padding=_pair(opt["padding"] or "0", "padding", where),
            dilation=_pair(opt["dilation"] or "1", "dilation", where),
            groups=_int(opt["groups"] or "1", "groups", where), name=name,
        )
    except ConfigError as exc:
        if str(exc).startswith(where):
            raise
        raise ConfigError(f"{where}: {exc}") from None


def _numbered(text: str) -> tuple[list[str], list[int]]:
    """Non-blank, non-comment lines and their 1-based line numbers in ``text``."""
    kept = [(n, ln) for n, ln in enumerate(text.splitlines(), start=1)
            if ln.strip() and not ln.lstrip().startswith("#")]
    return [ln for _, ln in kept], [n for n, _ in kept]


def _rows(lines: list[str], numbers: list[int], source: str) -> Iterator[tuple[int, list[str]]]:
    reader = csv.reader(lines, skipinitialspace=True)
    try:
        for cells in reader:
            yield numbers[reader.line_num - 1], cells
    except csv.Error as exc:
        line = numbers[max(reader.line_num, 1) - 1]
        raise ConfigError(f"{source} line {line}: {exc}") from None


def parse_layer_table(text: str, source: str = "table") -> list[LayerShape]:
    """Parse CSV text into layer shapes; errors name the file and its real line number."""
    lines, numbers = _numbered(text)
    if len(lines) > MAX_LAYERS + 1:
        raise ConfigError(f"{source}: {len(lines) - 1} layer rows exceed the limit of "
                          f"{MAX_LAYERS}")
    rows = _rows(lines, numbers, source)
    header = [h.strip() for h in next(rows, (0, []))[1]]
    unknown = set(header) - set(REQUIRED) - set(OPTIONAL)
    if unknown or not set(REQUIRED) <= set(header) or len(set(header)) != len(header):
        raise ConfigError(
            f"{source}: header must hold {', '.join(REQUIRED)} (+ optional {', '.join(OPTIONAL)}),"
            f" each once; got {', '.join(header) or 'nothing'}"
        )
    layers = []
    for number, cells in rows:
        if len(cells) > len(header):
            raise ConfigError(f"{source} line {number}: more cells than header columns")
        row = dict(zip(header, cells))
        layers.append(_row_to_layer(row, f"{source} line {number}"))
    if not layers:
        raise ConfigError(f"{source}: no layer rows")
    return layers


def load_layer_table(name_or_path: str | Path) -> list[LayerShape]:
    """Layer shapes from a CSV file, or a shipped table by name (``vgg13``, ``resnet18``…)."""
    path = find_preset("networks", name_or_path, ".csv", "layer table")
    return parse_layer_table(read_text(path, "layer table"), source=path.name)
