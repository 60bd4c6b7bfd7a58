"""User code is the user's: a failure inside a model file, a factory, an example input or
a forward pass is reported as the user's input, naming the model and the input.

``user_code(model, stage, example)`` turns any exception — and ``SystemExit`` — raised
inside it into a ``UserCodeError`` (a ``ConfigError``: exit 2 from the CLI, one line)::

    model nets/net.py:build: forward pass on input (1, 5, 16, 16) float32: RuntimeError: …

imcsim's own typed errors pass through unchanged (they already name their culprit), and
so does Ctrl-C.  ``importable_folder(path)`` puts a model file's folder first on
``sys.path`` while the file loads (as ``python path/net.py`` would), so ``from blocks
import Block`` beside it resolves, and restores ``sys.path`` afterwards.
``check_example_shape`` refuses an example input that no machine here could hold before
anything is allocated.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from imcsim.errors import ConfigError, ImcsimError

__all__ = ["MAX_DIM", "UserCodeError", "check_example_shape", "describe_input",
           "importable_folder", "physical_memory_bytes", "user_code"]

MAX_DIM = 2**62
"""Largest dimension of an example input taken at face value (torch sizes are int64)."""
_BYTES_PER_ELEMENT = 4
"""The smallest element an example input is built with (float32 images; int64 tokens)."""


class UserCodeError(ConfigError):
    """A user's model code (file, factory, example input, forward pass) failed."""


def describe_input(example: Any) -> str:
    """``(1, 3, 32, 32) float32``; tuples, lists and dicts of tensors item by item."""
    if isinstance(example, dict):
        return "{" + ", ".join(f"{k}: {describe_input(v)}" for k, v in example.items()) + "}"
    if isinstance(example, (tuple, list)):
        return "(" + ", ".join(describe_input(v) for v in example) + ")"
    shape, dtype = getattr(example, "shape", None), getattr(example, "dtype", None)
    if shape is None:
        return type(example).__name__
    return f"{tuple(shape)} {str(dtype).removeprefix('torch.')}"


def _message(exc: BaseException) -> str:
    if isinstance(exc, SystemExit):
        return f"called sys.exit({exc.code!r}) (a model file must not exit)"
    text = " ".join(str(exc).split()) or "(no message)"
    return f"{type(exc).__name__}: {text[:300]}"


@contextlib.contextmanager
def user_code(model: str, stage: str, example: Any = None) -> Iterator[None]:
    """Run user code: any failure (``SystemExit`` included) becomes one
    ``UserCodeError`` ``model MODEL: STAGE [on input SHAPE DTYPE]: …``."""
    try:
        yield
    except ImcsimError:
        raise
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - whatever user code raises
        where = f" on input {describe_input(example)}" if example is not None else ""
        raise UserCodeError(f"model {model}: {stage}{where}: {_message(exc)}") from None


@contextlib.contextmanager
def importable_folder(path: Path) -> Iterator[None]:
    """``path``'s folder first on ``sys.path`` while the block runs; restored after."""
    saved = list(sys.path)
    sys.path.insert(0, str(path.resolve().parent))
    try:
        yield
    finally:
        sys.path[:] = saved


def physical_memory_bytes() -> int | None:
    """This machine's physical memory (None where the OS does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def check_example_shape(model: str, shape: Any) -> tuple[int, ...]:
    """``shape`` as a tuple of positive ints, refused (naming ``model``) when it is not
    one, or when its elements × 4 bytes exceed this machine's physical memory."""
    items = shape if isinstance(shape, (tuple, list)) else None
    if not items or not all(isinstance(s, int) and not isinstance(s, bool) for s in items):
        raise UserCodeError(f"model {model}: example input shape {shape!r} is not a tuple of "
                            "integers like (1, 3, 32, 32)")
    bad = [s for s in items if not 0 < s <= MAX_DIM]
    if bad:
        raise UserCodeError(f"model {model}: example input shape {tuple(items)} has dimension "
                            f"{bad[0]} (each must be in 1..2^62)")
    elements = 1
    for s in items:
        elements *= s
    memory = physical_memory_bytes()
    if memory is not None and elements * _BYTES_PER_ELEMENT > memory:
        raise UserCodeError(
            f"model {model}: example input shape {tuple(items)} needs at least "
            f"{elements * _BYTES_PER_ELEMENT / 2**30:,.1f} GiB ({elements:,} elements × 4 bytes), "
            f"more than this machine's {memory / 2**30:,.1f} GiB of memory")
    return tuple(items)
