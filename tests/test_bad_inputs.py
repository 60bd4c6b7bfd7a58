"""Bad input → one clear line naming the culprit, exit code 2; never a traceback."""

from __future__ import annotations

import pytest

from imcsim import ArrayConfig, ConfigError, LayerShape, PrecisionConfig, get_mapper, load_chip
from imcsim.tables import parse_layer_table

from cli_helpers import run

BAD_CLI = [
    (["map", "--model", "resnet20", "--array", "128x"], "128x"),
    (["map", "--model", "resnet20", "--array", "0x128"], "rows"),
    (["map", "--model", "resnet20", "--array", "-4x128"], "-4x128"),
    (["map", "--model", "resnet20", "--array", "128x128", "--mapper", "foo"], "foo"),
    (["map", "--model", "nosuchnet", "--array", "128x128"], "nosuchnet"),
    (["map", "--model", "resnet20"], "--array"),
    (["map", "--model", "resnet20", "--layers", "vgg13", "--array", "8x8"], "exactly one"),
    (["map", "--layers", "nosuchtable", "--array", "8x8"], "nosuchtable"),
    (["map", "--layers", "/nonexistent/t.csv", "--array", "8x8"], "t.csv"),
    (["map", "--model", "resnet20", "--chip", "nosuchchip"], "nosuchchip"),
    (["map", "--model", "resnet20", "--array", "128x128", "--cell-bits", "4"], "cell_bits"),
    (["map", "--model", "resnet20", "--array", "128x2", "--weight-bits", "8"], "cols"),
    (["map", "--model", "resnet20", "--array", "128x128", "--format", "xml"], "xml"),
    (["map", "--model", "resnet20", "--array", "128x128", "--bogus"], "--bogus"),
    (["nosuchverb"], "nosuchverb"),
]


@pytest.mark.parametrize(("args", "culprit"), BAD_CLI, ids=[" ".join(a) for a, _ in BAD_CLI])
def test_cli_bad_arguments(capsys, args: list[str], culprit: str) -> None:
    result = run(capsys, *args)
    assert result.code == 2
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("imcsim: error:"), result.err
    assert culprit in lines[0]
    assert "Traceback" not in result.err


@pytest.mark.parametrize(
    ("text", "culprit"),
    [
        ("in_channels,out_channels,kernel,input\n3,64,3\n", "line 2"),
        ("in_channels,out_channels,kernel,input\n3,sixty,3,32\n", "out_channels='sixty'"),
        ("in_channels,out_channels,kernel,input\n3,64,3x,32\n", "kernel='3x'"),
        ("in_channels,out_channels,kernel,input\n3,64,7,4\n", "exceeds padded input"),
        ("in_channels,out_channels,kernel,input,groups\n3,64,3,32,2\n", "not divisible by groups"),
        ("in_channels,out_channels,kernel,input,kind\n3,64,3,32,conv3d\n", "conv3d"),
        ("in_channels,out_channels,kernel\n3,64,3\n", "header"),
        ("in_channels,out_channels,kernel,input,color\n3,64,3,32,red\n", "color"),
        ("in_channels,out_channels,kernel,input\n", "no layer rows"),
        ("in_channels,out_channels,kernel,input\n3,64,3,32,9\n", "more cells"),
    ],
)
def test_malformed_layer_tables(text: str, culprit: str) -> None:
    with pytest.raises(ConfigError, match=None) as info:
        parse_layer_table(text, source="t.csv")
    assert culprit in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("build", "culprit"),
    [
        (lambda: ArrayConfig(rows=0, cols=128), "rows"),
        (lambda: ArrayConfig(rows=128, cols=-1), "cols"),
        (lambda: ArrayConfig(rows=128, cols=128, cell_bits=4, weight_bits=2), "cell_bits=4"),
        (lambda: ArrayConfig(rows=128, cols=128, colour="red"), "colour"),
        (lambda: ArrayConfig(rows=128, cols=3, weight_bits=4, sign="differential"), "cols=3"),
        (lambda: PrecisionConfig(adc_bits=0), "adc_bits"),
        (lambda: PrecisionConfig(input_bits=0), "input_bits"),
        (lambda: PrecisionConfig(input_bits=4, dac_bits=8), "dac_bits=8"),
        (lambda: LayerShape.conv2d(3, 8, 5, 3), "exceeds padded input"),
        (lambda: LayerShape.conv2d(3, 8, 3, 8, groups=2), "groups=2"),
        (lambda: LayerShape.conv2d(0, 8, 3, 8), "in_channels"),
        (lambda: LayerShape.conv2d(3, 8, 3, 8, stride=0), "stride"),
        (lambda: LayerShape.conv2d(3, 8, 3, 8, padding=-1), "padding"),
        (lambda: LayerShape.conv2d(3, 8, (3, 3, 3), 8), "kernel_size"),
        (lambda: get_mapper("nope"), "nope"),
        (lambda: load_chip("nope"), "nope"),
    ],
)
def test_api_bad_values(build, culprit: str) -> None:
    with pytest.raises(ConfigError) as info:
        build()
    assert culprit in str(info.value) and "\n" not in str(info.value)


def test_bad_chip_file(tmp_path) -> None:
    bad = tmp_path / "chip.toml"
    bad.write_text("name = 'x'\n[array]\nrows = 128\ncols = 128\nflavour = 'mint'\n")
    with pytest.raises(ConfigError, match="array.flavour"):
        load_chip(bad)
    bad.write_text("name = \n")
    with pytest.raises(ConfigError, match="chip.toml"):
        load_chip(bad)
