"""Your model, your weights, your data, your metric in every verb (one Workload)."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch

from cli_helpers import run

CNN = '''
import torch
from torch import nn

INPUT_SHAPE = (1, 3, 8, 8)


def build(width: int = 8):
    return nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, 4))
'''
ARRAY = ("--array", "64x64")
LLAMA = ("--model", "transformers:LlamaConfig", "--model-arg", "num_hidden_layers=2",
         "--model-arg", "hidden_size=256", "--model-arg", "intermediate_size=512",
         "--model-arg", "num_attention_heads=4", "--model-arg", "num_key_value_heads=4",
         "--model-arg", "vocab_size=1000")


def _import(path):
    sys.path.insert(0, str(path.parent))
    try:
        import importlib

        return importlib.import_module(path.stem)
    finally:
        sys.path.pop(0)


@pytest.fixture(scope="module")
def cnn(tmp_path_factory):
    """A CNN file, its trained-looking state dict and an .npz whose test labels are
    mostly the float model's own answers (so accuracy is neither 0 nor 1)."""
    root = tmp_path_factory.mktemp("cnn")
    (root / "usercnn.py").write_text(CNN)
    model = _import(root / "usercnn.py").build()
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
    torch.save(model.state_dict(), root / "w.pt")
    x = torch.randn(120, 3, 8, 8, generator=gen)
    with torch.no_grad():
        y = model(x).argmax(1)
    y[::3] = torch.randint(0, 4, (40,), generator=gen)
    np.savez(root / "d.npz", x=x[:60].numpy(), y=y[:60].numpy(),
             x_test=x[60:].numpy(), y_test=y[60:].numpy())
    return root, model, x[60:], y[60:]


def _cnn_args(root, weights="w.pt"):
    return ("--model", f"{root / 'usercnn.py'}:build", "--weights", str(root / weights),
            "--data", str(root / "d.npz"))


def test_accuracy_ideal_equals_the_float_metric_and_3bit_adc_differs(capsys, cnn) -> None:
    root, model, x, y = cnn
    with torch.no_grad():
        expected = float((model(x).argmax(1) == y).float().mean())
    ideal = run(capsys, "accuracy", *_cnn_args(root), *ARRAY, "--ideal", "--images", "60",
                "-f", "json")
    assert ideal.code == 0, ideal.err
    record = ideal.json()
    assert record["images"] == 60
    assert record["float_accuracy"] == record["accuracy"] == expected
    assert record["metric_name"] == "top1" and record["metric"] == record["float_metric"] == expected
    low = run(capsys, "accuracy", *_cnn_args(root), *ARRAY, "--adc-bits", "3", "--images", "60",
              "-f", "json")
    assert low.code == 0, low.err
    assert low.json()["accuracy"] != expected and low.json()["float_accuracy"] == expected


def test_rank_search_and_compare_run_on_a_user_model(capsys, cnn) -> None:
    root = cnn[0]
    search = run(capsys, "rank-search", *_cnn_args(root), *ARRAY, "--budget-keep", "0.5",
                 "--calibration-images", "16", "--heldout-images", "16", "-f", "json")
    assert search.code == 0, search.err
    total = search.json()["total"]
    assert total["params"] <= 0.5 * total["dense_params"] and total["images"] == 60
    compare = run(capsys, "compare", *_cnn_args(root)[:4], *ARRAY, "--keep", "0.5",
                  "--methods", "low-rank-sdk,pruned-filter-sdk", "-f", "json")
    assert compare.code == 0, compare.err
    data = compare.json()
    assert data["model"].endswith("usercnn.py:build") and data["weights"].startswith("w.pt")


