"""Any model in, nothing dropped: transformer and sequence models written in plain torch.

Every expected count below is written out by hand from the layer sizes (weights:
tokens × in × out; attention: 2 products of T×d·d×T per head), not taken from imcsim.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from imcsim import ArrayConfig, ChipConfig, get_mapper, map_network
from imcsim.errors import ImcsimWarning
from imcsim.layers import LayerShape
from imcsim.nn import CrossbarConfig, extract_layers, to_crossbar

E, HEADS, T = 32, 4, 10


def split(model: nn.Module, x: object):
    ex = extract_layers(model, x)
    weights = [layer for layer in ex.layers if layer.kind != "matmul"]
    products = [layer for layer in ex.layers if layer.kind == "matmul"]
    return ex, weights, products


def assert_complete(ex) -> None:
    assert ex.unmapped == ()
    assert ex.coverage.complete, ex.coverage


class SelfAttention(nn.Module):
    def __init__(self, batch_first: bool) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(E, HEADS, batch_first=batch_first)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attn(x, x, x, need_weights=False)[0]


@pytest.mark.parametrize("batch_first", [True, False])
def test_multihead_attention_both_layouts(batch_first: bool) -> None:
    x = torch.randn(1, T, E) if batch_first else torch.randn(T, 1, E)
    ex, weights, products = split(SelfAttention(batch_first), x)
    assert [(w.name, w.input_size) for w in weights] == [
        ("attn.in_proj", (1, T)), ("attn.out_proj", (1, T))]
    assert sum(w.macs for w in weights) == T * (3 * E * E + E * E)
    assert [p.macs for p in products] == [T * T * E, T * T * E]  # QKᵀ and A·V, all heads
    assert all(p.groups == HEADS for p in products)
    assert_complete(ex)


@pytest.mark.parametrize("batch_first", [True, False])
def test_transformer_encoder_layer_both_layouts(batch_first: bool) -> None:
    ff = 48
    layer = nn.TransformerEncoderLayer(E, HEADS, ff, batch_first=batch_first, dropout=0.0)
    x = torch.randn(2, T, E) if batch_first else torch.randn(T, 2, E)
    ex, weights, products = split(layer, x)
    # the whole (2 sequences) input is the example: no convolution says otherwise
    tokens = 2 * T
    assert sum(w.macs for w in weights) == tokens * (4 * E * E + 2 * E * ff)
    assert sum(p.macs for p in products) == 2 * (2 * T * T * E)
    assert_complete(ex)


class WindowAttention(nn.Module):
    """Swin-style: windows of ws×ws tokens folded into dimension 0, heads inside."""

    def __init__(self, ws: int = 4) -> None:
        super().__init__()
        self.ws, self.qkv, self.proj = ws, nn.Linear(E, 3 * E), nn.Linear(E, E)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, H, W, C)
        b, h, w, c = x.shape
        ws = self.ws
        win = x.view(b, h // ws, ws, w // ws, ws, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, ws * ws, c)
        q, k, v = self.qkv(win).reshape(len(win), ws * ws, 3, HEADS, c // HEADS).permute(2, 0, 3, 1, 4)
        attn = (q @ k.transpose(-2, -1)).softmax(-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(len(win), ws * ws, c))


def test_swin_window_attention_folds_windows_into_dimension_zero() -> None:
    h = w = 8
    ex, weights, products = split(WindowAttention(), torch.randn(1, h, w, E))
    assert [wt.input_size for wt in weights] == [(1, h * w), (1, h * w)]  # not (1, 16)
    assert sum(wt.macs for wt in weights) == h * w * (3 * E * E + E * E)
    windows = (h // 4) * (w // 4)
    assert [p.groups for p in products] == [windows * HEADS] * 2
    assert sum(p.macs for p in products) == 2 * windows * 16 * 16 * E
    assert_complete(ex)


class Functional(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(20, E))
        self.b = nn.Parameter(torch.zeros(20))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(F.linear(x, self.w, self.b), self.w.t())


def test_functional_linear_calls_are_layers_named_after_the_weight() -> None:
    ex, weights, _ = split(Functional(), torch.randn(1, 3, T, E))
    assert [(w.name, w.in_channels, w.out_channels, w.input_size) for w in weights] == [
        ("w", E, 20, (1, 3 * T)), ("w#2", 20, E, (1, 3 * T))]
    assert_complete(ex)


def test_conv1d_conv_transpose2d_and_lstm_counts() -> None:
    conv1d = nn.Conv1d(6, 8, 5, stride=2, padding=2, groups=2)
    ex, (layer,), _ = split(conv1d, torch.randn(1, 6, 40))
    assert layer.kind == "conv1d" and layer.output_size == (1, 20)
    assert layer.macs == 20 * 8 * 3 * 5
    up = nn.ConvTranspose2d(8, 6, 3, stride=2, padding=1, output_padding=1, groups=2)
    ex, (layer,), _ = split(up, torch.randn(1, 8, 5, 7))
    assert layer.kind == "conv_transpose2d" and layer.transposed.out_channels == 6
    assert layer.macs == 5 * 7 * 8 * 3 * 9  # every input pixel × its C_out/g·K² weights, no zeros
    lstm = nn.LSTM(12, 16, num_layers=2, bidirectional=True, batch_first=True)
    ex, weights, _ = split(lstm, torch.randn(1, T, 12))
    assert [w.name for w in weights] == ["LSTM.l0", "LSTM.l0_reverse", "LSTM.l1", "LSTM.l1_reverse"]
    assert [w.macs for w in weights] == [T * 4 * 16 * (12 + 16)] * 2 + [T * 4 * 16 * (32 + 16)] * 2
    assert_complete(ex)


class Conv1D(nn.Module):
    """transformers' GPT-2 ``Conv1D``: a Linear whose weight is stored (in, out)."""

    def __init__(self, nf: int, nx: int) -> None:
        super().__init__()
        self.weight, self.bias = nn.Parameter(torch.randn(nx, nf) * 0.02), nn.Parameter(torch.zeros(nf))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.addmm(self.bias, x.view(-1, x.size(-1)), self.weight)
        return out.view(*x.shape[:-1], -1)


