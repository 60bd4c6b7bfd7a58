"""Example inputs of a workload: ``--input-shape``/``--input-dtype`` or ``example_inputs()``.

An example input is a tensor, a tuple of positional tensors or a dict of keyword tensors
(``input_ids``, ``attention_mask``, ``pixel_values``, ``decoder_input_ids``, …), exactly
what ``model(*inputs)`` / ``model(**inputs)`` takes; extraction, mapping and the
flop-counter check all run on it.  Integer dtypes draw seeded token ids below the model's
vocabulary size (its ``config.vocab_size`` or its first ``nn.Embedding``); float dtypes
draw a seeded ``randn``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from imcsim.errors import ConfigError

__all__ = ["DTYPES", "call_model", "check_example", "decoder_inputs", "draw_input",
           "example_factory",
           "leading_tensor", "logits_of", "vocab_size"]

DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32, "float64": torch.float64, "float16": torch.float16,
    "bfloat16": torch.bfloat16, "int64": torch.int64, "int32": torch.int32,
}
"""``--input-dtype`` values."""


def vocab_size(model: nn.Module) -> int | None:
    """The model's vocabulary size: ``config.vocab_size``, else its first embedding's rows."""
    size = getattr(getattr(model, "config", None), "vocab_size", None)
    if isinstance(size, int) and size > 0:
        return size
    first = next((m for m in model.modules() if isinstance(m, nn.Embedding)), None)
    return None if first is None else first.num_embeddings


def draw_input(model: nn.Module, shape: tuple[int, ...], dtype: str, seed: int = 0) -> torch.Tensor:
    """A seeded example of ``shape``: token ids below the vocabulary size for an integer
    dtype, ``randn`` for a float one."""
    if dtype not in DTYPES:
        raise ConfigError(f"--input-dtype {dtype!r}: expected one of {', '.join(DTYPES)}")
    gen = torch.Generator().manual_seed(seed)
    kind = DTYPES[dtype]
    if kind.is_floating_point:
        return torch.randn(shape, generator=gen).to(kind)
    vocab = vocab_size(model)
    if vocab is None:
        raise ConfigError(f"--input-dtype {dtype}: the model has no vocabulary (no config."
                          "vocab_size, no nn.Embedding) to draw token ids below; give "
                          "example_inputs() beside the factory")
    return torch.randint(0, vocab, shape, generator=gen, dtype=kind)


def decoder_inputs(model: nn.Module, inputs: Any) -> Any:
    """An encoder-decoder model (``config.is_encoder_decoder``) fed one token tensor gets
    it as ``input_ids`` and as ``decoder_input_ids`` (a dict passes through)."""
    config = getattr(model, "config", None)
    if not getattr(config, "is_encoder_decoder", False) or not isinstance(inputs, torch.Tensor):
        return inputs
    if inputs.is_floating_point():
        name = getattr(model, "main_input_name", "input_features")
        gen = torch.Generator().manual_seed(0)
        dec = torch.randint(0, vocab_size(model) or 2, (inputs.shape[0], 8), generator=gen)
        return {name: inputs, "decoder_input_ids": dec}
    return {"input_ids": inputs, "decoder_input_ids": inputs}


def check_example(inputs: Any, where: str) -> Any:
    """``inputs`` must be a tensor, a tuple of tensors or a dict of str → tensor."""
    items = inputs.values() if isinstance(inputs, dict) else (
        inputs if isinstance(inputs, (tuple, list)) else (inputs,))
    bad = [type(v).__name__ for v in items if not isinstance(v, torch.Tensor)]
    if bad or (isinstance(inputs, dict) and not all(isinstance(k, str) for k in inputs)):
        raise ConfigError(f"{where}: expected a tensor, a tuple of tensors or a dict of "
                          f"keyword tensors (got {bad[0] if bad else 'a non-str key'})")
    if isinstance(inputs, list):
        return tuple(inputs)
    return inputs


def leading_tensor(inputs: Any) -> torch.Tensor:
    """The first tensor of an example input (the one data batches replace)."""
    if isinstance(inputs, dict):
        return next(iter(inputs.values()))
    return inputs[0] if isinstance(inputs, tuple) else inputs


def call_model(model: nn.Module, inputs: Any) -> Any:
    """``model(inputs)``, ``model(*inputs)`` or ``model(**inputs)``."""
    if isinstance(inputs, dict):
        return model(**inputs)
    if isinstance(inputs, tuple):
        return model(*inputs)
    return model(inputs)


def logits_of(outputs: Any) -> torch.Tensor:
    """The tensor a metric reads: the output itself, its ``.logits``, or its first item."""
    if isinstance(outputs, torch.Tensor):
        return outputs
    logits = getattr(outputs, "logits", None)
    if isinstance(logits, torch.Tensor):
        return logits
    if isinstance(outputs, (tuple, list)) and outputs and isinstance(outputs[0], torch.Tensor):
        return outputs[0]
    raise ConfigError(f"model output {type(outputs).__name__}: no tensor, .logits or first "
                      "tensor item to score")


def example_factory(module: Any) -> Callable[[], Any] | None:
    """The ``example_inputs`` function beside a factory, if any."""
    fn = getattr(module, "example_inputs", None)
    return fn if callable(fn) else None
