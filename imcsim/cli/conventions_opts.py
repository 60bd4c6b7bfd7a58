"""The ``--conventions`` / ``--convention FIELD=VALUE`` options every verb that counts
mappings takes (``imcsim.conventions``), declared once."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from imcsim.conventions import Conventions, load_conventions
from imcsim.errors import ConfigError

__all__ = ["ConventionOpt", "ConventionsOpt", "conventions_from"]

ConventionsOpt = Annotated[str | None, typer.Option(
    "--conventions",
    help="How mappings are counted: paper, imcsim or FILE.toml (L schedule, R's mapper, "
         "row skipping, cycle count, rank snapping, index cost, dense layers).")]
ConventionOpt = Annotated[list[str] | None, typer.Option(
    "--convention",
    help="One conventions field FIELD=VALUE over --conventions (repeatable), e.g. "
         "schedule=pipelined, snap=true.")]


def _value(text: str) -> Any:
    return {"true": True, "false": False}.get(text.lower(), text)


def conventions_from(source: str | None, overrides: list[str] | None) -> Conventions | None:
    """The conventions the two options name; ``None`` when neither is given (the verb's
    own defaults)."""
    if source is None and not overrides:
        return None
    fields: dict[str, Any] = {}
    for item in overrides or ():
        field, sep, value = item.partition("=")
        if not sep or not field.strip():
            raise ConfigError(f"--convention {item!r}: expected FIELD=VALUE")
        fields[field.strip()] = _value(value.strip())
    return load_conventions(source, fields)
