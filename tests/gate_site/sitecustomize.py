"""A test-only gate loaded in every process of an interrupt test (the command and its
spawned workers) through ``PYTHONPATH``: it wraps one function so that, once a file the
test watches holds enough lines, each call waits until the test releases it.

The interrupt tests then signal a process that is provably mid-run, on any machine:
the work can neither finish before the signal nor depend on the machine being slow.

Environment (all set by ``tests/test_interrupts.py``; without them this file does nothing):
``IMCSIM_GATE_TARGET`` ``module:function`` to wrap, ``IMCSIM_GATE_WATCH`` the file whose
line count closes the gate, ``IMCSIM_GATE_LINES`` how many lines close it (0: its
existence),
``IMCSIM_GATE_RELEASE`` a file whose existence lets every waiting call go on.
"""

import importlib
import os
import time
from pathlib import Path


def _closed(watch: Path, lines: int) -> bool:
    """The gate is closed once ``watch`` exists and holds ``lines`` lines (0: once it exists)."""
    try:
        return watch.read_bytes().count(b"\n") >= lines
    except OSError:
        return False


def _gated(function, watch: Path, lines: int, release: Path):
    def wrapper(*args, **kwargs):
        while _closed(watch, lines) and not release.exists():
            time.sleep(0.01)
        return function(*args, **kwargs)

    return wrapper


def _install() -> None:
    target = os.environ.get("IMCSIM_GATE_TARGET")
    if not target:
        return
    module_name, name = target.split(":")
    module = importlib.import_module(module_name)
    watch, release = Path(os.environ["IMCSIM_GATE_WATCH"]), Path(os.environ["IMCSIM_GATE_RELEASE"])
    setattr(module, name, _gated(getattr(module, name), watch, int(os.environ["IMCSIM_GATE_LINES"]),
                                 release))


_install()
