"""What one forward pass of a model is fed: example inputs, token ids, and the inference
phase of a language model (prefill a prompt, or decode one token against a KV cache).

``build_input`` is the one place an example input is made from a shape and a dtype.
``decode_inputs`` turns a Hugging Face causal LM into one decode step: ``batch``
sequences each add one token to a KV cache already holding ``context`` positions (the
cache is filled by a prefill pass that is not captured).  The new token attends to the
``context`` cached keys *and its own*: the model computes QKᵀ and A·V over
``context + 1`` positions, and that is what is counted (L + 1, not L).

Under ``imcsim.nn.fake.shape_only`` every tensor here is a fake tensor: no weights,
no cache and no activations are allocated.
"""

from __future__ import annotations

import inspect
from typing import Any, Literal

import torch
from pydantic import Field, model_validator
from torch import nn

from imcsim._config import StrictModel
from imcsim.errors import ConfigError

__all__ = ["InputDtype", "InputSpec", "Phase", "build_input", "cache_elements", "cache_keyword",
           "decode_inputs",
           "vocab_size"]

Phase = Literal["prefill", "decode"]
InputDtype = Literal["float32", "int64"]


class InputSpec(StrictModel):
    """The capture options of a shape verb: input shape and dtype, phase, context, batch."""

    shape: tuple[int, ...] | None = None
    """Example input shape (``None``: the model's default)."""
    dtype: InputDtype | None = None
    """``int64``: token ids below the model's vocabulary; ``float32``: seeded ``randn``;
    ``None``: what the model's resolver picks."""
    phase: Phase = "prefill"
    context: int | None = Field(default=None, ge=1, le=2**20)
    """Decode: positions already in the KV cache."""
    batch: int = Field(default=1, ge=1, le=2**16)
    """Decode: sequences decoded together (one new token each per step)."""
    shape_only: bool | None = None
    """Build and capture on fake tensors (no weights allocated): ``True``; for real:
    ``False``; ``None`` (default): on fake tensors, except a built-in CIFAR-size network,
    built for real in milliseconds where fake tensors cost the import of ``torch._dynamo``
    (about 1 s of start-up); user factories are always built for real."""

    @model_validator(mode="after")
    def _check(self) -> InputSpec:
        if self.phase == "decode":
            if self.context is None:
                raise ValueError("--phase decode needs --context L (positions in the KV cache)")
            if self.shape is not None:
                raise ValueError("--phase decode takes --batch and --context, not --input-shape")
        elif self.context is not None or self.batch != 1:
            raise ValueError("--context and --batch are for --phase decode; a prompt's batch "
                             "is --input-shape's first dimension")
        return self


def vocab_size(model: nn.Module) -> int:
    """Token ids stay below this: the config's ``vocab_size``, else the first embedding's rows."""
    config = getattr(model, "config", None)
    if getattr(config, "vocab_size", None):
        return int(config.vocab_size)
    for module in model.modules():
        if isinstance(module, nn.Embedding):
            return module.num_embeddings
    raise ConfigError(f"--input-dtype int64: {type(model).__name__} has no vocab_size and no "
                      "nn.Embedding to bound the token ids")


def build_input(model: nn.Module, shape: tuple[int, ...], dtype: InputDtype) -> torch.Tensor:
    """A seeded example input: token ids drawn below ``vocab_size(model)`` (``int64``) or
    standard-normal values (``float32``)."""
    gen = torch.Generator().manual_seed(0)
    if dtype == "int64":
        return torch.randint(0, vocab_size(model), shape, generator=gen)
    return torch.randn(shape, generator=gen)


def cache_keyword(model: nn.Module) -> str:
    """``cache`` (transformers ≥ 5.2x) or ``past_key_values`` (earlier)."""
    params = inspect.signature(model.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def decode_inputs(model: nn.Module, batch: int, context: int) -> dict[str, Any]:
    """Keyword inputs of one decode step: ``batch`` new tokens and a KV cache of
    ``context`` positions (filled by an uncaptured prefill pass)."""
    if not hasattr(model, "generation_config") or "input_ids" not in inspect.signature(
            model.forward).parameters:
        raise ConfigError(f"--phase decode: {type(model).__name__} is not a transformers "
                          "language model with a KV cache")
    prompt = build_input(model, (batch, context), "int64")
    with torch.no_grad():
        out = model(input_ids=prompt, use_cache=True)
    cache = getattr(out, cache_keyword(model), None)
    if cache is None:
        raise ConfigError(f"--phase decode: {type(model).__name__} returned no KV cache")
    token = build_input(model, (batch, 1), "int64")
    return {"input_ids": token, cache_keyword(model): cache, "use_cache": True}


def cache_elements(cache: Any, depth: int = 3) -> int:
    """Elements of every tensor a KV cache object holds (its layers' keys and values)."""
    if isinstance(cache, torch.Tensor):
        return cache.numel()
    if depth == 0 or isinstance(cache, (str, bytes, int, float, bool, type(None))):
        return 0
    if isinstance(cache, (list, tuple)):
        return sum(cache_elements(item, depth - 1) for item in cache)
    if isinstance(cache, dict):
        return sum(cache_elements(item, depth - 1) for item in cache.values())
    return sum(cache_elements(v, depth - 1) for v in getattr(cache, "__dict__", {}).values())
