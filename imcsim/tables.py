"""Layer tables: CSV files of layer shapes, the torch-free way into imcsim.

Columns (header required): ``name, kind, in_channels, out_channels, kernel, input,
stride, padding, groups, dilation, output_padding, cell, factor_of, factor_role``.
``kernel``/``input``/``stride``/``padding``/``dilation`` take ``3`` or ``3x5``.
Only ``in_channels, out_channels, kernel, input`` are required; lines starting with
``#`` are comments.  Layer names key per-layer records and charts, so a name used twice
is an error naming both lines; a row without a name is named by its place
(``t.csv line 7``), which is unique.  Each ``kind`` is given in PyTorch's terms:

* ``conv2d`` (default), ``conv1d`` (kernel ``1xK``, input ``1xL``, stride/padding/
  dilation ``1xS``) — as ``nn.Conv2d``/``nn.Conv1d``;
* ``linear`` — in/out features, input ``1xTOKENS``;
* ``conv_transpose2d`` — as ``nn.ConvTranspose2d`` (with ``output_padding``);
* ``rnn`` — ``cell`` (lstm, gru, rnn), in_channels = input size, out_channels = hidden
  size, input ``1xSTEPS``;
* ``matmul`` — an activation product per group (head): in_channels = reduction,
  out_channels = columns, input ``1xROWS``, groups = heads.

``format_layer_table`` writes this format (``imcsim export-layers``); reading it back
gives the same ``LayerShape``s (masks of pruned weights are not part of the format).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

from imcsim._data import data_dir, find_preset, read_text
from imcsim.errors import ConfigError, ImcsimError
from imcsim.layers import GATES, LayerShape, Pair

__all__ = ["COLUMNS", "MAX_LAYERS", "OPTIONAL", "REQUIRED", "format_layer_table", "layer_row",
           "load_layer_table", "parse_layer_table", "table_names"]

MAX_LAYERS = 10_000
"""Most layer rows a table may hold (the deepest CNNs and LLMs have a few thousand)."""
_UINT = re.compile(r"[0-9]+", re.ASCII)
REQUIRED = ("in_channels", "out_channels", "kernel", "input")
OPTIONAL = ("name", "kind", "stride", "padding", "groups", "dilation", "output_padding", "cell",
            "factor_of", "factor_role")
COLUMNS = ("name", "kind", *REQUIRED, "stride", "padding", "groups", "dilation",
           "output_padding", "cell", "factor_of", "factor_role")


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
    if kind not in _BUILDERS:
        raise ConfigError(f"{where}: kind={kind!r} (expected one of {', '.join(_BUILDERS)})")
    name = (row.get("name") or "").strip() or where
    opt = {k: (row.get(k) or "").strip() for k in OPTIONAL}
    cin, cout = _int(row["in_channels"], "in_channels", where), _int(row["out_channels"], "out_channels", where)
    geometry = {
        "kernel": _pair(row["kernel"], "kernel", where), "input": _pair(row["input"], "input", where),
        "stride": _pair(opt["stride"] or "1", "stride", where),
        "padding": _pair(opt["padding"] or "0", "padding", where),
        "dilation": _pair(opt["dilation"] or "1", "dilation", where),
        "output_padding": _pair(opt["output_padding"] or "0", "output_padding", where),
        "groups": _int(opt["groups"] or "1", "groups", where), "cell": opt["cell"],
    }
    try:
        layer = _BUILDERS[kind](cin, cout, geometry, name)
        if opt["factor_of"] or opt["factor_role"]:
            layer = LayerShape.parse({**layer.model_dump(), "factor_of": opt["factor_of"] or None,
                                      "factor_role": opt["factor_role"] or None})
    except (ImcsimError, ValueError) as exc:
        if isinstance(exc, ConfigError) and str(exc).startswith(where):
            raise
        raise ConfigError(f"{where}: {' '.join(str(exc).split())}") from None
    return layer  # type: ignore[return-value]


def _conv2d(cin: int, cout: int, g: dict, name: str) -> LayerShape:
    return LayerShape.conv2d(cin, cout, g["kernel"], g["input"], stride=g["stride"],
                             padding=g["padding"], dilation=g["dilation"], groups=g["groups"],
                             name=name)


def _conv1d(cin: int, cout: int, g: dict, name: str) -> LayerShape:
    return LayerShape.conv1d(cin, cout, g["kernel"][1], g["input"][1], g["stride"][1],
                             g["padding"][1], g["dilation"][1], g["groups"], name=name)


def _linear(cin: int, cout: int, g: dict, name: str) -> LayerShape:
    return LayerShape.linear(cin, cout, positions=g["input"][0] * g["input"][1], name=name)


def _transposed(cin: int, cout: int, g: dict, name: str) -> LayerShape:
    return LayerShape.conv_transpose2d(cin, cout, g["kernel"], g["input"], g["stride"],
                                       g["padding"], g["output_padding"], g["dilation"],
                                       g["groups"], name=name)


def _rnn(cin: int, cout: int, g: dict, name: str) -> LayerShape:
    if g["cell"] not in GATES:
        raise ConfigError(f"cell={g['cell']!r} (expected one of {', '.join(GATES)})")
    return LayerShape.rnn(g["cell"], cin, cout, g["input"][0] * g["input"][1], name=name)


def _matmul(cin: int, cout: int, g: dict, name: str) -> LayerShape:
    return LayerShape.matmul(cin, cout, g["input"][0] * g["input"][1], g["groups"], name=name)


_BUILDERS = {"conv2d": _conv2d, "conv1d": _conv1d, "linear": _linear,
             "conv_transpose2d": _transposed, "rnn": _rnn, "matmul": _matmul}


def _xy(pair: tuple[int, int]) -> str:
    return str(pair[0]) if pair[0] == pair[1] else f"{pair[0]}x{pair[1]}"


def layer_row(layer: LayerShape) -> dict[str, str]:
    """One CSV row of ``layer`` in PyTorch's terms (the inverse of the reader)."""
    row = {c: "" for c in COLUMNS}
    row.update(name=layer.name, kind=layer.kind, input=_xy(layer.input_size),
               factor_of=layer.factor_of or "", factor_role=layer.factor_role or "")
    if layer.kind in ("linear", "rnn", "matmul"):
        row.update(kernel="1", input=f"1x{layer.input_size[1]}")
    if layer.kind == "linear":
        row.update(in_channels=str(layer.in_channels), out_channels=str(layer.out_channels))
    elif layer.kind == "rnn":
        row.update(in_channels=str(layer.in_channels - layer.hidden_size),
                   out_channels=str(layer.hidden_size), cell=layer.cell or "")
    elif layer.kind == "matmul":
        row.update(in_channels=str(layer.in_per_group), out_channels=str(layer.out_per_group),
                   groups=str(layer.groups))
    elif layer.kind == "conv_transpose2d":
        t = layer.transposed
        assert t is not None
        row.update(in_channels=str(layer.in_channels), out_channels=str(t.out_channels),
                   kernel=_xy(t.kernel_size), stride=_xy(t.stride), padding=_xy(t.padding),
                   dilation=_xy(t.dilation), output_padding=_xy(t.output_padding),
                   groups=str(layer.groups))
    else:
        row.update(in_channels=str(layer.in_channels), out_channels=str(layer.out_channels),
                   kernel=_xy(layer.kernel_size), stride=_xy(layer.stride),
                   padding=_xy(layer.padding), dilation=_xy(layer.dilation),
                   groups=str(layer.groups))
        if layer.kind == "conv1d":
            row.update(kernel=f"1x{layer.kernel_size[1]}", input=f"1x{layer.input_size[1]}",
                       stride=f"1x{layer.stride[1]}", padding=f"0x{layer.padding[1]}",
                       dilation=f"1x{layer.dilation[1]}")
    return row


