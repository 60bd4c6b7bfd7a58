"""Tiny ViT: extracted, mapped, costed, cycle-simulated, on crossbars, with low-rank queries."""

from __future__ import annotations

import pytest
import torch

from imcsim import estimate_network, load_chip, map_network
from imcsim.matmul import with_placement
from imcsim.nn import CrossbarConfig, extract_layers, simulate_network, to_crossbar
from imcsim.nn.compress import LowRankLinear, low_rank_queries
from imcsim.nn.crossbar_layers import CrossbarMatMul
from imcsim.zoo.vit import tiny_vit

DIM, HEADS, TOKENS = 32, 4, 64 + 2  # 8×8 patches of 4×4 pixels + 2 class tokens


@pytest.fixture(scope="module")
def small():
    torch.manual_seed(0)
    return tiny_vit(dim=DIM, depth=1, heads=HEADS).eval(), torch.randn(3, 3, 32, 32)


def test_layers_and_macs_match_the_architecture(small) -> None:
    model, x = small
    ex = extract_layers(model, x[:1])
    kinds = [(layer.name, layer.kind) for layer in ex.layers]
    assert kinds == [
        ("patch", "conv2d"), ("blocks.0.attn.q", "linear"), ("blocks.0.attn.k", "linear"),
        ("blocks.0.attn.v", "linear"), ("blocks.0.attn.qk", "matmul"), ("blocks.0.attn.av", "matmul"),
        ("blocks.0.attn.proj", "linear"), ("blocks.0.fc1", "linear"), ("blocks.0.fc2", "linear"),
        ("head", "linear")]
    patch = 64 * DIM * 3 * 16
    block = TOKENS * (4 * DIM * DIM + 2 * DIM * 2 * DIM)
    assert ex.coverage.weight_macs == patch + block + DIM * 10
    assert ex.coverage.matmul_macs == 2 * TOKENS * TOKENS * DIM
    assert ex.coverage.complete and ex.unmapped == ()


def test_mapped_costed_and_simulated(small) -> None:
    model, x = small
    chip = load_chip("default")
    report = estimate_network(map_network(extract_layers(model, x[:1]).layers, "vw-sdk", chip))
    sim = simulate_network(model, report, x, chip)
    total = sim.total()
    assert total["images"] == 3 and total["cycles_no_skip"] == report.cycles * 8  # 8 input slices
    assert total["matmul_macs"] == 2 * TOKENS * TOKENS * DIM and total["matmul_energy_pj"] > 0


def test_ideal_chip_reproduces_float_and_products_run_where_the_chip_puts_them(small) -> None:
    model, x = small
    layers = extract_layers(model, x[:1]).layers
    outputs = {}
    for placement in ("digital", "crossbar"):
        report = map_network(layers, "im2col", with_placement(load_chip("default"), placement))
        ideal = to_crossbar(model, report, CrossbarConfig(ideal=True))
        assert torch.allclose(ideal(x), model(x), atol=1e-5)
        real = to_crossbar(model, report, CrossbarConfig())
        on_arrays = [m for m in real.modules() if isinstance(m, CrossbarMatMul)]
        assert len(on_arrays) == (2 if placement == "crossbar" else 0)
        outputs[placement] = real(x[:1])
    assert not torch.allclose(outputs["digital"], outputs["crossbar"])  # QKᵀ, A·V quantized too


def test_low_rank_queries_factorise_only_the_query_projections(small) -> None:
    model, x = small
    exact = low_rank_queries(model, latent=DIM)  # full rank: the SVD is exact
    assert [r.name for r in exact.layers] == ["blocks.0.attn.q"]
    assert isinstance(exact.model.blocks[0].attn.q, LowRankLinear)
    assert torch.allclose(exact.model(x), model(x), atol=1e-4)
    low = low_rank_queries(model, latent=8).model
    layers = extract_layers(low, x[:1]).layers
    pair = [layer for layer in layers if layer.factor_of == "blocks.0.attn.q"]
    assert [(p.in_channels, p.out_channels) for p in pair] == [(DIM, 8), (8, DIM)]
    report = map_network(layers, "low-rank-sdk", load_chip("default"))
    assert {m.layer.name for m in report.mappings} >= {"blocks.0.attn.q.r", "blocks.0.attn.q.l"}
    with pytest.raises(Exception, match="no nn.Linear named"):
        low_rank_queries(torch.nn.Sequential(torch.nn.Linear(4, 4)))


def test_shipped_checkpoint_loads_and_classifies() -> None:
    from imcsim.train.loop import evaluate
    from imcsim.zoo.checkpoints import checkpoint_path, load_data, load_model, read_checkpoint

    meta = read_checkpoint(checkpoint_path("tiny-vit"))
    assert meta["float_accuracy"] >= 0.9 and "--optimizer adamw" in meta["command"]
    model, weights = load_model("tiny-vit")
    assert "tiny-vit-mnist5k.pt" in weights
    data = load_data("tiny-vit")
    assert evaluate(model, data.test_images[:100], data.test_labels[:100]) >= 0.85
