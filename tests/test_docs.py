"""The docs hold: the README is a front door whose links resolve, the manual under
``docs/`` builds with ``mkdocs build --strict``, and every Python block in the README, the
manual and the folder READMEs runs as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import imcsim
from imcsim import ArrayConfig, LayerShape, map_network
from imcsim.mappers import base as mapper_base
from imcsim.mappers import check_mapping, mapper_names

ROOT = Path(imcsim.__file__).parent
REPO = ROOT.parent
README = REPO / "README.md"
PAGES = sorted((REPO / "docs").rglob("*.md"))
TWO_COMMANDS = ('pip install -c constraints.txt -e ".[dev]" && imcsim run', "python -m pytest -q")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
REPO_PATH = re.compile(r"`((?:imcsim|mappings|tests|benchmarks|notebooks|docs)/[\w./-]+?)(?:::\w+)?`")


def code_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


def doc_blocks() -> list:
    """Every distinct Python block of the README and the manual, named by page and index."""
    seen: dict[str, str] = {}
    for path in [README, *PAGES]:
        for i, block in enumerate(code_blocks(path)):
            seen.setdefault(block, f"{path.relative_to(REPO)}[{i}]")
    return [pytest.param(where, block, id=where) for block, where in seen.items()]


def relative_links(path: Path) -> list[str]:
    return [t for t in LINK.findall(path.read_text())
            if not re.match(r"[a-z]+:|#", t)]


def test_readme_is_a_front_door() -> None:
    text = README.read_text()
    assert len(text.splitlines()) <= 250
    for command in TWO_COMMANDS:  # CI reads the test command from here
        assert command in text


@pytest.mark.parametrize("path", [README, *PAGES], ids=lambda p: str(p.relative_to(REPO)))
def test_links_and_repo_paths_resolve(path: Path) -> None:
    """Markdown links and images point at files that exist; so do the repository paths a
    page names in backticks (``notebooks/01_quickstart.ipynb``, ``tests/test_x.py::test``)."""
    missing = [t for t in relative_links(path)
               if not (path.parent / t.split("#")[0]).exists()]
    for name in REPO_PATH.findall(path.read_text()):
        if "*" not in name and "{" not in name and not (REPO / name).exists():
            missing.append(name)
    assert not missing, f"{path.relative_to(REPO)}: {missing}"


@pytest.mark.parametrize(("where", "block"), doc_blocks())
def test_doc_python_blocks_run(where: str, block: str, monkeypatch, capsys) -> None:
    monkeypatch.setattr(mapper_base, "_REGISTRY", dict(mapper_base._REGISTRY))
    exec(compile(block, where, "exec"), {"__name__": "doc_block"})


def test_mkdocs_build_is_strict_and_clean(tmp_path: Path) -> None:
    """A broken link, a page missing from the nav or an unresolvable API reference fails."""
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict",
         "--config-file", str(REPO / "mkdocs.yml"), "--site-dir", str(tmp_path / "site")],
        cwd=REPO, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "site" / "reference" / "core" / "index.html").exists()


def test_mapper_recipe_registers_a_working_mapper() -> None:
    if "rows-twice" not in mapper_names():
        for block in code_blocks(ROOT / "mappers" / "README.md"):
            exec(block, {})
    layer = LayerShape.conv2d(3, 5, 3, 6, padding=1, name="c")
    report = map_network([layer], "rows-twice", ArrayConfig(rows=32, cols=16))
    mapping = report.mappings[0]
    check_mapping(mapping)
    assert mapping.tiles == 2 and mapping.cycles == 2 * 36


def test_nonideality_recipe_changes_the_outputs(monkeypatch) -> None:
    import torch

    from imcsim.nn import CrossbarConfig, nonideal, to_crossbar

    monkeypatch.setattr(nonideal, "_REGISTRY", dict(nonideal._REGISTRY))
    for block in code_blocks(ROOT / "nn" / "README.md"):
        exec(block, {})
    assert "word_line_decay" in nonideal.nonideality_names()
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3))
    layer = LayerShape.conv2d(3, 4, 3, 6, name="0")
    report = map_network([layer], "im2col", ArrayConfig(rows=32, cols=32, weight_bits=8,
                                                        cell_bits=2))
    x = torch.rand(2, 3, 6, 6)
    decayed = to_crossbar(model, report, CrossbarConfig(adc_bits=12))(x)
    monkeypatch.setattr(nonideal, "_REGISTRY", {})
    clean = to_crossbar(model, report, CrossbarConfig(adc_bits=12))(x)
    assert (decayed - clean).abs().max() > 0
