"""Language models at any size: shape-only capture, token inputs, prefill and decode,
mixture of experts, capacity and reload.

Expected counts are written out from the layer sizes (tokens × in × out per weight
matrix; heads × queries × keys × head_dim per attention product) or taken from torch's
own ``FlopCounterMode`` on a real run — never from imcsim.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from imcsim import ArrayConfig, ChipConfig, map_network
from imcsim.capacity import ReloadConfig
from imcsim.errors import ConfigError
from imcsim.nn.extract import extract_layers
from imcsim.nn.fake import shape_only
from imcsim.tokens import causal_macs, token_totals
from imcsim.zoo.inference import InputSpec
from imcsim.zoo.workloads import model_workload
from tests.cli_helpers import run

transformers = pytest.importorskip("transformers")

SMALL = dict(num_hidden_layers=2, hidden_size=256, intermediate_size=512,
             num_attention_heads=8, num_key_value_heads=2, vocab_size=1000)
"""A 2-layer, hidden-256 Llama with grouped-query attention (2 KV heads for 8)."""


def small_llama() -> nn.Module:
    torch.manual_seed(0)
    return transformers.AutoModelForCausalLM.from_config(transformers.LlamaConfig(**SMALL))


def llama_weight_macs(tokens: int, layers: int = 2, d: int = 256, ff: int = 512,
                      kv: int = 64, vocab: int = 1000) -> int:
    """q, o (d×d), k, v (d×kv), gate, up, down (d×ff) per layer, and the LM head."""
    return tokens * (layers * (2 * d * d + 2 * d * kv + 3 * d * ff) + d * vocab)


def signature(layers) -> list[tuple]:
    return [(x.name, x.kind, x.in_channels, x.out_channels, x.kernel_size, x.input_size,
             x.stride, x.padding, x.dilation, x.groups, x.experts, x.macs) for x in layers]


# -- shape-only capture equals a real one, layer by layer ------------------------------
class Attention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(32, 4, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attn(x, x, x, need_weights=False)[0]


class Functional(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(20, 32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(F.linear(x, self.w), self.w.t())


PLAIN = {
    "mha": (Attention, (1, 10, 32)),
    "encoder": (lambda: nn.TransformerEncoderLayer(32, 4, 48, batch_first=True, dropout=0.0),
                (2, 10, 32)),
    "functional": (Functional, (1, 3, 10, 32)),
    "conv1d": (lambda: nn.Conv1d(6, 8, 5, stride=2, padding=2, groups=2), (1, 6, 40)),
    "conv_transpose": (lambda: nn.ConvTranspose2d(8, 6, 3, stride=2, padding=1,
                                                  output_padding=1, groups=2), (1, 8, 5, 7)),
    "lstm": (lambda: nn.LSTM(12, 16, num_layers=2, bidirectional=True), (7, 1, 12)),
}


@pytest.mark.parametrize("name", list(PLAIN))
def test_shape_only_capture_equals_a_real_one_on_plain_models(name: str) -> None:
    factory, shape = PLAIN[name]
    real = extract_layers(factory().eval(), torch.randn(shape))
    with shape_only():
        fake = extract_layers(factory().eval(), torch.randn(shape))
    assert signature(fake.layers) == signature(real.layers) and fake.layers
    assert fake.unmapped == real.unmapped and fake.coverage == real.coverage


@pytest.mark.parametrize("name", ["resnet20", "tiny-vit", "vgg-cifar", "wrn16-4"])
def test_shape_only_capture_equals_a_real_one_on_the_built_in_models(name: str) -> None:
    real = model_workload(name, spec=InputSpec(shape_only=False))
    fake = model_workload(name, spec=InputSpec(shape_only=True))
    assert fake.inference["shape_only"] and not real.inference["shape_only"]
    assert not model_workload(name, spec=InputSpec()).inference["shape_only"]  # small: real
    assert signature(fake.layers) == signature(real.layers)
    assert fake.coverage == real.coverage and fake.unmapped == real.unmapped


@pytest.mark.parametrize("config", ["gpt2", "bert", "llama", "mixtral"])
def test_shape_only_capture_equals_a_real_one_on_transformers(config: str) -> None:
    cfg = {
        "gpt2": lambda: transformers.GPT2Config(n_layer=2, n_embd=64, n_head=4, vocab_size=500),
        "bert": lambda: transformers.BertConfig(num_hidden_layers=2, hidden_size=64,
                                                num_attention_heads=4, intermediate_size=128,
                                                vocab_size=500),
        "llama": lambda: transformers.LlamaConfig(**SMALL),
        "mixtral": lambda: transformers.MixtralConfig(
            **SMALL, num_local_experts=4, num_experts_per_tok=2),
    }[config]
    ids = torch.randint(0, 500, (1, 12))

    def build():
        torch.manual_seed(0)
        return transformers.AutoModel.from_config(cfg()).eval()

    with shape_only():  # Mixtral's grouped experts need bfloat16: run both in it
        fake = extract_layers(build(), torch.randint(0, 500, (1, 12)))
    model = build().to(torch.bfloat16) if config == "mixtral" else build()
    real = extract_layers(model, ids)
    assert signature(fake.layers) == signature(real.layers)
    assert fake.coverage == real.coverage


# -- token inputs and the reference counts ---------------------------------------------
def test_small_gqa_llama_weight_macs_match_the_flop_counter_on_a_real_run() -> None:
    from torch.utils.flop_counter import FlopCounterMode

    tokens = 64
    model = small_llama().eval()
    ids = torch.randint(0, SMALL["vocab_size"], (1, tokens))
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(ids)
    flops = counter.get_flop_counts()["Global"]
    real_mm = sum(v for op, v in flops.items() if "mm" in str(op) and "bmm" not in str(op))
    spec = InputSpec(shape=(1, tokens), dtype="int64")
    with shape_only():
        from imcsim.zoo.inference import build_input
        fake = extract_layers(small_llama(), build_input(small_llama(), spec.shape, "int64"))
    assert fake.coverage.weight_macs == real_mm // 2 == llama_weight_macs(tokens)
    heads, head_dim = 8, 32
    assert fake.coverage.matmul_macs == 2 * 2 * heads * tokens * tokens * head_dim


def test_token_ids_stay_below_the_vocabulary() -> None:
    from imcsim.zoo.inference import build_input

    ids = build_input(small_llama(), (2, 300), "int64")
    assert ids.dtype == torch.int64 and int(ids.max()) < SMALL["vocab_size"]
    with pytest.raises(ConfigError, match="no vocab_size"):
        build_input(nn.Linear(3, 3), (1, 3), "int64")


@pytest.mark.slow
def test_llama2_7b_prefill_numbers_from_the_command_line(capsys) -> None:
    result = run(capsys, "map", "--model", "transformers:LlamaConfig", "--input-shape", "1,128",
                 "--input-dtype", "int64", "--array", "256x256", "--mapper", "im2col",
                 "--format", "json")
    assert result.code == 0, result.err
    total = result.json()["total"]
    assert total["macs"] == 845_705_904_128 and total["matmul_macs"] == 4_294_967_296
    assert total["phase"] == "prefill" and total["attention_macs"] == "full"
    assert total["weights_stored"] == total["params"]


# -- decode -----------------------------------------------------------------------------
@pytest.fixture
def small_file(tmp_path) -> str:
    """The small Llama as a ``FILE.py:FACTORY`` model."""
    path = tmp_path / "small_llama.py"
    path.write_text(
        "import transformers\nINPUT_SHAPE = (1, 8)\n\n\ndef build():\n"
        f"    return transformers.AutoModelForCausalLM.from_config("
        f"transformers.LlamaConfig(**{SMALL!r}))\n")
    return f"{path}:build"


def test_decode_counts_one_token_against_the_cache(small_file) -> None:
    context, heads, head_dim, layers = 40, 8, 32, 2
    work = model_workload(small_file, spec=InputSpec(phase="decode", context=context, batch=3))
    weights = sum(x.macs for x in work.layers if x.kind != "matmul")
    products = sum(x.macs for x in work.layers if x.kind == "matmul")
    assert weights == 3 * llama_weight_macs(1)
    # 2·layers·hidden·(L + 1) per token: the new token's own key counts
    assert products == 3 * 2 * layers * heads * head_dim * (context + 1)
    # keys and values of every layer, 2 KV heads of 32, context + 1 positions, 3 sequences
    assert work.inference["kv_cache_elements"] == 2 * layers * 2 * head_dim * (context + 1) * 3
    report = map_network(work.layers, "im2col", ArrayConfig(rows=64, cols=64))
    total = token_totals(report, work.inference)
    assert total["per"] == "token" and total["macs"] == llama_weight_macs(1)
    assert total["matmul_macs"] == 2 * layers * heads * head_dim * (context + 1)
    assert total["kv_cache_bytes"] == work.inference["kv_cache_elements"]  # 8-bit inputs


def test_decode_batching_fills_the_arrays(small_file, capsys) -> None:
    busy = {}
    for batch in (1, 16):
        result = run(capsys, "map", "--model", small_file, "--phase",
                     "decode", "--context", "32", "--batch", str(batch), "--array", "64x64",
                     "--mapper", "im2col", "--cost", "isaac", "--schedule", "pipelined",
                     "--format", "json")
        assert result.code == 0, result.err
        total = result.json()["total"]
        busy[batch] = total["array_busy"], total["tokens_per_s"], total["energy_per_token_pj"]
    assert busy[1][0] < 0.2 < busy[16][0]  # one layer of 15 busy at a time, then a pipeline
    assert busy[16][1] > 3 * busy[1][1]  # tokens/s: the pipeline fills (LM head slowest)


@pytest.mark.parametrize("args, match", [
    (["--phase", "decode"], "needs --context"),
    (["--phase", "decode", "--context", "8", "--input-shape", "1,4"], "not --input-shape"),
    (["--context", "8"], "for --phase decode"),
    (["--phase", "sideways"], "prefill or decode"),
    (["--input-dtype", "int8"], "input_dtype: 'int8' is not one of"),
])
def test_bad_phase_options_are_one_line_errors(capsys, args, match) -> None:
    result = run(capsys, "map", "--model", "resnet20", "--array", "64x64", *args)
    assert result.code == 2 and match in result.err and result.err.count("\n") == 1


def test_decode_of_a_model_without_a_cache_is_refused(capsys) -> None:
    result = run(capsys, "map", "--model", "resnet20", "--array", "64x64", "--phase", "decode",
                 "--context", "4")
    assert result.code == 2 and "not a transformers language model" in result.err


def test_causal_convention_halves_square_products() -> None:
    from imcsim.layers import LayerShape

    qk = LayerShape.matmul(32, 128, 128, groups=32)  # 128 queries × 128 keys, 32 heads
    assert causal_macs(qk) == 32 * 32 * 128 * 129 // 2
    one = LayerShape.matmul(32, 2049, 1, groups=32)  # decode: one query, every key
    assert causal_macs(one) == one.macs


# -- mixture of experts -------------------------------------------------------------------
def test_mixtral_routed_layer_reports_executed_macs_and_stored_weights() -> None:
    tokens, experts, top_k, d, ff = 12, 4, 2, 256, 512
    cfg = transformers.MixtralConfig(**SMALL, num_local_experts=experts,
                                     num_experts_per_tok=top_k)
    with shape_only():
        ex = extract_layers(transformers.AutoModelForCausalLM.from_config(cfg),
                            torch.randint(0, 1000, (1, tokens)))
    routed = [x for x in ex.layers if x.experts > 1]
    assert [x.name.rsplit(".", 1)[-1] for x in routed] == ["gate_up_proj", "down_proj"] * 2
    assert sum(x.macs for x in routed) == 2 * tokens * top_k * 3 * d * ff  # top-k executed
    assert sum(x.stored_params for x in routed) == 2 * experts * 3 * d * ff  # all stored
    report = map_network(ex.layers, "im2col", ArrayConfig(rows=256, cols=256))
    total = report.total()
    assert total["weights_stored"] - total["params"] == 2 * (experts - 1) * 3 * d * ff
    stated = token_totals(report, {"phase": "prefill", "tokens": tokens})
    assert "uniform load assumed" in stated["routing"]
    assert ex.coverage.complete, ex.coverage  # the flop counter now counts _grouped_mm


class TopKMoE(nn.Module):
    """A plain-torch top-k router: each token's k experts, run on the tokens routed to them."""

    def __init__(self, d: int = 16, experts: int = 4, k: int = 2) -> None:
        super().__init__()
        self.k, self.router = k, nn.Linear(d, experts)
        self.experts = nn.ModuleList(nn.Linear(d, d) for _ in range(experts))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights, chosen = self.router(x).softmax(-1).topk(self.k, dim=-1)
        out = torch.zeros_like(x)
        for e, expert in enumerate(self.experts):
            rows, slot = torch.where(chosen == e)
            out[rows] += weights[rows, slot, None] * expert(x[rows])
        return out


