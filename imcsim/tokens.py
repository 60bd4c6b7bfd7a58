"""Language-model figures of a mapped network: per-token totals, the attention-MAC
convention, the KV cache, digital operations and the arrays' busy fraction.

A *step* is one captured forward pass: a prompt of ``tokens`` positions in ``prefill``,
or one new token for each of ``batch`` sequences in ``decode``.  Under decode the
figures in ``total`` are per token (the step's MACs, cycles and energy divided by its
tokens); the time between two tokens of one sequence is the whole step's latency
(``token_latency_ns``), and ``tokens_per_s`` = tokens of a step / its latency.

Attention MACs: ``full`` counts QKᵀ and A·V as full products (as
``torch.utils.flop_counter`` counts them); ``causal`` counts what a causal mask leaves,
query *i* of *n* meeting *i* keys: n(n+1)/2 of n² per head.  A decode step (one query
over every cached key and its own) is the same under both.

With ``--schedule pipelined`` (each layer on its own arrays) the step's array time is
one token's latency plus one slowest layer per further token, so batching raises
``tokens_per_s``; under the sequential schedule array time grows with the batch.

``array_busy``: the fraction of the arrays' cycles spent computing when each layer has
its own arrays, its tiles computing in parallel (one window per cycle), and the tokens
of a step flow through the layers as a pipeline: Σ tiles·windows / (Σ tiles × (Σ
per-token windows + (tokens − 1) × slowest per-token windows)).  Decode at batch 1
keeps one layer of N busy (1/N for linear layers); a batch of B gives B/(N + B − 1).
(imcsim's ``cycles`` and the cost model's latency count a layer's tiles one after the
other, windows × tiles, as the VW-SDK papers do; ``array_busy`` does not.)
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any, Literal

from imcsim.errors import ConfigError
from imcsim.layers import LayerShape
from imcsim.report import NetworkReport

__all__ = ["KINDS", "ROUTING", "AttentionMacs", "array_busy", "by_kind", "causal_macs", "digital_summary",
           "layer_kind", "token_totals"]

AttentionMacs = Literal["full", "causal"]
PER_TOKEN = ("macs", "matmul_macs", "cycles", "latency_cycles", "energy_pj",
             "matmul_energy_pj", "reload_energy_pj")
"""Step totals that a decode report gives per token."""


ROUTING = ("top-k of every token executed (macs exact); the split of tokens across experts "
           "is not known without real routing: uniform load assumed, cycles map the routed "
           "positions through one expert's arrays; weights_stored holds every expert")
"""The routing assumption a report with routed (mixture-of-experts) layers states."""
KINDS = ("attention projections", "MLP", "attention products", "LM head", "other",
         "weight reload")
"""Layer kinds of a language model's per-token breakdown (``by_kind``)."""


def layer_kind(layer: LayerShape) -> str:
    """The kind of a layer by its module path (Hugging Face and PyTorch naming): routed
    experts and their router belong to the MLP."""
    name = layer.name.lower()
    if layer.kind == "matmul":
        return "attention products"
    if "lm_head" in name:
        return "LM head"
    if any(key in name for key in (".mlp.", "experts", "feed_forward", "ffn", "moe")):
        return "MLP"
    if any(key in name for key in ("attn", "attention")):
        return "attention projections"
    return "other"


def by_kind(report: NetworkReport, total: dict[str, Any], tokens: int) -> dict[str, Any]:
    """Energy (pJ) and latency (ns) per token by layer kind (``KINDS``): the cost model's
    per-layer figures, the activation products where the chip puts them, and the weight
    reload; ``{}`` on a chip without costs."""
    if report.costs is None:
        return {}
    out = {kind: {"energy_pj": 0.0, "latency_ns": 0.0} for kind in KINDS}
    rows = [(m.layer, c.row()) for m, c in zip(report.mappings, report.costs)]
    rows += [(r.layer, {"energy_pj": r.energy_pj, "latency_ns": r.latency_ns})
             for r in report.matmuls]
    for layer, row in rows:
        for key in ("energy_pj", "latency_ns"):
            out[layer_kind(layer)][key] += (row[key] or 0.0) / tokens
    out["weight reload"] = {"energy_pj": total.get("reload_energy_pj", 0.0) / tokens,
                            "latency_ns": total.get("reload_latency_ns", 0.0) / tokens}
    return {kind: v for kind, v in out.items() if v["energy_pj"] or v["latency_ns"]}