class Gpt2Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c_attn, self.c_proj = Conv1D(3 * E, E), Conv1D(E, E)
        self.c_fc, self.c_out = Conv1D(4 * E, E), Conv1D(E, 4 * E)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        q, k, v = (s.view(b, t, HEADS, -1).transpose(1, 2) for s in self.c_attn(x).split(E, 2))
        att = torch.matmul(q, k.transpose(-1, -2)).softmax(-1)
        x = x + self.c_proj(torch.matmul(att, v).transpose(1, 2).reshape(b, t, E))
        return x + self.c_out(F.gelu(self.c_fc(x)))


def test_gpt2_style_conv1d_block() -> None:
    ex, weights, products = split(Gpt2Block(), torch.randn(1, T, E))
    assert [w.name for w in weights] == ["c_attn", "c_proj", "c_fc", "c_out"]
    assert sum(w.macs for w in weights) == T * (3 * E * E + E * E + 8 * E * E)
    assert [p.macs for p in products] == [T * T * E] * 2
    assert_complete(ex)


def test_ideal_crossbar_reproduces_conv1d_and_transposed_conv() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv1d(3, 8, 3, padding=1), nn.Unflatten(2, (4, 4)),
                          nn.ConvTranspose2d(8, 4, 3, stride=2, padding=1, output_padding=1, groups=2))
    x = torch.randn(3, 3, 16)
    layers = extract_layers(model, x[:1]).layers
    for mapper in ("im2col", "vw-sdk"):
        report = map_network(layers, mapper, ArrayConfig(rows=16, cols=16))
        chip = to_crossbar(model, report, CrossbarConfig(ideal=True))
        assert torch.allclose(chip(x), model(x), atol=1e-5)
    noisy = to_crossbar(model, report, CrossbarConfig(weight_bits=4, input_bits=4, adc_bits=4))
    assert not torch.allclose(noisy(x), model(x), atol=1e-3)


def test_to_crossbar_names_the_layers_left_in_float() -> None:
    model = SelfAttention(True)
    layers = extract_layers(model, torch.randn(1, T, E)).layers
    report = map_network(layers, "im2col", ArrayConfig(rows=64, cols=64))
    with (pytest.warns(ImcsimWarning, match="attn.in_proj, attn.out_proj stay in float"),
          pytest.raises(Exception, match="no layer with a crossbar form")):
        to_crossbar(model, report, CrossbarConfig(ideal=True))
    lstm = nn.LSTM(4, 8)
    report = map_network(extract_layers(nn.Sequential(nn.Linear(4, 4), lstm), torch.randn(T, 1, 4)).layers,
                         "im2col", ArrayConfig(rows=64, cols=64))
    with pytest.warns(ImcsimWarning, match=r"1.l0 stay in float"):
        to_crossbar(nn.Sequential(nn.Linear(4, 4), lstm), report, CrossbarConfig(ideal=True))


def test_recurrent_layers_never_put_two_time_steps_in_one_window() -> None:
    layer = LayerShape.rnn("gru", 8, 16, steps=40)
    array = ArrayConfig(rows=256, cols=256)
    for name in ("im2col", "sdk", "sdk-unconstrained", "vw-sdk", "sdk-rect"):
        m = get_mapper(name).map(layer, array)
        assert m.window == (1, 1) and m.cycles == 40 * m.tiles, name


