"""Options and helpers shared by the verbs."""

from __future__ import annotations

import contextlib
import json
import math
import re
import sys
from collections.abc import Callable, Iterator
from enum import StrEnum
from typing import Annotated, Any

import typer

from imcsim.errors import ConfigError

__all__ = [
    "ArrayOpt", "AttentionMacsOpt", "BatchOpt", "CellBitsOpt", "ChipOpt", "ContextOpt",
    "DeviceOpt", "Format", "FormatOpt", "LayersOpt", "MapperOpt", "ModelOpt", "PhaseOpt",
    "GradCompressionOpt", "GradRankOpt", "PlainFormat", "PlainFormatOpt", "WeightBitsOpt",
    "WorkersOpt", "emit", "interrupt_hint", "notice", "on_interrupt", "parallel_config",
    "parse_float", "parse_int", "progress_bar", "run_device", "split_list",
]


class Format(StrEnum):
    """Output formats of ``map`` (the only verb with a per-layer CSV)."""

    table = "table"
    json = "json"
    csv = "csv"


class PlainFormat(StrEnum):
    """Output formats of the verbs that print one record."""

    table = "table"
    json = "json"


ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model", "-m",
        help="Built-in model (resnet20, wrn16-4, vgg-cifar, tiny-vit, resnet18, vgg13), "
        "FILE.py:FACTORY, module.path:FACTORY, or timm:/torchvision:/transformers:NAME "
        "(random weights, never downloaded).",
    ),
]
PhaseOpt = Annotated[
    str, typer.Option("--phase", help="Language models: prefill (the whole --input-shape "
                      "prompt at once) or decode (one new token per sequence against a KV "
                      "cache of --context positions; totals per token).")]
ContextOpt = Annotated[
    int | None, typer.Option("--context", help="Decode: positions already in the KV cache.")]
BatchOpt = Annotated[
    int, typer.Option("--batch", help="Decode: sequences decoded together (one token each "
                      "per step).")]
AttentionMacsOpt = Annotated[
    str, typer.Option("--attention-macs", help="Count attention products full (as torch's "
                      "flop counter does) or causal (the unmasked half, n(n+1)/2 of n^2).")]
MatmulOpt = Annotated[
    str | None,
    typer.Option("--matmul", help="Where activation x activation products (QK^T, A.V) run: "
                 "digital or crossbar (written per input); default: the chip's [matmul] section."),
]
LayersOpt = Annotated[
    str | None, typer.Option("--layers", help="CSV layer table (file, or shipped name: vgg13, resnet18, cnn8).")
]
ArrayOpt = Annotated[
    str | None, typer.Option("--array", "-a", help="Array ROWSxCOLS, e.g. 128x128 (overrides the chip's).")
]
ChipOpt = Annotated[
    str | None,
    typer.Option("--chip", help="Chip preset or TOML file (array bits, precisions, periphery)."),
]
MapperOpt = Annotated[str, typer.Option(
    "--mapper", help="Mapper (vw-sdk, im2col, sdk, pruned-sdk, low-rank-sdk…).")]
CellBitsOpt = Annotated[int | None, typer.Option("--cell-bits", help="Bits per cell.")]
WeightBitsOpt = Annotated[int | None, typer.Option("--weight-bits", help="Bits per weight.")]
FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="Output format.")]
PlainFormatOpt = Annotated[PlainFormat, typer.Option("--format", "-f", help="Output format.")]
WorkersOpt = Annotated[int, typer.Option(
    "--workers", help="Data-parallel training processes (torch.distributed, gloo, CPU).")]
GradCompressionOpt = Annotated[str, typer.Option(
    "--grad-compression", help="Gradient exchange between workers: none, powersgd, greedylore.")]
GradRankOpt = Annotated[int, typer.Option(
    "--grad-rank", help="Rank of the compressed gradients (powersgd, greedylore).")]

# -- the device models run on (issue 28): one option, one helper ----------------------------
DeviceOpt = Annotated[str, typer.Option(
    "--device", help="Where the model runs: cpu (default), cuda, cuda:N, or auto (CUDA when "
    "present); see docs/guide/gpu.md.")]


def run_device(spec: str) -> Any:
    """Make ``--device`` the run device of this command (``imcsim.nn.devices.use_device``:
    worker processes inherit it), restored when the command ends; an unknown or missing
    device is a ``ConfigError`` (one line, exit 2).  Returns the ``torch.device``."""
    try:  # typer >= 0.25 vendors click
        from typer._click.globals import get_current_context
    except ImportError:  # pragma: no cover - older typer on plain click
        from click import get_current_context

    from imcsim.nn.devices import use_device

    return get_current_context().with_resource(use_device(spec))


