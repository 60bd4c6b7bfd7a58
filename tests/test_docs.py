"""The extension recipes in the folder READMEs run as written."""

from __future__ import annotations

import re
from pathlib import Path

import imcsim
from imcsim import ArrayConfig, LayerShape, map_network
from imcsim.mappers import check_mapping, mapper_names

ROOT = Path(imcsim.__file__).parent


def code_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


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