def test_a_resumed_sweep_recomputes_after_the_weights_change(capsys, cnn, tmp_path) -> None:
    root = cnn[0]
    weights = tmp_path / "w.pt"
    weights.write_bytes((root / "w.pt").read_bytes())
    args = ("sweep", "--model", f"{root / 'usercnn.py'}:build", "--weights", str(weights),
            "--arrays", "64x64", "--mappers", "im2col", "-o", str(tmp_path / "out"))
    results = tmp_path / "out" / "results.jsonl"
    assert run(capsys, *args).code == 0
    assert run(capsys, *args).code == 0
    assert len(results.read_text().splitlines()) == 1  # resumed: nothing recomputed
    state = torch.load(weights)
    state["6.bias"] += 1.0
    torch.save(state, weights)
    assert run(capsys, *args).code == 0
    lines = [json.loads(line) for line in results.read_text().splitlines()]
    assert len(lines) == 2 and lines[0]["key"] != lines[1]["key"]


def test_a_two_layer_llama_maps_every_mac_and_ideal_perplexity_is_float(capsys, tmp_path) -> None:
    from imcsim.zoo.workload import Workload
    from imcsim.zoo.workloads import spec_workload

    args = dict(a.split("=") for a in LLAMA[3::2])
    work = spec_workload(Workload(model="transformers:LlamaConfig", model_args=tuple(args.items()),
                                  input_shape=(1, 16), input_dtype="int64"))
    assert work.coverage.captured_macs == work.coverage.reference_macs
    assert sum(layer.macs for layer in work.layers) > 0
    mapped = run(capsys, "map", *LLAMA, "--input-shape", "1,16", "--input-dtype", "int64",
                 "--array", "256x256", "-f", "json")
    assert mapped.code == 0 and "warning" not in mapped.err, mapped.err
    tokens = np.random.default_rng(0).integers(0, 1000, (10, 12)).astype(np.int64)
    np.save(tmp_path / "tokens.npy", tokens)
    res = run(capsys, "accuracy", *LLAMA, "--data", str(tmp_path / "tokens.npy"), "--metric",
              "perplexity", "--ideal", "--array", "256x256", "-f", "json")
    assert res.code == 0, res.err
    record = res.json()
    assert record["metric_name"] == "perplexity" and record["accuracy"] is None
    assert record["float_metric"] > 1
    assert abs(record["metric"] - record["float_metric"]) <= 1e-4 * record["float_metric"]


def _one_line(result, *needles: str) -> None:
    assert result.code == 2, result.err
    assert result.err.count("\n") == 1 and "Traceback" not in result.err, result.err
    for needle in needles:
        assert needle in result.err, result.err


def test_bad_workloads_are_one_line_naming_the_culprit(capsys, cnn, tmp_path) -> None:
    root, model, x, y = cnn
    state = model.state_dict()
    torch.save({k: v for k, v in state.items() if k != "2.weight"}, tmp_path / "missing.pt")
    torch.save({**state, "2.weight": torch.zeros(8, 8, 1, 1)}, tmp_path / "shape.pt")
    base = ("accuracy", "--model", f"{root / 'usercnn.py'}:build", "--data", str(root / "d.npz"),
            *ARRAY, "--ideal")
    _one_line(run(capsys, *base, "--weights", str(tmp_path / "missing.pt")), "'2.weight'", "missing")
    _one_line(run(capsys, *base, "--weights", str(tmp_path / "shape.pt")), "'2.weight'", "shape")
    np.savez(tmp_path / "float_y.npz", x=x.numpy(), y=y.numpy().astype(np.float32))
    np.savez(tmp_path / "label.npz", x=x.numpy(), y=np.full(len(y), 7, dtype=np.int64))
    weights = ("--weights", str(root / "w.pt"))
    bad = ("accuracy", "--model", f"{root / 'usercnn.py'}:build", *weights, *ARRAY, "--ideal")
    _one_line(run(capsys, *bad, "--data", str(tmp_path / "float_y.npz")), "float_y.npz", "dtype")
    _one_line(run(capsys, *bad, "--data", str(tmp_path / "label.npz")), "label 7", "4 outputs")
    (tmp_path / "images" / "cat").mkdir(parents=True)
    _one_line(run(capsys, *bad, "--data", str(tmp_path / "images")), "no images")
    np.save(tmp_path / "oov.npy", np.full((6, 8), 5000, dtype=np.int64))
    _one_line(run(capsys, "accuracy", *LLAMA, "--data", str(tmp_path / "oov.npy"), "--metric",
                  "perplexity", "--ideal", "--array", "256x256"), "token id 5000", "oov.npy")
    _one_line(run(capsys, "map", *LLAMA, "--input-shape", "1,8", "--input-dtype", "float32",
                  "--array", "256x256"), "--input-dtype float32", "int64")
    _one_line(run(capsys, "map", *LLAMA, "--model-arg", "hiden_size=3", "--array", "256x256"),
              "hiden_size", "hidden_size")


