"""Extract ``LayerShape``s from any ``nn.Module`` by running one example input.

``imcsim.nn.capture`` records every multiply-accumulate operator of one forward pass at
the ATen level (weights told from activations by data flow); this module turns them
into layers:

* a product with a weight → ``linear`` (tokens = every leading dimension except the
  feature dimension, whatever the layout: batch-first, sequence-first, windows folded
  into dimension 0);
* a convolution → ``conv2d``, ``conv1d`` or ``conv_transpose2d`` with the geometry of
  the tensors it really ran on (``padding='same'``, reflect padding and run-time
  same-padding arrive as an explicitly padded input);
* the gate matmuls of one ``nn.LSTM``/``GRU``/``RNN`` layer and direction → one ``rnn``
  layer (input projection of all steps + one hidden matmul per step);
* a product of two activations → ``matmul``.

Layers describe one example: the example input's dimension 0 is its batch, and each
operator's work is divided by it (an operator that cannot be split per example is
listed as unmapped).  Anything with MACs that is not a layer — a conv3d, a product of
two weights, a batched matmul of distinct weights — is listed in ``unmapped`` with its
MACs, and ``coverage`` compares the captured MACs with PyTorch's own
``FlopCounterMode`` on the same pass.  Modules that hold weights but ran no visible
multiply-accumulate (and are not norms or embeddings) are listed too.

A weight layer whose weights contain zeros records its nonzero mask (pruning reaches the
mappers through the ordinary shape).  The ``r`` and ``l`` layers of a low-rank module
(``imcsim.nn.compress``) carry ``factor_of=<module name>`` and ``factor_role`` ``R``/``L``
so that a pair mapper can place them together.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch._subclasses.fake_tensor import is_fake

from imcsim.errors import ConfigError
from imcsim.layers import LayerShape
from imcsim.nn.builder import Builder, factor_names, layer_name
from imcsim.nn.capture import Product, run_capture
from imcsim.nn.ops import DIGITAL, as_nchw
from imcsim.nn.recurrent import rnn_groups, rnn_input, rnn_layer

__all__ = ["Coverage", "Extraction", "check_finite", "extract_layers", "factor_names",
           "layer_inputs", "layer_name"]


@dataclass(frozen=True)
class Coverage:
    """Captured MACs of one forward pass against ``torch.utils.flop_counter``'s count."""

    reference_macs: int
    """MACs of the pass as ``FlopCounterMode`` counts them (flops / 2), whole batch."""
    weight_macs: int
    """MACs of the weight layers (whole batch)."""
    matmul_macs: int
    """MACs of the activation×activation products (whole batch)."""
    unmapped_macs: int
    """MACs of operators listed as unmapped."""

    @property
    def captured_macs(self) -> int:
        return self.weight_macs + self.matmul_macs + self.unmapped_macs

    @property
    def difference(self) -> int:
        """Reference minus captured: MACs the flop counter saw and the capture did not (> 0),
        or MACs of operators the flop counter does not count (< 0)."""
        return self.reference_macs - self.captured_macs

    @property
    def complete(self) -> bool:
        """Every MAC of the pass is on a mapped layer and the two counts agree."""
        return self.difference == 0 and self.unmapped_macs == 0

    def describe(self) -> str:
        text = (f"captured {self.weight_macs + self.matmul_macs:,} of {self.reference_macs:,} "
                f"MACs counted by torch's FlopCounterMode")
        if self.unmapped_macs:
            text += f"; {self.unmapped_macs:,} MACs on unmapped operators"
        if self.difference:
            text += f"; difference {self.difference:,}"
        return text


@dataclass(frozen=True)
class Extraction:
    """Layers in execution order, what could not be mapped, and the MAC coverage."""

    layers: tuple[LayerShape, ...]
    unmapped: tuple[str, ...]
    """``name: reason`` of every operator or module that is not a layer (MACs included)."""
    coverage: Coverage | None = None
    batch: int = 1
    """Examples in the example input (its dimension 0); layers describe one example."""
    digital: tuple[tuple[str, str, int, str | None], ...] = ()
    """Digital operations of the pass (``imcsim.nn.capture.Capture.digital``), whole batch."""

    @property
    def matmul_layers(self) -> tuple[LayerShape, ...]:
        return tuple(layer for layer in self.layers if layer.kind == "matmul")


def check_finite(tensor: torch.Tensor, what: str) -> None:
    """A NaN or infinite weight or input is refused, never mapped or simulated."""
    if tensor.is_floating_point() and not is_fake(tensor) and not bool(torch.isfinite(tensor).all()):
        bad = int((~torch.isfinite(tensor)).sum())
        raise ConfigError(f"{what}: {bad} of {tensor.numel()} values are NaN or infinite")


def _check_inputs(inputs: Any, what: str = "example input") -> None:
    """:func:`check_finite` on every tensor of a tensor, tuple/list or dict of inputs."""
    if isinstance(inputs, torch.Tensor):
        check_finite(inputs, what)
    elif isinstance(inputs, dict):
        for key, value in inputs.items():
            _check_inputs(value, f"{what} {key!r}")
    elif isinstance(inputs, (tuple, list)):
        for i, value in enumerate(inputs):
            _check_inputs(value, f"{what} [{i}]")


