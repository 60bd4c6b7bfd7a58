"""LayerShape geometry against torch, and chip configs."""

from __future__ import annotations

import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from imcsim import ArrayConfig, LayerShape, load_chip
from imcsim.hardware import chip_presets


@settings(max_examples=80, deadline=None)
@given(
    cin=st.integers(1, 4), cout=st.integers(1, 4), k=st.integers(1, 4), s=st.integers(1, 3),
    p=st.integers(0, 2), d=st.integers(1, 2), size=st.integers(1, 12), groups=st.sampled_from([1, 2]),
)
def test_output_size_params_and_macs_match_torch(cin, cout, k, s, p, d, size, groups) -> None:
    cin, cout = cin * groups, cout * groups
    assume(d * (k - 1) + 1 <= size + 2 * p)
    layer = LayerShape.conv2d(cin, cout, k, size, s, p, d, groups)
    conv = torch.nn.Conv2d(cin, cout, k, s, p, d, groups, bias=False)
    out = conv(torch.zeros(1, cin, size, size))
    assert tuple(out.shape[-2:]) == layer.output_size
    assert conv.weight.numel() == layer.params
    assert layer.macs == out.numel() * layer.reduction_size


def test_linear_is_a_1x1_conv_over_positions() -> None:
    fc = LayerShape.linear(512, 10, positions=4, name="fc")
    assert fc.output_size == (1, 4) and fc.macs == 4 * 512 * 10 and fc.kind == "linear"


def test_mask_round_trip() -> None:
    layer = LayerShape.conv2d(2, 3, 3, 5)
    mask = torch.rand(layer.weight_shape, generator=torch.Generator().manual_seed(0)) > 0.5
    masked = layer.with_mask(mask.numpy())
    assert (masked.nonzero_mask() == mask.numpy()).all()
    assert masked.nonzero_params == int(mask.sum())
    assert layer.nonzero_mask() is None and layer.nonzero_params == layer.params


def test_bit_slicing_and_sign_columns() -> None:
    assert ArrayConfig(rows=8, cols=8).cols_per_weight == 1
    sliced = ArrayConfig(rows=128, cols=128, cell_bits=2, weight_bits=8)
    assert (sliced.cols_per_weight, sliced.effective_cols) == (4, 32)
    diff = ArrayConfig(rows=128, cols=128, cell_bits=2, weight_bits=8, sign="differential")
    assert (diff.cols_per_weight, diff.effective_cols) == (8, 16)


def test_every_chip_preset_loads() -> None:
    names = chip_presets()
    assert "default" in names
    for name in names:
        chip = load_chip(name)
        assert chip.name == name and chip.source
    assert load_chip("default").cost == load_chip("isaac").cost  # borrowed via cost_preset


def test_copies_recompute_cached_geometry() -> None:
    layer = LayerShape.conv2d(2, 3, 3, 5)
    assert layer.nonzero_params == 54 and layer.output_size == (3, 3)
    mask = torch.ones(layer.weight_shape, dtype=torch.bool)
    mask[0] = False
    assert layer.with_mask(mask.numpy()).nonzero_params == 36
    assert layer.model_copy(update={"input_size": (7, 7)}).output_size == (5, 5)
