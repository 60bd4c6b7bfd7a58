"""Locate the data folder ``mappings/`` (inside a wheel or beside a source checkout)."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def data_dir(*parts: str) -> Path:
    """Path of ``mappings/<parts>``: the wheel's copy, else the repository's."""
    for root in (_PACKAGE / "_mappings", _PACKAGE.parent / "mappings"):
        if root.is_dir():
            return root.joinpath(*parts)
    return _PACKAGE.parent.joinpath("mappings", *parts)


def find_preset(folder: str, name_or_path: str | Path, suffix: str, what: str) -> Path:
    """``mappings/<folder>/NAME<suffix>`` for a bare name, else the given file; must exist."""
    from imcsim.errors import ConfigError

    path = Path(name_or_path)
    if path.suffix.lower() == suffix:
        if not path.exists():
            raise ConfigError(f"{what} file {str(path)!r} does not exist")
        return path
    path = data_dir(folder) / f"{name_or_path}{suffix}"
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in data_dir(folder).glob(f"*{suffix}")))
        raise ConfigError(f"{what} {str(name_or_path)!r} not found (known: {known})")
    return path


def read_toml(path: Path, what: str) -> dict:
    """Parse a TOML file; a syntax error is a one-line ``ConfigError`` naming the file."""
    import tomllib

    from imcsim.errors import ConfigError

    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{what} {path.name}: {exc}") from None
