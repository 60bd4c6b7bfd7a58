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