def test_plain_torch_top_k_router_executes_k_experts_per_token() -> None:
    torch.manual_seed(0)
    tokens, d, k = 20, 16, 2
    ex = extract_layers(TopKMoE(d=d, k=k), torch.randn(tokens, d))
    experts = [x for x in ex.layers if x.name.startswith("experts.")]
    assert sum(x.input_size[1] for x in experts) == tokens * k  # real routing
    assert sum(x.macs for x in experts) == tokens * k * d * d


# -- capacity and reload -----------------------------------------------------------------
def test_weights_that_do_not_fit_are_streamed_and_priced() -> None:
    from imcsim.layers import LayerShape

    layers = [LayerShape.linear(128, 128, positions=1, name=f"l{i}") for i in range(4)]
    array = ArrayConfig(rows=64, cols=64)  # each layer: 2 × 2 = 4 arrays
    reload = ReloadConfig(write_energy_pj_per_cell=2.0, write_ns_per_row=10.0,
                          verify_iterations=3)
    fits = map_network(layers, "im2col", ChipConfig(array=array, n_arrays=16)).total()
    assert fits["arrays_needed"] == 16 and fits["fits_on_chip"] is True
    assert "reload_energy_pj" not in fits
    chip = ChipConfig(array=array, n_arrays=10, reload=reload)
    total = map_network(layers, "im2col", chip).total()
    # a pool of 4 arrays, l0 pinned in the 6 beside it (l1 no longer fits): 3 streamed
    assert total["fits_on_chip"] is False and total["pinned_layers"] == 1
    assert total["reload_cells_per_step"] == 3 * 128 * 128
    assert total["reload_energy_pj"] == 3 * 128 * 128 * 2.0 * 3
    assert total["reload_latency_ns"] == 3 * 64 * 10.0 * 3  # 64 rows per array, serial


