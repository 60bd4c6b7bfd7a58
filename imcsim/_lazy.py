"""Lazy package attributes (PEP 562) and deprecated module aliases, in one place.

A package lists ``name -> module`` and gets a ``__getattr__`` that imports the module on first
use, so that importing the package (a sweep worker, the CLI's ``--help``) does not import torch
unless the name is used.  ``MovedModules`` keeps a module's old import path working for one
release after it moved, with a ``DeprecationWarning`` naming the new path.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import warnings
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

__all__ = ["MovedModules", "lazy_getattr"]


def lazy_getattr(package: str, names: Mapping[str, str],
                 deprecated: Mapping[str, str] | None = None) -> Callable[[str], Any]:
    """``__getattr__`` for ``package``: ``names`` maps an attribute to the module holding it;
    ``deprecated`` maps old attribute names to the module that holds them now (a warning)."""
    moved = dict(deprecated or {})

    def __getattr__(name: str) -> Any:
        if name in names:
            return getattr(importlib.import_module(names[name]), name)
        if name in moved:
            warnings.warn(f"{package}.{name} moved: import it from {moved[name]} (the old "
                          "path goes away in the next release)", DeprecationWarning, stacklevel=2)
            return getattr(importlib.import_module(moved[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__


class MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Import hook: ``import old.path`` gives the module now at its new path, with a warning."""

    def __init__(self, moves: Mapping[str, str]) -> None:
        self.moves = dict(moves)

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname not in self.moves:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        new = self.moves[spec.name]
        warnings.warn(f"{spec.name} moved to {new} (the old path goes away in the next "
                      "release)", DeprecationWarning, stacklevel=2)
        return importlib.import_module(new)

    def exec_module(self, module: ModuleType) -> None:
        """The module was executed under its new name already."""

    @classmethod
    def install(cls, moves: Mapping[str, str]) -> None:
        """Add a finder for ``moves`` once per process."""
        if not any(isinstance(f, cls) and f.moves == dict(moves) for f in sys.meta_path):
            sys.meta_path.append(cls(moves))
