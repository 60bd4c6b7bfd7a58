"""Base class of every configuration: frozen, strict, finite, validated on copy, one-line errors.

Strict means what a user typed is what a field holds: ``rows = true``, ``"128"`` and
``128.0`` are refused where an int is expected, and ``inf``/``nan`` where a number is
(pydantic's strict mode plus ``allow_inf_nan=False``).  Two conversions stay, because
TOML and JSON have no other way to spell them: an array (list) becomes a tuple field and
a string becomes a ``Path`` field.  Copies are validated: ``model_copy(update=…)`` and
``replace(**changes)`` go through the same validators as construction.
"""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Any, Self, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from imcsim.errors import ConfigError

__all__ = ["StrictModel", "one_line"]


class _FieldError(ConfigError):
    """A validation error that remembers where it happened, so that nested models
    (validated through ``StrictModel.__init__``) report one flat location."""

    def __init__(self, loc: tuple[str, ...], detail: str, where: str) -> None:
        self.loc, self.detail = loc, detail
        super().__init__(_render(where, loc, detail, joined=where.isidentifier()))


def _render(where: str, loc: tuple[str, ...], detail: str, joined: bool) -> str:
    path = ".".join(loc)
    head = (f"{where}.{path}" if joined else f"{where}: {path}") if path else where
    return " ".join(f"{head}: {detail}".split())


def _flatten(exc: ValidationError) -> tuple[tuple[str, ...], str]:
    """(location, message) of the first error, through nested models."""
    err = exc.errors()[0]
    loc = tuple(str(part) for part in err["loc"])
    inner = (err.get("ctx") or {}).get("error")
    if isinstance(inner, _FieldError):
        return loc + inner.loc, inner.detail
    msg = err["msg"].removeprefix("Value error, ")
    got = err.get("input")
    plain = isinstance(got, (int, float, str, bool)) and len(repr(got)) <= 80
    shown = f" (got {got!r})" if plain and repr(got) not in msg else ""
    more = len(exc.errors()) - 1
    return loc, f"{msg}{shown}" + (f" [+{more} more]" if more else "")


def one_line(model: str, exc: ValidationError, source: str | None = None) -> str:
    """The first pydantic error as ``Model.field: message (got value)``, or as
    ``source: field: message`` when the data came from a file (``chip file a.toml``)."""
    loc, detail = _flatten(exc)
    return _render(source or model, loc, detail, joined=source is None)


def _kinds(annotation: Any) -> set[type]:
    """Container types an annotation may take (``tuple``, ``Path``), through unions."""
    origin = get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return set().union(*(_kinds(arg) for arg in get_args(annotation)))
    if origin is typing.Annotated:
        return _kinds(get_args(annotation)[0])
    if annotation is tuple or origin is tuple:
        return {tuple}
    if isinstance(annotation, type) and issubclass(annotation, Path):
        return {Path}
    return set()


class StrictModel(BaseModel):
    """Frozen, strict pydantic model that refuses unknown keys and raises ``ConfigError``."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, allow_inf_nan=False)

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            loc, detail = _flatten(exc)
            raise _FieldError(loc, detail, type(self).__name__) from None

    @model_validator(mode="before")
    @classmethod
    def _lax_containers(cls, data: Any) -> Any:
        """TOML/JSON arrays → tuple fields, strings → ``Path`` fields; nothing else."""
        if not isinstance(data, dict):
            return data
        fixed = dict(data)
        for name, field in cls.model_fields.items():
            value = fixed.get(name)
            kinds = _kinds(field.annotation)
            if isinstance(value, list) and tuple in kinds:
                fixed[name] = tuple(value)
            elif isinstance(value, str) and Path in kinds:
                fixed[name] = Path(value)
        return fixed

    @classmethod
    def parse(cls, data: Any, source: str | None = None) -> Self:
        """Validate a plain dict (from TOML/JSON) with the same one-line errors.

        ``source`` (e.g. ``chip file a.toml``) replaces the class name in messages.
        """
        if not isinstance(data, dict):
            raise ConfigError(f"{source or cls.__name__}: expected a table of fields, "
                              f"got {type(data).__name__}")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(one_line(cls.__name__, exc, source)) from None
        except RecursionError:
            raise ConfigError(f"{source or cls.__name__}: nested too deeply") from None

    def replace(self, **changes: Any) -> Self:
        """A validated copy with ``changes`` applied (the only way configs change)."""
        unknown = set(changes) - set(type(self).model_fields)
        if unknown:
            raise ConfigError(f"{type(self).__name__}: no field {sorted(unknown)[0]!r}")
        data = {name: getattr(self, name) for name in self.model_fields_set}  # defaults stay
        data.update(changes)
        try:
            return type(self).model_validate(data)
        except ValidationError as exc:
            raise ConfigError(one_line(type(self).__name__, exc)) from None

    def model_copy(self, *, update: dict[str, Any] | None = None, deep: bool = False) -> Self:
        """pydantic's copy, validated whenever ``update`` changes a field (see ``replace``)."""
        if update:
            return self.replace(**update)
        return super().model_copy(deep=deep)
