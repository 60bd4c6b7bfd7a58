"""Your own model from the command line, export-layers round trip, zoo models."""

from __future__ import annotations

import sys
import textwrap

import pytest

from imcsim import ArrayConfig
from imcsim.layers import LayerShape
from imcsim.tables import format_layer_table, parse_layer_table

from cli_helpers import run

MYNET = """
import torch.nn as nn
import torch.nn.functional as F

INPUT_SHAPE = (1, 3, 16, 16)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        t = F.relu(self.conv(x)).flatten(2).transpose(1, 2)  # (1, 256 tokens, 8)
        return self.fc(self.attn(t, t, t, need_weights=False)[0].mean(1))


def build():
    return Net()


def not_a_model():
    return 42
"""


@pytest.fixture
def mynet(tmp_path):
    path = tmp_path / "mynet.py"
    path.write_text(MYNET)
    return path


def test_map_a_model_file_as_json(capsys, mynet) -> None:
    result = run(capsys, "map", "--model", f"{mynet}:build", "--input-shape", "1,3,32,32",
                 "--array", "128x128", "--mapper", "im2col", "--format", "json")
    assert result.code == 0, result.err
    data = result.json()
    tokens = 32 * 32
    names = [row["name"] for row in data["layers"]]
    assert names == ["conv", "attn.in_proj", "attn.out_proj", "fc"]
    assert data["total"]["macs"] == tokens * 8 * 27 + tokens * 4 * 8 * 8 + 8 * 10
    assert data["total"]["matmul_macs"] == 2 * tokens * tokens * 8
    assert data["total"]["cycles"] == sum(row["cycles"] for row in data["layers"])
    assert [m["name"] for m in data["matmuls"]] == ["attn.matmul", "attn.matmul#2"]
    assert result.err == ""  # everything mapped: no warning


def test_input_shape_defaults_to_the_module_attribute_and_errors_are_one_line(capsys, mynet) -> None:
    data = run(capsys, "map", "--model", f"{mynet}:build", "--array", "64x64", "--format",
               "json").json()
    assert data["layers"][0]["layer"] == "3x3 3->8 @16x16 s1 p1"
    for model, needle in ((f"{mynet}:not_a_model", "returned int, not an nn.Module"),
                          (f"{mynet}:missing", "AttributeError"),
                          ("nowhere.py:build", "does not exist"),
                          ("resnet2O", "unknown model 'resnet2O'")):
        result = run(capsys, "map", "--model", model, "--array", "64x64")
        assert result.code == 2 and needle in result.err and result.err.count("\n") == 1, result.err
    bad = run(capsys, "map", "--model", f"{mynet}:build", "--input-shape", "1,3,a", "--array", "64x64")
    assert bad.code == 2 and "--input-shape" in bad.err
    wrong = run(capsys, "map", "--model", f"{mynet}:build", "--input-shape", "1,5,16,16",
                "--array", "64x64")
    assert wrong.code == 2 and "on input (1, 5, 16, 16) float32: RuntimeError" in wrong.err


def test_model_from_an_importable_module(capsys, tmp_path, monkeypatch) -> None:
    (tmp_path / "zoo_pkg_i10").mkdir()
    (tmp_path / "zoo_pkg_i10" / "__init__.py").write_text("")
    (tmp_path / "zoo_pkg_i10" / "nets.py").write_text(MYNET)
    monkeypatch.syspath_prepend(str(tmp_path))
    result = run(capsys, "map", "--model", "zoo_pkg_i10.nets:build", "--array", "64x64")
    assert result.code == 0, result.err
    assert "attn.in_proj" in result.out and "activation x activation products" in result.out
    sys.modules.pop("zoo_pkg_i10.nets", None)


def test_unmapped_operations_give_a_yellow_warning(capsys, tmp_path) -> None:
    path = tmp_path / "odd.py"
    path.write_text(textwrap.dedent("""
        import torch.nn as nn
        INPUT_SHAPE = (1, 1, 4, 6, 6)
        def build():
            return nn.Sequential(nn.Conv3d(1, 2, 3), nn.Flatten(), nn.Linear(2 * 2 * 4 * 4, 3))
    """))
    result = run(capsys, "map", "--model", f"{path}:build", "--array", "64x64")
    assert result.code == 0
    assert result.err.startswith("imcsim: warning:") and "0: 3-d convolution" in result.err
    assert f"{2 * 27 * 2 * 4 * 4:,} MACs" in result.err


