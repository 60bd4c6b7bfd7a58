"""Shared test options: golden files with an explicit update switch; a private calibration
cache directory for the whole session.

Golden files under ``tests/golden/`` hold the text imcsim prints for fixed inputs
(tables, comparisons).  A change in the output fails the test with a diff; after
checking the diff, regenerate them with ``python -m pytest --update-goldens`` (as
torchinfo's ``--overwrite``).
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest

GOLDEN = Path(__file__).parent / "golden"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-goldens", action="store_true",
                     help="rewrite tests/golden/* from the current output instead of comparing")


@pytest.fixture
def golden(request: pytest.FixtureRequest):
    """``golden(name, text)``: compare ``text`` with ``tests/golden/name`` (or rewrite it)."""
    update = request.config.getoption("--update-goldens")

    def check(name: str, text: str) -> None:
        path = GOLDEN / name
        if update or not path.exists():
            if not update:
                pytest.fail(f"golden file {path} is missing; create it with --update-goldens")
            path.write_text(text)
            return
        want = path.read_text()
        if text != want:
            diff = "".join(difflib.unified_diff(want.splitlines(True), text.splitlines(True),
                                                f"golden/{name}", "output"))
            pytest.fail(f"output differs from golden/{name} (update with --update-goldens):\n{diff}")

    return check


@pytest.fixture(autouse=True, scope="session")
def _private_cache_dir(tmp_path_factory: pytest.TempPathFactory):
    """Calibration statistics the CLI caches go to a temporary directory, not ~/.cache."""
    before = os.environ.get("IMCSIM_CACHE_DIR")
    os.environ["IMCSIM_CACHE_DIR"] = str(tmp_path_factory.mktemp("imcsim-cache"))
    yield
    if before is None:
        os.environ.pop("IMCSIM_CACHE_DIR", None)
    else:
        os.environ["IMCSIM_CACHE_DIR"] = before
