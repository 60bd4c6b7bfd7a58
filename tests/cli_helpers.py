"""Run the ``imcsim`` command in-process and capture what it prints."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from imcsim.cli import main


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> Result:
    code = 0
    try:
        main(list(args))
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return Result(code, captured.out, captured.err)


GATE_SITE = Path(__file__).parent / "gate_site"


def gate_env(target: str, watch: Path, lines: int, release: Path) -> dict[str, str]:
    """Environment for a subprocess that holds every call of ``target`` (``module:function``)
    once ``watch`` has ``lines`` lines (0: once it exists) until ``release`` exists, in the
    command and in every worker it starts (``tests/gate_site/sitecustomize.py``)."""
    path = os.pathsep.join(p for p in (str(GATE_SITE), os.environ.get("PYTHONPATH")) if p)
    return {"PYTHONPATH": path, "IMCSIM_GATE_TARGET": target, "IMCSIM_GATE_WATCH": str(watch),
            "IMCSIM_GATE_LINES": str(lines), "IMCSIM_GATE_RELEASE": str(release)}
