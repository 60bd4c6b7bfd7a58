"""``imcsim verify DIR``: which records of a results directory are tampered, stale or
from another imcsim (``imcsim.studies.verify``); exit 1 when any is."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from imcsim.cli import app
from imcsim.cli.common import PlainFormat, PlainFormatOpt, emit

__all__ = ["verify_command"]


@app.command("verify")
def verify_command(
    target: Annotated[Path, typer.Argument(help="A results directory (every *.jsonl under it) or one record file.")],
    fmt: PlainFormatOpt = PlainFormat.table,
) -> None:
    """Check every result record: digest, schema, code version, content key against
    today's inputs.  Exit 0 when all are current, 1 when any is not (2: bad input)."""
    from imcsim.studies.verify import verify_path

    report = verify_path(target)
    counts = ", ".join(f"{n} {status}" for status, n in sorted(report.counts.items()))
    lines = [str(f) for f in report.findings]
    lines.append(f"{len(report.files)} files: {counts or 'no records'}"
                 f" — {'all current' if report.ok else 'NOT all current'}")
    emit(report.to_dict(), "\n".join(lines), fmt)
    if not report.ok:
        raise typer.Exit(1)