def test_token_charts_break_energy_down_by_layer_kind(small_file, capsys, tmp_path) -> None:
    from imcsim.plotting import render_charts

    records = []
    for phase in (["--input-shape", "1,16", "--input-dtype", "int64"],
                  ["--phase", "decode", "--context", "16"]):
        result = run(capsys, "map", "--model", small_file, *phase, "--array", "64x64",
                     "--mapper", "im2col", "--cost", "isaac", "--format", "json")
        assert result.code == 0, result.err
        records.append(result.json()["total"])
    kinds = records[1]["by_kind"]
    assert set(kinds) == {"attention projections", "MLP", "attention products", "LM head"}
    total = sum(k["energy_pj"] for k in kinds.values())
    assert total == pytest.approx(records[1]["energy_per_token_pj"])
    paths = render_charts(records, tmp_path, ["token_energy", "token_latency"])
    assert [p.name for p in paths] == ["token_energy.png", "token_latency.png"]
    assert all(p.stat().st_size > 0 for p in paths)


def test_embeddings_are_lookups_and_tied_tables_are_stored_once() -> None:
    from imcsim.tokens import digital_summary

    tokens, d, vocab, layers = 12, 64, 500, 2
    cfg = transformers.GPT2Config(n_layer=layers, n_embd=d, n_head=4, vocab_size=vocab)
    with shape_only():
        model = transformers.AutoModelForCausalLM.from_config(cfg)
        ex = extract_layers(model, torch.randint(0, vocab, (1, tokens)))
    summary = digital_summary(ex.digital, ex.layers)
    # token and position tables are read, not multiplied: tokens × d values each
    assert summary["digital_elements"]["embedding"] == 2 * tokens * d
    assert summary["tied_embeddings"] == ["transformer.wte.weight"]
    head = [x for x in ex.layers if x.name == "transformer.wte"]
    assert len(head) == 1 and head[0].out_channels == vocab  # the LM head, stored once
    report = map_network(ex.layers, "im2col", ArrayConfig(rows=64, cols=64))
    assert report.total()["weights_stored"] == layers * 12 * d * d + d * vocab
    # two LayerNorms per block and the final one, tokens × d each; softmax per head
    assert summary["digital_elements"]["norm"] == (2 * layers + 1) * tokens * d
    assert summary["digital_elements"]["softmax"] == layers * 4 * tokens * tokens
