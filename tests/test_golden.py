"""What imcsim prints, pinned: tables and comparisons against golden files
(``python -m pytest --update-goldens`` rewrites them after a deliberate change)."""

from __future__ import annotations

import pytest

from cli_helpers import run

CASES = {
    "map_vgg13_512_all.txt": ("map", "--layers", "vgg13", "--array", "512x512", "--mapper", "all"),
    "map_cnn8_256x512_vw-sdk.txt": ("map", "--layers", "cnn8", "--array", "256x512",
                                    "--mapper", "vw-sdk"),
    "map_resnet18_isaac_cost.txt": ("map", "--layers", "resnet18", "--mapper", "vw-sdk",
                                    "--cost", "isaac"),
    "compare_resnet20_256_keep0.5.txt": ("compare", "--model", "resnet20", "--array", "256x256",
                                         "--keep", "0.5"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_printed_output_is_golden(name: str, capsys, golden) -> None:
    res = run(capsys, *CASES[name])
    assert res.code == 0, res.err
    golden(name, res.out)