_INT = re.compile(r"[+-]?[0-9]{1,18}", re.ASCII)


def warn_unmapped(work: object) -> None:
    """One yellow line on stderr when something ran that is not mapped (or MACs disagree)."""
    unmapped, coverage = getattr(work, "unmapped", ()), getattr(work, "coverage", None)
    if not unmapped and (coverage is None or coverage.difference == 0):
        return
    parts = [coverage.describe()] if coverage is not None else []
    if unmapped:
        parts.append(f"{len(unmapped)} not mapped: {'; '.join(unmapped)}")
    typer.secho(f"imcsim: warning: {' | '.join(parts)}", fg="yellow", err=True)


def parallel_config(workers: int, method: str, rank: int, **fields: Any):
    """The ``DistributedConfig`` of the ``--workers``/``--grad-*`` options (one-line errors)."""
    from imcsim.train.distributed import DistributedConfig
    from imcsim.train.grad_compression import METHODS, GradCompression

    if method not in METHODS:
        raise ConfigError(f"--grad-compression must be one of {', '.join(METHODS)} (got {method!r})")
    if workers < 1 or rank < 1:
        raise ConfigError(f"--workers and --grad-rank must be >= 1 (got {workers}, {rank})")
    compression = GradCompression(method=method, rank=rank, **fields)
    return DistributedConfig(workers=workers, compression=compression)


def split_list(text: str, what: str) -> list[str]:
    """``"a, b"`` → ``["a", "b"]``; an empty item (``a,,b``, a trailing comma) is an error."""
    items = [t.strip() for t in text.split(",")]
    if not any(items):
        raise ConfigError(f"{what}: empty list {text!r}")
    if not all(items):
        raise ConfigError(f"{what}: empty item in {text!r}")
    return items


def parse_int(text: str, what: str) -> int:
    """An ASCII integer (no ``1_000``, no unicode digits, at most 18 digits)."""
    if not _INT.fullmatch(text.strip()):
        raise ConfigError(f"{what}: {text!r} is not an integer")
    return int(text)


def parse_float(text: str, what: str) -> float:
    """A finite ASCII number."""
    if not text.strip().isascii() or "_" in text:
        raise ConfigError(f"{what}: {text!r} is not a number")
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{what}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise ConfigError(f"{what}: {text!r} is not a finite number")
    return value


def emit(data: dict[str, Any], table: str, fmt: StrEnum, csv_text: str | None = None) -> None:
    """Print a result as a table, one JSON object, or CSV."""
    if fmt == "json":
        typer.echo(json.dumps(data, indent=2, default=str))
    elif fmt == "csv":
        if csv_text is None:  # pragma: no cover - the verbs' format enums exclude it
            raise ConfigError("--format csv is not available for this command")
        typer.echo(csv_text, nl=False)
    else:
        typer.echo(table)


def notice(text: str) -> None:
    """A one-line notice on stderr (something was ignored or recomputed)."""
    print(f"imcsim: notice: {' '.join(text.split())}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def progress_bar(*columns: Any) -> Iterator[Any]:
    """A rich progress bar on stderr that stays on success and vanishes on an error or an
    interrupt, so that the one ``imcsim: …`` line is all that is left."""
    from rich.console import Console
    from rich.progress import Progress

    bar = Progress(*columns, console=Console(stderr=True), transient=False)
    bar.start()
    try:
        yield bar
    except BaseException:
        bar.live.transient = True
        bar.live.stop()  # not bar.stop(): it ends a non-terminal stream with a blank line
        raise
    bar.stop()


_HINTS: list[Callable[[], str]] = []
_RAISED: list[Callable[[], str]] = []


@contextlib.contextmanager
def on_interrupt(hint: Callable[[], str]) -> Iterator[None]:
    """While the block runs, Ctrl-C reports ``hint()`` (what was saved, how to resume)."""
    _HINTS.append(hint)
    try:
        yield
    except KeyboardInterrupt:
        _RAISED.append(hint)  # the exit path asks after the block has unwound
        raise
    finally:
        _HINTS.remove(hint)


def interrupt_hint() -> str:
    """What the innermost verb interrupted says ("" if nothing); forgets it."""
    hint = _RAISED[0] if _RAISED else (_HINTS[-1] if _HINTS else None)
    _RAISED.clear()
    return hint() if hint is not None else ""