def test_sdk_and_vw_sdk_on_a_linear_are_block_diagonal_copies() -> None:
    """A window of a tokens shares no input: SDK duplicates W a times on the diagonal.
    It pays only while W fits the array twice; a wide Linear maps exactly as im2col."""
    array = ArrayConfig(rows=128, cols=128)
    small = LayerShape.linear(16, 16, positions=64)
    m = get_mapper("sdk").map(small, array)
    assert m.window == (1, 8) and m.driven_rows == 8 * 16 and m.cycles == 64 // 8
    wide = LayerShape.linear(768, 768, positions=128)
    im2col = get_mapper("im2col").map(wide, array).cycles
    assert im2col == 128 * math.ceil(768 / 128) ** 2
    for name in ("sdk", "vw-sdk"):
        assert get_mapper(name).map(wide, array).cycles == im2col, name


def test_map_network_splits_products_off_and_counts_their_macs() -> None:
    ex = extract_layers(Gpt2Block(), torch.randn(1, T, E))
    chip = ChipConfig(array=ArrayConfig(rows=64, cols=64))
    report = map_network(ex.layers, "im2col", chip)
    assert len(report.mappings) == 4 and len(report.matmuls) == 2
    total = report.total()
    assert total["macs"] == ex.coverage.weight_macs and total["matmul_macs"] == 2 * T * T * E


def test_array_form_weights_write_back_into_every_module_layout() -> None:
    from imcsim.nn.ops import module_entry, set_array_weight

    modules = [nn.Conv2d(4, 6, 3), nn.Linear(5, 7), nn.Conv1d(4, 6, 3, groups=2),
               nn.ConvTranspose2d(4, 6, 3, groups=2)]
    try:
        from transformers.pytorch_utils import Conv1D as HfConv1D

        modules.append(HfConv1D(7, 5))
    except ImportError:
        pass
    for module in modules:
        entry = module_entry(module)
        original = module.weight.detach().clone()
        array = entry.weight(module).detach().clone()
        with torch.no_grad():
            module.weight.zero_()
        set_array_weight(module, array)
        assert torch.equal(module.weight, original), type(module).__name__


class SamePad(nn.Module):
    """timm's Conv2dSame: TF-style asymmetric padding computed at run time."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 6, 4, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (1, 2, 1, 2)))


@pytest.mark.parametrize("make", [
    lambda: nn.Conv2d(4, 6, 5, padding="same"),
    lambda: nn.Conv2d(4, 6, 3, padding=2, dilation=2, padding_mode="reflect"),
    lambda: nn.Conv1d(4, 6, 3, padding="same", padding_mode="circular"),
    SamePad,
])
def test_same_and_non_zero_padding_are_layers_with_the_real_output_size(make) -> None:
    module = make()
    x = torch.randn(1, 4, 11, 11) if not isinstance(module, nn.Conv1d) else torch.randn(1, 4, 11)
    ex, (layer,), _ = split(module, x)
    out = module(x)
    assert layer.output_size == ((1, out.shape[-1]) if out.dim() == 3 else tuple(out.shape[-2:]))
    weight = module.conv.weight if isinstance(module, SamePad) else module.weight
    assert layer.macs == out[0].numel() * math.prod(weight.shape[1:])
    assert_complete(ex)
    if isinstance(module, nn.Conv2d):
        report = map_network(ex.layers, "im2col", ArrayConfig(rows=32, cols=32))
        with (pytest.warns(ImcsimWarning, match="has no crossbar layer yet"),
              pytest.raises(Exception, match="no layer with a crossbar form")):
            to_crossbar(module, report, CrossbarConfig(ideal=True))


def test_rnn_inputs_for_the_cycle_simulator_are_x_and_the_previous_hidden_state() -> None:
    from imcsim.nn.extract import layer_inputs

    torch.manual_seed(0)
    gru = nn.GRU(4, 8, batch_first=True)
    x = torch.randn(2, T, 4)
    seen = layer_inputs(gru, x, ["GRU.l0"])["GRU.l0"]  # (2 examples, 4 + 8, 1, T)
    assert seen.shape == (2, 12, 1, T)
    out, _ = gru(x)
    assert torch.allclose(torch.from_numpy(seen[:, :4, 0, :]), x.transpose(1, 2))
    assert not seen[:, 4:, 0, 0].any()  # h_0 = 0
    assert torch.allclose(torch.from_numpy(seen[:, 4:, 0, 1:]), out[:, :-1].transpose(1, 2), atol=1e-6)


def test_batched_search_keeps_time_steps_apart() -> None:
    from imcsim.mappers.search import map_batch

    layers = [LayerShape.rnn("lstm", 8, 16, steps=40), LayerShape.linear(24, 64, positions=40)]
    batch = map_batch(layers, [ArrayConfig(rows=256, cols=256)], "sdk-unconstrained")
    assert batch.windows[0, 0].tolist() == [1, 1] and batch.cycles[0, 0] == 40
    assert batch.windows[1, 0].tolist() != [1, 1]  # the same matrix as a Linear may batch tokens
