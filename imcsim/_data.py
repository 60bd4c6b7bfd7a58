"""Locate the data folder ``mappings/`` (inside a wheel or beside a source checkout)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["MAX_TEXT_BYTES", "data_dir", "find_preset", "read_text", "read_toml"]

MAX_TEXT_BYTES = 16 * 2**20
"""Largest chip, recipe or layer-table file read (16 MiB; the shipped ones are < 10 KiB)."""

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
    if not str(name_or_path).strip():
        raise ConfigError(f"{what}: empty name")
    if path.suffix.lower() == suffix:
        if not path.exists():
            raise ConfigError(f"{what} file {str(path)!r} does not exist")
        if not path.is_file():
            raise ConfigError(f"{what} file {str(path)!r} is not a file")
        return path
    path = data_dir(folder) / f"{name_or_path}{suffix}"
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in data_dir(folder).glob(f"*{suffix}")))
        raise ConfigError(f"{what} {str(name_or_path)!r} not found (known: {known})")
    return path


def read_text(path: Path, what: str, limit: int = MAX_TEXT_BYTES) -> str:
    """A UTF-8 text file, or a one-line ``ConfigError`` naming it (missing, a folder,
    unreadable, larger than ``limit`` bytes, not UTF-8)."""
    from imcsim.errors import ConfigError

    try:
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise ConfigError(f"{what} {str(path)!r}: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise ConfigError(f"{what} {str(path)!r} is larger than {limit // 2**20} MiB")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{what} {str(path)!r} is not UTF-8 text (byte 0x{data[exc.start]:02x} at "
            f"offset {exc.start})"
        ) from None


def read_toml(path: Path, what: str) -> dict:
    """Parse a TOML file; any problem is a one-line ``ConfigError`` naming the file."""
    import tomllib

    from imcsim.errors import ConfigError

    text = read_text(path, what)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{what} {path.name}: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{what} {path.name}: nested too deeply") from None
    except ValueError as exc:  # e.g. an integer literal beyond Python's digit limit
        raise ConfigError(f"{what} {path.name}: {str(exc).splitlines()[0]}") from None
