"""Issue 29.2: user code is the user's.  Every failure of a model file, its factory, its
example input or its forward pass is exit 2 with one line ``model FILE:FACTORY: …`` that
names the input; ``sys.exit`` in user code is such an error too; a model file's folder is
importable while it loads (and only then); an example input larger than this machine's
memory is refused before anything is allocated."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from imcsim.nn.user_code import UserCodeError, check_example_shape, physical_memory_bytes

from cli_helpers import run

NET = """
import sys
import torch.nn as nn

INPUT_SHAPE = {shape}


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        {forward}
        return self.conv(x)


def build():
    {build}
    return Net()
"""


def model_file(tmp_path: Path, shape: str = "(1, 3, 8, 8)", forward: str = "pass",
               build: str = "pass", top: str = "") -> str:
    path = tmp_path / "net.py"
    path.write_text(top + NET.format(shape=shape, forward=forward, build=build))
    return f"{path}:build"


def one_line(result, *needles: str) -> str:
    assert result.code == 2, (result.code, result.err)
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("imcsim: error: model "), result.err
    assert "internal error" not in lines[0]
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize(("shape", "needle"), [
    ("(1, -3, 8, 8)", "has dimension -3"),
    ("5", "shape 5 is not a tuple of integers"),
    ("(1, 3.5, 8)", "is not a tuple of integers"),
    ("(1, 3, 2**63, 8)", "has dimension 9223372036854775808"),
    ("(1, 3, 10**7, 10**7)", "more than this machine's"),
])
def test_bad_input_shape_attributes_name_the_model(tmp_path, capsys, shape, needle) -> None:
    spec = model_file(tmp_path, shape=shape)
    one_line(run(capsys, "map", "--model", spec, "--array", "64x64"), spec, needle)


def test_an_absurd_input_shape_is_refused_before_allocation(tmp_path, capsys) -> None:
    spec = model_file(tmp_path)
    result = run(capsys, "map", "--model", spec, "--input-shape", "1,3,100000,100000",
                 "--array", "64x64")
    one_line(result, spec, "(1, 3, 100000, 100000)", "GiB")


def test_memory_check_uses_elements_times_four_bytes(monkeypatch) -> None:
    import imcsim.nn.user_code as user_code

    monkeypatch.setattr(user_code, "physical_memory_bytes", lambda: 4 * 1000)
    assert check_example_shape("m", (10, 100)) == (10, 100)
    with pytest.raises(UserCodeError, match="model m: .*1,001 elements"):
        check_example_shape("m", (7, 11, 13))
    assert physical_memory_bytes() is None or physical_memory_bytes() > 2**20


@pytest.mark.parametrize(("where", "needle"), [
    ({"build": "sys.exit(3)"}, "build(): called sys.exit(3)"),
    ({"top": "import sys\nsys.exit('bye')\n"}, "loading the model file: called sys.exit('bye')"),
    ({"build": "raise KeyError('w')"}, "build(): KeyError"),
    ({"forward": "raise SystemExit(4)"}, "forward pass on input (1, 3, 8, 8) float32: called sys.exit(4)"),
    ({"forward": "x = x.view(-1, 7)"}, "forward pass on input (1, 3, 8, 8) float32: RuntimeError"),
])
def test_failures_and_exits_in_user_code_are_the_users(tmp_path, capsys, where, needle) -> None:
    spec = model_file(tmp_path, **where)
    one_line(run(capsys, "map", "--model", spec, "--array", "64x64"), f"model {spec}: ", needle)


def test_sibling_modules_import_while_the_file_loads_only(tmp_path, capsys) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "blocks_i29.py").write_text(
        "import torch.nn as nn\n\nclass Block(nn.Sequential):\n"
        "    def __init__(self):\n        super().__init__(nn.Conv2d(3, 4, 3))\n")
    (folder / "net.py").write_text("from blocks_i29 import Block\nINPUT_SHAPE = (1, 3, 8, 8)\n\n"
                                   "def build():\n    return Block()\n")
    before = list(sys.path)
    try:
        result = run(capsys, "map", "--model", f"{folder / 'net.py'}:build", "--array", "64x64")
        assert result.code == 0, result.err
        assert sys.path == before
    finally:
        sys.modules.pop("blocks_i29", None)
