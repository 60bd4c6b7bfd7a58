"""Low-rank / group low-rank factorisation and pruning of torch models (Theorem 1 included)."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from imcsim.errors import ConfigError
from imcsim.nn.compress import (
    LowRankConv2d,
    RankRule,
    balanced_factors,
    default_patterns,
    edge_patterns,
    factorize_conv,
    factorize_linear,
    layer_mask,
    load_pruned,
    low_rank,
    prune,
)
from imcsim.nn.compress.group import full_rank
from imcsim.nn.extract import extract_layers
from imcsim.zoo.models import build_model, example_input


def conv(cin: int = 8, cout: int = 12, k: int = 3, seed: int = 0, **kw) -> nn.Conv2d:
    torch.manual_seed(seed)
    return nn.Conv2d(cin, cout, k, padding=k // 2, **kw).double()


def rel_error(module: LowRankConv2d, layer: nn.Conv2d) -> float:
    w = layer.weight.detach()
    return float(torch.linalg.norm(w - module.reconstructed_weight().detach()) / torch.linalg.norm(w))


@pytest.mark.parametrize(("groups", "split"), [(1, "input"), (2, "input"), (4, "input"),
                                               (2, "output"), (3, "output")])
def test_full_rank_reproduces_the_layer(groups: int, split: str) -> None:
    layer = conv(stride=2, dilation=1)
    top = full_rank(tuple(layer.weight.shape), groups, split)
    module, record = factorize_conv(layer, top, groups=groups, split=split)
    x = torch.randn(2, 8, 9, 9, dtype=torch.float64)
    torch.testing.assert_close(module(x), layer(x), atol=1e-5, rtol=0)
    assert record.error < 1e-5 and (record.rank, record.full_rank) == (top, top)
    r_groups, l_groups = (groups, 1) if split == "input" else (1, groups)
    assert (module.r.groups, module.l.groups, module.l.kernel_size) == (r_groups, l_groups, (1, 1))
    assert module.r.stride == (2, 2) and module.l.bias is not None and module.r.bias is None


def test_full_rank_linear_and_float32() -> None:
    torch.manual_seed(0)
    fc = nn.Linear(10, 7)
    module, record = factorize_linear(fc, 7)
    x = torch.randn(3, 10)
    torch.testing.assert_close(module(x), fc(x), atol=1e-5, rtol=0)
    assert record.error < 1e-5 and module.r.weight.dtype == torch.float32


def test_truncation_error_is_eckart_young_and_split_is_balanced() -> None:
    layer = conv(seed=3)
    matrix = layer.weight.detach().reshape(12, -1)
    values = torch.linalg.svdvals(matrix)
    for rank in (1, 4, 9):
        module, record = factorize_conv(layer, rank)
        tail = torch.sqrt((values[rank:] ** 2).sum()) / torch.linalg.norm(matrix)
        assert record.error == pytest.approx(float(tail), rel=1e-9)
        assert record.error == pytest.approx(rel_error(module, layer), rel=1e-9)
    left, right = balanced_factors(matrix, 5)
    torch.testing.assert_close(left.T @ left, right @ right.T)  # both equal diag(S_k)


def test_rank_rules() -> None:
    layer = conv(cin=16, cout=16, seed=4)
    values = torch.linalg.svdvals(layer.weight.detach().reshape(16, -1).double())
    assert factorize_conv(layer, RankRule(ratio=0.5))[1].rank == 8
    energy = factorize_conv(layer, RankRule(energy=0.8))[1].rank
    kept = torch.cumsum(values**2, 0) / (values**2).sum()
    assert kept[energy - 1] >= 0.8 > kept[energy - 2]
    _, record = factorize_conv(layer, RankRule(keep=0.5))
    assert record.factored_params <= 0.5 * record.params < record.factored_params / record.rank * (record.rank + 1)


def test_model_keep_budget_and_extractor_tags() -> None:
    model = build_model("resnet20")
    fact = low_rank(model, RankRule(keep=0.5), groups=2)
    assert 0.45 < fact.factored_params / fact.params <= 0.5
    stem = next(f for f in fact.layers if f.name == "conv1")
    assert stem.groups == 1  # 3 input channels: not divisible by 2, stays plain
    assert {f.groups for f in fact.layers if f.name.startswith("layer")} == {2}
    assert isinstance(model.conv1, nn.Conv2d)  # the original is untouched
    x = example_input("resnet20")
    layers = extract_layers(fact.model, x).layers
    tagged = [(layer.name, layer.factor_of) for layer in layers if layer.factor_of]
    assert ("layer1.0.conv1.r", "layer1.0.conv1") in tagged and ("fc.l", "fc") in tagged
    assert len(tagged) == len(layers) == 2 * len(fact.layers)
    names = [layer.name for layer in layers]
    assert names.index("layer1.0.conv1.l") == names.index("layer1.0.conv1.r") + 1


def _theorem_1(weight: torch.Tensor, groups: int, split: str, rank: int) -> None:
    layer = nn.Conv2d(weight.shape[1], weight.shape[0], weight.shape[2], bias=False).double()
    with torch.no_grad():
        layer.weight.copy_(weight)
    plain = factorize_conv(layer, rank)[1].error
    grouped = factorize_conv(layer, rank, groups=groups, split=split)[1].error
    assert grouped <= plain + 1e-12


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 4), st.integers(1, 4), st.sampled_from([1, 3]), st.sampled_from([2, 3]),
       st.sampled_from(["input", "output"]), st.integers(1, 6), st.integers(0, 2**31))
def test_theorem_1_random_weights(cin_g, cout_g, k, groups, split, rank, seed) -> None:
    gen = torch.Generator().manual_seed(seed)
    weight = torch.randn(groups * cout_g, groups * cin_g, k, k, generator=gen, dtype=torch.float64)
    rank = min(rank, full_rank(tuple(weight.shape), groups, split))
    _theorem_1(weight, groups, split, rank)


@pytest.fixture(scope="module")
def trained_weight() -> torch.Tensor:
    """A 3×3 conv trained with Adam to imitate a smooth, structured target filter bank."""
    torch.manual_seed(0)
    grid = torch.linspace(-1, 1, 3)
    target = nn.Conv2d(8, 16, 3, padding=1, bias=False)
    with torch.no_grad():
        bump = torch.exp(-(grid[:, None] ** 2 + grid[None, :] ** 2))
        target.weight.copy_(torch.randn(16, 8, 1, 1) * bump + 0.1 * torch.randn(16, 8, 3, 3))
    student = nn.Conv2d(8, 16, 3, padding=1, bias=False)
    opt = torch.optim.Adam(student.parameters(), lr=0.05)
    losses = []
    for _ in range(80):
        x = torch.randn(4, 8, 6, 6)
        loss = nn.functional.mse_loss(student(x), target(x).detach())
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.01 * losses[0]  # it did learn
    return student.weight.detach().double()


@pytest.mark.parametrize(("groups", "split"), [(2, "input"), (4, "input"), (2, "output"), (4, "output")])
def test_theorem_1_trained_weights(trained_weight: torch.Tensor, groups: int, split: str) -> None:
    for rank in (1, 2, 4):
        _theorem_1(trained_weight, groups, split, rank)


def test_theorem_1_shipped_checkpoint() -> None:
    from imcsim.zoo.checkpoints import load_model

    model, weights = load_model("resnet20")
    if weights.startswith("untrained"):
        pytest.skip(f"no shipped resnet20 checkpoint ({weights})")
    for module in model.modules():
        if isinstance(module, nn.Conv2d) and module.kernel_size == (3, 3) and module.in_channels % 4 == 0:
            for groups, split in ((2, "input"), (4, "input"), (2, "output")):
                _theorem_1(module.weight.detach().double(), groups, split, 3)


def test_bad_factorisation_inputs() -> None:
    layer = conv(cin=6, cout=4)
    with pytest.raises(ConfigError, match="rank"):
        factorize_conv(layer, 0)
    with pytest.raises(ConfigError, match="rank 5 exceeds the full rank 4"):
        factorize_conv(layer, 5, name="c")
    with pytest.raises(ConfigError, match="groups=4 does not divide in_channels=6"):
        factorize_conv(layer, 1, groups=4, name="c")
    with pytest.raises(ConfigError, match="groups=3 does not divide out_channels=4"):
        factorize_conv(layer, 1, groups=3, split="output")
    with pytest.raises(ConfigError, match="split"):
        factorize_conv(layer, 1, groups=2, split="rows")  # type: ignore[arg-type]
    for bad in ({"keep": 0.0}, {"keep": 1.5}, {"ratio": 0}, {"energy": 1.2}, {"rank": 2, "keep": 0.5}, {}):
        with pytest.raises(ConfigError):
            RankRule(**bad)
    with pytest.raises(ConfigError, match="grouped conv"):
        factorize_conv(nn.Conv2d(4, 4, 3, groups=2), 1)


@pytest.mark.parametrize("method", ["unstructured", "filter", "channel", "pattern"])
def test_pruning_masks_and_outputs(method: str) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 8, 1))
    pruned = prune(model, method, 0.5)
    first = pruned.model[0]
    mask = first.weight_mask.bool()
    assert 0.4 <= pruned.kept / pruned.params <= 0.5
    if method == "filter":
        assert int(mask.flatten(1).any(1).sum()) == 8 and bool(mask.flatten(1).all(1).sum() == 8)
    if method == "channel":
        assert int(mask.any(0).flatten(1).any(1).sum()) == 4
    if method == "pattern":
        allowed = {p.tobytes() for p in default_patterns(3, 3, 0.5)}
        assert all(k.numpy().tobytes() in allowed for k in mask.reshape(-1, 3, 3))
        assert bool((mask == mask[:1]).all())  # one pattern per input channel, shared by filters
    x = torch.randn(2, 8, 6, 6)
    ref = nn.functional.conv2d(x, model[0].weight * mask, model[0].bias, padding=1)
    torch.testing.assert_close(first(x), ref)
    layers = extract_layers(pruned.model, x[:1]).layers
    assert layers[0].nonzero_params == int(mask.sum())


def test_masks_survive_save_load_and_training() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(4, 8, 3), nn.Flatten(), nn.Linear(8 * 4 * 4, 3))
    pruned = prune(model, "unstructured", 0.7).model
    x = torch.randn(2, 4, 6, 6)
    buf = io.BytesIO()
    torch.save(pruned, buf)
    buf.seek(0)
    again = torch.load(buf, weights_only=False)
    torch.testing.assert_close(again(x), pruned(x))
    fresh = load_pruned(nn.Sequential(nn.Conv2d(4, 8, 3), nn.Flatten(), nn.Linear(8 * 4 * 4, 3)),
                        pruned.state_dict())
    torch.testing.assert_close(fresh(x), pruned(x))
    zeros = pruned[0].weight == 0
    opt = torch.optim.SGD(pruned.parameters(), lr=0.1)
    pruned(x).sum().backward()
    opt.step()
    assert bool((pruned[0].weight[zeros] == 0).all())


def test_pattern_choice_keeps_the_strong_taps() -> None:
    weight = torch.ones(4, 2, 3, 3, dtype=torch.float64)
    weight[:, 0, 2, :] = 0.01  # channel 0: weak bottom edge
    weight[:, 1, :, 0] = 0.01  # channel 1: weak left edge
    mask = layer_mask(weight, "pattern", 1 / 3)
    assert not mask[:, 0, 2].any() and mask[:, 0, :2].all()
    assert not mask[:, 1, :, 0].any() and mask[:, 1, :, 1:].all()


def test_bad_pruning_inputs() -> None:
    model = nn.Sequential(nn.Conv2d(4, 8, 3))
    for sparsity in (-0.1, 1.0, 1.5):
        with pytest.raises(ConfigError, match=r"sparsity must be in \[0, 1\)"):
            prune(model, "unstructured", sparsity)
    with pytest.raises(ConfigError, match="unknown"):
        prune(model, "random", 0.5)
    with pytest.raises(ConfigError, match="pattern shape"):
        prune(model, "pattern", 0.5, patterns=[np.ones((2, 2), dtype=bool)])
    with pytest.raises(ConfigError, match="pattern 1 has shape"):
        prune(model, "pattern", 0.5, patterns=[np.ones((3, 3)), np.ones((2, 2))])
    assert len(edge_patterns(3, 3)) == 17  # 16 distinct edge subsets + empty