def _with_mask(shape: LayerShape, weight: torch.Tensor | None) -> LayerShape:
    if weight is None or is_fake(weight):
        return shape
    weight = weight.detach()
    check_finite(weight, f"layer {shape.name!r}: weight")
    if int(torch.count_nonzero(weight)) == weight.numel():
        return shape
    return shape.with_mask((weight != 0).reshape(shape.weight_shape).cpu().numpy())


def _silent_modules(model: nn.Module, ran: dict[str, nn.Module], used: set[str]) -> list[tuple[str, str, int]]:
    """Modules that ran, hold weight matrices (parameters named ``*weight*``, 2-d or more),
    and fed no captured product (position embeddings and class tokens are added, not
    multiplied, and are not listed)."""
    found = []
    for name, module in ran.items():
        own = [n for n, p in module.named_parameters(recurse=False)
               if p.dim() >= 2 and "weight" in n]
        if not own or isinstance(module, DIGITAL) or any(
            (f"{name}.{n}" if name else n) in used for n in own
        ):
            continue
        found.append((name or type(model).__name__,
                      f"{type(module).__name__} has weights but ran no multiply-accumulate "
                      "imcsim can see", 0))
    return found


def _unique(
    layers: list[tuple[str, LayerShape, torch.Tensor | None]], factors: dict[str, dict[str, str]]
) -> list[LayerShape]:
    seen: Counter[str] = Counter()
    out = []
    for base, shape, weight in layers:
        seen[base] += 1
        label = base if seen[base] == 1 else f"{base}#{seen[base]}"
        update: dict[str, Any] = {"name": label}
        update.update(factors.get(base, {}))
        out.append(_with_mask(shape.model_copy(update=update), weight))
    return out


def _leading(inputs: Any) -> int | None:
    first = inputs
    while isinstance(first, (tuple, list, dict)) and first:
        first = next(iter(first.values())) if isinstance(first, dict) else first[0]
    return int(first.shape[0]) if isinstance(first, torch.Tensor) and first.dim() else None


def _batch_of(inputs: Any, products: tuple[Product, ...]) -> int:
    """Examples in the input: its dimension 0 when every convolution runs on exactly that
    many images (an image model), else 1 (the whole input is one example)."""
    images = {p.args["input"][0] for p in products if p.op == "convolution"}
    n = _leading(inputs)
    return n if n is not None and images == {n} else 1


def _extract(
    model: nn.Module, inputs: Any, keep: bool, batch: int | None = None
) -> tuple[Extraction, list[list[Product]]]:
    """The extraction and, per layer, the products it came from."""
    _check_inputs(inputs)
    capture = run_capture(model, inputs, keep_activations=keep)
    batch = _batch_of(inputs, capture.products) if batch is None else batch
    builder = Builder(model, batch, factor_names(model))
    rnn = rnn_groups(model, capture.products)
    inside = {i for members in rnn.values() for i in members}
    for i, p in enumerate(capture.products):
        if i in rnn:
            members = [capture.products[j] for j in rnn[i]]
            shape = rnn_layer(model, members, batch)
            if shape is not None:
                builder.current = members
                builder.add(shape.name, shape, sum(m.macs for m in members), None)
                continue
            inside -= set(rnn[i])
        if i in inside:
            continue
        builder.current = [p]
        if p.op == "convolution":
            builder.convolution(p)
        else:
            builder.product(p)
    used = {p.weight for p in capture.products if p.weight}
    unmapped = builder.unmapped + _silent_modules(model, capture.ran, used)
    unmapped_macs = sum(m for _, _, m in unmapped)
    extraction = Extraction(
        layers=tuple(_unique(builder.layers, builder.factors)),
        unmapped=tuple(f"{n}: {r}" + (f" ({m:,} MACs)" if m else "") for n, r, m in unmapped),
        coverage=Coverage(capture.reference_macs, builder.weight_macs, builder.matmul_macs,
                          unmapped_macs),
        batch=batch, digital=capture.digital,
    )
    return extraction, builder.sources


def extract_layers(
    model: nn.Module, example_input: Any, *, batch: int | None = None
) -> Extraction:
    """Run ``example_input`` through ``model`` once and return every layer it executes.

    ``example_input``: a tensor, a tuple of positional inputs or a dict of keyword inputs.
    Layers describe one example: ``batch`` examples are in the input; by default, its
    dimension 0 when every convolution runs on that many images (an image model: one
    image per example), else 1 (the whole input, e.g. a sequence-first (T, B, E)
    tensor, is the example).  See the module docstring.
    """
    return _extract(model, example_input, keep=False, batch=batch)[0]


def layer_inputs(model: nn.Module, inputs: Any, names: Sequence[str]) -> dict[str, np.ndarray]:
    """The input of each named layer on ``inputs`` (N examples along dimension 0) as numpy
    (N, C, H, W) in the layout of its ``LayerShape`` (``imcsim.nn.ops.as_nchw``); names as
    ``extract_layers`` gives them.  Activation products (``matmul``) are not simulated by
    the cycle simulator and have no input here."""
    extraction, sources = _extract(model, inputs, keep=True, batch=_leading(inputs) or 1)
    wanted, found = set(names), {}
    for layer, products in zip(extraction.layers, sources):
        if layer.name not in wanted or layer.kind == "matmul":
            continue
        act = rnn_input(products, extraction.batch) if layer.kind == "rnn" else products[0].activation
        found[layer.name] = as_nchw(layer.kind, act, extraction.batch)
    return found
