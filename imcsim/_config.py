"""Base class of every configuration: frozen, strict, one-line errors."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from imcsim.errors import ConfigError


def one_line(model: str, exc: ValidationError) -> str:
    """Render the first pydantic error as ``Model.field: message (got value)``."""
    err = exc.errors()[0]
    loc = ".".join(str(part) for part in err["loc"])
    where = f"{model}.{loc}" if loc else model
    inner = (err.get("ctx") or {}).get("error")
    if isinstance(inner, ConfigError):  # a nested model already named its field
        text = str(inner)
        head = text.split(":", 1)[0]
        tail = text[len(head.split(".", 1)[0]) :] if head.isidentifier() or "." in head else f": {text}"
        return f"{where}{tail}"
    msg = err["msg"].removeprefix("Value error, ")
    got = err.get("input")
    shown = "" if isinstance(got, dict) or got is None else f" (got {got!r})"
    more = len(exc.errors()) - 1
    tail = f" [+{more} more]" if more else ""
    return f"{where}: {msg}{shown}{tail}"


class StrictModel(BaseModel):
    """Frozen pydantic model that refuses unknown keys and raises ``ConfigError``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise ConfigError(one_line(type(self).__name__, exc)) from None

    @classmethod
    def parse(cls, data: dict[str, Any]) -> StrictModel:
        """Validate a plain dict (from TOML/JSON) with the same one-line errors."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(one_line(cls.__name__, exc)) from None