def test_an_image_folder_and_safetensors_weights(capsys, cnn, tmp_path) -> None:
    from PIL import Image
    from safetensors.torch import save_file

    root, model, _x, _y = cnn
    gen = np.random.default_rng(1)
    for label in ("a", "b"):
        (tmp_path / "imgs" / label).mkdir(parents=True)
        for i in range(5):
            pixels = gen.integers(0, 256, (8, 8, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / "imgs" / label / f"{i}.png")
    save_file(model.state_dict(), str(tmp_path / "w.safetensors"))
    res = run(capsys, "accuracy", "--model", f"{root / 'usercnn.py'}:build", "--weights",
              str(tmp_path / "w.safetensors"), "--data", str(tmp_path / "imgs"), *ARRAY,
              "--ideal", "-f", "json")
    assert res.code == 0, res.err
    assert res.json()["images"] == 2 and res.json()["accuracy"] == res.json()["float_accuracy"]


def test_a_local_hugging_face_folder_and_an_encoder_decoder(capsys, tmp_path) -> None:
    import transformers

    config = transformers.LlamaConfig(num_hidden_layers=1, hidden_size=64, intermediate_size=128,
                                      num_attention_heads=4, num_key_value_heads=4, vocab_size=300)
    transformers.LlamaForCausalLM(config).save_pretrained(tmp_path / "llama")
    folder = run(capsys, "map", "--model", str(tmp_path / "llama"), "--input-shape", "1,16",
                 "--array", "128x128", "-f", "json")
    assert folder.code == 0 and "warning" not in folder.err, folder.err
    assert "lm_head" in [row["name"] for row in folder.json()["layers"]]
    t5 = ("--model", "transformers:T5Config", "--model-arg", "num_layers=1", "--model-arg",
          "num_decoder_layers=1", "--model-arg", "d_model=64", "--model-arg", "d_ff=128",
          "--model-arg", "num_heads=2", "--model-arg", "d_kv=32", "--model-arg", "vocab_size=300")
    res = run(capsys, "map", *t5, "--input-shape", "1,8", "--array", "128x128", "-f", "json")
    assert res.code == 0, res.err
    names = [row["name"] for row in res.json()["layers"]]
    assert any(n.startswith("encoder.") for n in names) and any(n.startswith("decoder.") for n in names)


def test_a_recipe_sweep_takes_one_workload_table(cnn, tmp_path) -> None:
    from imcsim.studies.recipes import load_recipe

    root = cnn[0]
    path = tmp_path / "mine.toml"
    path.write_text(f'name = "mine"\nout = "{tmp_path / "out"}"\n[sweep]\narrays = ["64x64"]\n'
                    f'mappers = ["im2col"]\n[sweep.workload]\nmodel = "{root / "usercnn.py"}:build"\n'
                    f'weights = "{root / "w.pt"}"\n')
    recipe = load_recipe(path)
    assert recipe.sweep.models == (f"{root / 'usercnn.py'}:build",)
    assert recipe.sweep.workload.weights == root / "w.pt"
