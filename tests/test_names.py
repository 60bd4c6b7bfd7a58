"""Issue 29.3: layer names key per-layer records and charts, so a CSV table that uses a
name twice is refused with both lines named; an empty name becomes the row's place.
Recipes refuse an empty name, an empty picture layer and a repeated mapper."""

from __future__ import annotations

from pathlib import Path

import pytest

from imcsim import ConfigError
from imcsim.tables import parse_layer_table

from cli_helpers import run

HEADER = "name,in_channels,out_channels,kernel,input\n"


def test_a_repeated_layer_name_is_refused_with_both_lines(tmp_path: Path, capsys) -> None:
    table = tmp_path / "t.csv"
    table.write_text(HEADER + "c1,3,16,3,16\n# a comment\nc1,16,16,3,16\n")
    result = run(capsys, "map", "--layers", str(table), "--array", "64x64")
    assert result.code == 2
    assert "t.csv line 4: layer name 'c1' is already used on line 2" in result.err
    assert len(result.err.strip().splitlines()) == 1


def test_empty_names_become_their_place_and_stay_unique() -> None:
    layers = parse_layer_table(HEADER + ",3,16,3,16\n  ,16,16,3,16\nc3,16,8,3,16\n", "t.csv")
    assert [layer.name for layer in layers] == ["t.csv line 2", "t.csv line 3", "c3"]


@pytest.mark.parametrize(("toml", "culprit"), [
    ('name = " "\n[sweep]\n', "name"),
    ('name = "r"\n[sweep]\n[pictures]\nlayer = ""\n', "layer"),
    ('name = "r"\n[sweep]\n[pictures]\nmappers = ["sdk", "sdk"]\n', "repeats a mapper"),
])
def test_recipes_refuse_empty_and_repeated_names(tmp_path: Path, toml: str, culprit: str) -> None:
    from imcsim.studies.recipes import load_recipe

    path = tmp_path / "r.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError, match=culprit):
        load_recipe(path)
