"""Extract ``LayerShape``s from any ``nn.Module`` by running one example input.

Forward hooks on every leaf module record, in execution order, the input size each
Conv2d/Linear really sees; hooks are removed in ``finally``.  Modules are named by
their qualified name (``layer1.0.conv1``); a module called twice gets ``name#2``.
Digital operations (norms, activations, pooling, dropout…) need no array and are
skipped; leaf modules holding weights that imcsim cannot map (Conv1d, Embedding,
ConvTranspose2d, LSTM…) are listed in ``Extraction.unmapped``, never dropped silently.
A layer whose weights contain zeros records a nonzero mask, so pruning reaches the
mappers through the ordinary shape.
The ``r`` and ``l`` convs of a low-rank module (``imcsim.nn.compress``) carry
``factor_of=<module name>`` and ``factor_role`` ``R``/``L`` so that a pair mapper can
place them together.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import nn

from imcsim.errors import ConfigError, UnsupportedLayerError
from imcsim.layers import LayerShape
from imcsim.nn.compress.modules import FACTORIZED

DIGITAL = (
    nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm, nn.ReLU, nn.ReLU6,
    nn.LeakyReLU, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.Hardswish, nn.Hardtanh,
    nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.Dropout,
    nn.Identity, nn.Flatten, nn.Softmax,
)


@dataclass(frozen=True)
class Extraction:
    """Layers in execution order, and the weight-holding modules that could not be mapped."""

    layers: tuple[LayerShape, ...]
    unmapped: tuple[str, ...]


def conv_shape(name: str, conv: nn.Conv2d, x: torch.Tensor) -> LayerShape:
    if isinstance(conv.padding, str):
        raise UnsupportedLayerError(
            f"layer {name!r}: padding={conv.padding!r}; give explicit integer padding"
        )
    if conv.padding_mode != "zeros":
        raise UnsupportedLayerError(f"layer {name!r}: padding_mode={conv.padding_mode!r}")
    return LayerShape.conv2d(
        conv.in_channels, conv.out_channels, conv.kernel_size, tuple(x.shape[-2:]),
        stride=conv.stride, padding=conv.padding, dilation=conv.dilation,
        groups=conv.groups, name=name,
    )


def linear_shape(name: str, fc: nn.Linear, x: torch.Tensor) -> LayerShape:
    positions = x.numel() // (x.shape[0] * fc.in_features) if x.dim() > 2 else 1
    return LayerShape.linear(fc.in_features, fc.out_features, positions=positions, name=name)


def _with_mask(shape: LayerShape, weight: torch.Tensor) -> LayerShape:
    check_finite(weight, f"layer {shape.name!r}: weight")
    nonzero = (weight.detach() != 0).reshape(shape.weight_shape)
    if bool(nonzero.all()):
        return shape
    return shape.with_mask(nonzero.cpu().numpy())


def check_finite(tensor: torch.Tensor, what: str) -> None:
    """A NaN or infinite weight or input is refused, never mapped or simulated."""
    if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
        bad = int((~torch.isfinite(tensor)).sum())
        raise ConfigError(f"{what}: {bad} of {tensor.numel()} values are NaN or infinite")


def _unmapped_reason(module: nn.Module) -> str | None:
    has_weights = any(True for _ in module.parameters(recurse=False))
    if has_weights and not isinstance(module, DIGITAL):
        return f"{type(module).__name__} has weights but no crossbar mapping"
    return None


def factor_names(model: nn.Module) -> dict[str, dict[str, str]]:
    """``{"<name>.r": {factor_of: name, factor_role: "R"}, "<name>.l": …"L"}`` for every
    low-rank factorised module."""
    return {
        f"{name}.{child}": {"factor_of": name, "factor_role": role}
        for name, module in model.named_modules() if isinstance(module, FACTORIZED)
        for child, role in (("r", "R"), ("l", "L"))
    }


Visit = Callable[[str, nn.Module, torch.Tensor], None]


def run_with_hooks(
    model: nn.Module, inputs: torch.Tensor, modules: Iterable[tuple[str, nn.Module]], visit: Visit
) -> None:
    """Run ``inputs`` once (eval mode, no grad) and call ``visit(label, module, input)``
    at every call of ``modules``; ``label`` is the name, ``name#k`` for the k-th call.
    Hooks are removed and the training mode restored in ``finally``."""
    calls: dict[str, int] = {}

    def hook(name: str):
        def record(module: nn.Module, args: tuple[torch.Tensor, ...], _out: object) -> None:
            calls[name] = calls.get(name, 0) + 1
            visit(name if calls[name] == 1 else f"{name}#{calls[name]}", module, args[0])
        return record

    handles = [m.register_forward_hook(hook(n or type(m).__name__)) for n, m in modules]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(inputs)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()


def extract_layers(model: nn.Module, example_input: torch.Tensor) -> Extraction:
    """Run ``example_input`` through ``model`` and record every Conv2d/Linear it executes."""
    layers: list[LayerShape] = []
    unmapped: dict[str, str] = {}
    factors = factor_names(model)

    def visit(label: str, module: nn.Module, x: torch.Tensor) -> None:
        name = label.split("#", 1)[0]
        tag = factors.get(name, {})
        if isinstance(module, nn.Conv2d):
            shape = conv_shape(label, module, x).model_copy(update=tag)
            layers.append(_with_mask(shape, module.weight))
        elif isinstance(module, nn.Linear):
            shape = linear_shape(label, module, x).model_copy(update=tag)
            layers.append(_with_mask(shape, module.weight))
        elif (reason := _unmapped_reason(module)) is not None:
            unmapped[name] = reason

    check_finite(example_input, "example input")
    leaves = [(n, m) for n, m in model.named_modules() if not any(m.children())]
    run_with_hooks(model, example_input, leaves, visit)
    return Extraction(
        layers=tuple(layers),
        unmapped=tuple(f"{name}: {reason}" for name, reason in unmapped.items()),
    )