def format_layer_table(layers: Sequence[LayerShape], comments: Sequence[str] = ()) -> str:
    """CSV text of ``layers`` (``# comment`` lines first) that ``parse_layer_table`` reads back."""
    buf = io.StringIO()
    for line in comments:
        buf.write(f"# {' '.join(line.split())}\n")
    writer = csv.DictWriter(buf, fieldnames=list(COLUMNS), lineterminator="\n")
    writer.writeheader()
    writer.writerows(layer_row(layer) for layer in layers)
    return buf.getvalue()


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
    layers, seen = [], {}
    for number, cells in rows:
        if len(cells) > len(header):
            raise ConfigError(f"{source} line {number}: more cells than header columns")
        row = dict(zip(header, cells))
        layers.append(_row_to_layer(row, f"{source} line {number}"))
        first = seen.setdefault(layers[-1].name, number)
        if first != number:
            raise ConfigError(f"{source} line {number}: layer name {layers[-1].name!r} is "
                              f"already used on line {first} (names must be unique)")
    if not layers:
        raise ConfigError(f"{source}: no layer rows")
    return layers


def load_layer_table(name_or_path: str | Path) -> list[LayerShape]:
    """Layer shapes from a CSV file, or a shipped table by name (``vgg13``, ``resnet18``…)."""
    path = find_preset("networks", name_or_path, ".csv", "layer table")
    return parse_layer_table(read_text(path, "layer table"), source=path.name)
