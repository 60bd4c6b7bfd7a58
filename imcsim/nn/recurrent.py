"""Recurrent layers from captured gate matmuls: one ``rnn`` layer per layer and direction.

On PyTorch's reference CPU path an ``nn.LSTM``/``GRU``/``RNN`` layer runs its input
projection W_ih·x for all time steps as one ``mm`` and then one ``addmm`` W_hh·h_(t−1) per
step.  They are recognised by their weights' names (``weight_ih_l0``, ``weight_hh_l0_reverse``
…) and folded into one ``LayerShape.rnn``: per step, [x_t; h_(t−1)] (I + H rows) →
gates·H columns, over the steps of one example.  The check that the steps add up
(T steps of B sequences each, input projection over T·B rows) guards the folding; when it
fails the matmuls stay ordinary ``linear`` layers.
"""

from __future__ import annotations

import re

import torch
from torch import nn

from imcsim.layers import LayerShape
from imcsim.nn.capture import Product

__all__ = ["rnn_groups", "rnn_input", "rnn_layer"]


_RNN_WEIGHT = re.compile(r"^(?P<module>.*?)\.?weight_(?P<which>ih|hh)_l(?P<layer>\d+)(?P<rev>_reverse)?$")
_CELLS = {"LSTM": "lstm", "GRU": "gru", "RNN_TANH": "rnn", "RNN_RELU": "rnn"}


def _rnn_key(model: nn.Module, p: Product) -> tuple[str, str, str] | None:
    """(module, layer suffix, ih|hh) when ``p`` is a gate matmul of an ``nn.RNNBase``."""
    match = _RNN_WEIGHT.match(p.weight or "") if p.op == "mm" else None
    if match is None:
        return None
    module = model.get_submodule(match["module"]) if match["module"] else model
    if not isinstance(module, nn.RNNBase) or getattr(module, "proj_size", 0):
        return None
    return match["module"], f"l{match['layer']}{match['rev'] or ''}", match["which"]


def rnn_groups(model: nn.Module, products: tuple[Product, ...]) -> dict[int, list[int]]:
    """Index of each sequence's input projection → indices of its ih and hh products."""
    groups: dict[int, list[int]] = {}
    open_: dict[tuple[str, str], int] = {}
    for i, p in enumerate(products):
        key = _rnn_key(model, p)
        if key is None:
            continue
        if key[2] == "ih":
            open_[key[:2]] = i
            groups[i] = [i]
        elif key[:2] in open_:
            groups[open_[key[:2]]].append(i)
    return groups


def rnn_layer(model: nn.Module, products: list[Product], batch: int) -> LayerShape | None:
    """One ``rnn`` layer from an input projection and its per-step hidden matmuls."""
    ih, steps = products[0], products[1:]
    module_name, suffix, _ = _rnn_key(model, ih)  # type: ignore[misc]
    module = model.get_submodule(module_name) if module_name else model
    hidden = module.hidden_size
    seqs = steps[0].args["rows"] if steps else 0
    if not steps or ih.args["rows"] != len(steps) * seqs or any(s.args["rows"] != seqs for s in steps):
        return None
    if ih.args["rows"] % batch:
        return None
    per = ih.args["rows"] // batch
    name = f"{module_name or type(model).__name__}.{suffix}"
    return LayerShape.rnn(_CELLS[module.mode], ih.args["reduction"], hidden, per, name=name)


def rnn_input(products: list[Product], batch: int) -> torch.Tensor:
    """[x_t; h_(t−1)] of every step as (…, I + H) rows, sequences kept together."""
    ih, steps = products[0], products[1:]
    x = ih.activation.reshape(len(steps), -1, ih.activation.shape[-1])
    h = torch.stack([s.activation for s in steps])
    return torch.cat([x, h], dim=-1).transpose(0, 1).reshape(batch, -1, x.shape[-1] + h.shape[-1])