def causal_macs(layer: LayerShape) -> int:
    """MACs of one activation product under a causal mask: n queries over n keys keep
    n(n+1)/2 of n² products (a product that is not square in its keys is unchanged)."""
    n = layer.input_size[1]
    if n == 1 or n not in (layer.in_per_group, layer.out_per_group):
        return layer.macs
    return layer.macs * (n + 1) // (2 * n)


def array_busy(report: NetworkReport, tokens: int) -> float:
    """Busy fraction of the arrays under a token pipeline (see the module docstring)."""
    per_token = [m.windows / tokens for m in report.mappings]
    tiles = [m.tiles * m.layer.experts for m in report.mappings]
    work = sum(t * m.windows for t, m in zip(tiles, report.mappings))
    span = sum(per_token) + (tokens - 1) * max(per_token)
    return work / (sum(tiles) * span)


def digital_summary(digital: Sequence[tuple[str, str, int, str | None]],
                    layers: Sequence[LayerShape]) -> dict[str, Any]:
    """Element counts per digital kind (``embedding``: values looked up, memory reads,
    not MACs), the embedding tables read, and those tied to a mapped layer (stored once:
    the LM head's arrays hold the table, ``weights_stored`` counts it once)."""
    elements: dict[str, int] = defaultdict(int)
    tables: dict[str, int] = {}
    for kind, _owner, count, table in digital:
        elements[kind] += count
        if kind == "embedding" and table:
            tables[table] = count
    mapped = {layer.name for layer in layers}
    tied = sorted(t for t in tables if t.removesuffix(".weight") in mapped)
    return {"digital_elements": dict(elements), "embedding_tables": sorted(tables),
            "tied_embeddings": tied}


def _per(value: float, tokens: int) -> float:
    """``value / tokens``, an exact integer when it divides."""
    return value // tokens if isinstance(value, int) and value % tokens == 0 else value / tokens


def _compute_ns(total: dict[str, Any], tokens: int) -> float | None:
    """Array time of a step: the cost model's latency (sequential schedule), or under the
    pipelined schedule the first token's latency plus one slowest layer per further
    token (costs are linear in a layer's positions, so one token's are the step's / tokens)."""
    latency = total.get("latency_ns")
    if latency is None or total.get("schedule") != "pipelined":
        return latency
    return (latency + (tokens - 1) * total["interval_ns"]) / tokens


def _kv_bytes(elements: int | None, bits: int) -> float | None:
    return None if elements is None else elements * bits / 8


def token_totals(report: NetworkReport, facts: dict[str, Any],
                 attention: AttentionMacs = "full") -> dict[str, Any]:
    """``report.total()`` with the phase's figures (see the module docstring)."""
    if attention not in ("full", "causal"):
        raise ConfigError(f"--attention-macs {attention!r}: expected full or causal")
    total = report.total()
    if attention == "causal":
        total["matmul_macs"] = sum(causal_macs(r.layer) for r in report.matmuls)
    tokens = facts.get("tokens")
    total.update(phase=facts["phase"], attention_macs=attention, tokens_per_step=tokens,
                 context=facts.get("context"), batch=facts.get("batch"))
    if any(m.layer.experts > 1 for m in report.mappings):
        total["routing"] = ROUTING
    if facts["phase"] == "decode":
        total["attention_keys"] = "context + 1 (the new token's own key counts)"
        total["kv_cache_bytes"] = _kv_bytes(facts.get("kv_cache_elements"),
                                            report.chip.precision.input_bits)
    if not tokens:
        return total
    total["array_busy"] = array_busy(report, tokens)
    total["by_kind"] = by_kind(report, total, tokens)
    latency = [_compute_ns(total, tokens), total.get("matmul_latency_ns"),
               total.get("reload_latency_ns")]
    energy = [total.get(k) for k in ("energy_pj", "matmul_energy_pj", "reload_energy_pj")]
    if latency[0] is not None:
        step = sum(v for v in latency if v is not None)
        total.update(step_latency_ns=step, tokens_per_s=tokens / step * 1e9,
                     energy_per_token_pj=sum(v for v in energy if v is not None) / tokens)
        if facts["phase"] == "decode":
            total["token_latency_ns"] = step
    if facts["phase"] == "decode":
        total["step"] = {k: total[k] for k in PER_TOKEN if total.get(k) is not None}
        total.update({k: _per(v, tokens) for k, v in total["step"].items()})
        total["per"] = "token"
    return total