def test_export_layers_round_trip_gives_identical_cycles(capsys, mynet, tmp_path) -> None:
    out = tmp_path / "mynet.csv"
    result = run(capsys, "export-layers", "--model", f"{mynet}:build", "--out", str(out))
    assert result.code == 0, result.err
    text = out.read_text()
    assert text.startswith("# layers of") and "coverage: captured" in text
    args = ("--array", "32x32", "--mapper", "vw-sdk", "--format", "json", "--matmul", "crossbar")
    direct = run(capsys, "map", "--model", f"{mynet}:build", *args).json()
    table = run(capsys, "map", "--layers", str(out), *args).json()
    for key in ("cycles", "macs", "matmul_macs", "matmul_cycles"):
        assert direct["total"][key] == table["total"][key], key
    assert [r["cycles"] for r in direct["layers"]] == [r["cycles"] for r in table["layers"]]


def test_every_kind_round_trips_through_the_layer_table() -> None:
    layers = [
        LayerShape.conv2d(3, 8, (3, 5), (10, 12), stride=(1, 2), padding=(1, 2), dilation=2, name="a"),
        LayerShape.conv1d(4, 6, 3, 20, 2, 1, 1, 2, name="b"),
        LayerShape.linear(16, 32, positions=7, name="c"),
        LayerShape.conv_transpose2d(8, 4, 3, (4, 5), 2, 1, 1, 1, 2, name="d"),
        LayerShape.rnn("lstm", 8, 16, 7, name="e"),
        LayerShape.matmul(16, 65, 65, 12, name="f"),
        LayerShape.parse({**LayerShape.linear(16, 4, positions=7, name="g.r").model_dump(),
                          "factor_of": "g", "factor_role": "R"}),
    ]
    assert parse_layer_table(format_layer_table(layers, ["unmapped: x: y"])) == layers


def test_transformers_gpt2_and_bert_map_end_to_end(capsys) -> None:
    """GPT-2 small and BERT-base widths (d = 768, 12 heads, MLP 4d) from their config
    objects with random weights; 2 layers instead of 12 to keep the test short (every
    layer is identical, so the per-layer counts are what is checked)."""
    transformers = pytest.importorskip("transformers")
    import torch

    from imcsim import map_network
    from imcsim.nn import extract_layers

    tokens, d, layers, heads = 64, 768, 2, 12
    configs = ((transformers.GPT2Config(n_layer=layers), 0),
               (transformers.BertConfig(num_hidden_layers=layers), d * d))
    for config, extra in configs:
        torch.manual_seed(0)
        model = transformers.AutoModel.from_config(config).eval()
        ex = extract_layers(model, torch.randint(0, 1000, (1, tokens)))
        # per layer: q, k, v, out (4·d²) and the MLP (2·d·4d) on every token; BERT's pooler
        # adds one d×d product on the CLS token
        assert ex.coverage.weight_macs == layers * tokens * 12 * d * d + extra
        assert ex.coverage.matmul_macs == layers * 2 * tokens * tokens * d
        assert ex.coverage.complete and ex.unmapped == ()
        products = [layer for layer in ex.layers if layer.kind == "matmul"]
        assert len(products) == 2 * layers and {p.groups for p in products} == {heads}
        report = map_network(ex.layers, "vw-sdk", ArrayConfig(rows=256, cols=256))
        assert report.total()["matmul_macs"] == layers * 2 * tokens * tokens * d
    result = run(capsys, "map", "--model", "transformers:gpt2", "--input-shape", "1,8",
                 "--array", "256x256", "--format", "json")
    assert result.code == 0, result.err
    assert result.json()["total"]["matmul_macs"] == 12 * 2 * 8 * 8 * d  # full 12-layer GPT-2


def test_zoo_models_that_do_not_import_fail_in_one_line(capsys) -> None:
    try:
        import torchvision  # noqa: F401

        pytest.skip("torchvision imports here")
    except Exception:  # noqa: BLE001 - not installed or broken beside this torch
        pass
    result = run(capsys, "map", "--model", "torchvision:resnet18", "--array", "64x64")
    assert result.code == 2 and "imcsim[zoo]" in result.err and result.err.count("\n") == 1
