"""One-line geometry strings of layers, per layer kind (``LayerShape.describe``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from imcsim.layers import LayerShape

__all__ = ["describe"]


def describe(layer: LayerShape) -> str:
    """Short geometry string, e.g. ``3x3 64->64 @56x56 s1 p1``."""
    (kh, kw), (ih, iw) = layer.kernel_size, layer.input_size
    if layer.kind in _DESCRIBE:
        return _DESCRIBE[layer.kind](layer)
    text = f"{kh}x{kw} {layer.in_channels}->{layer.out_channels} @{ih}x{iw}"
    text += f" s{layer.stride[0]} p{layer.padding[0]}"
    if layer.dilation != (1, 1):
        text += f" d{layer.dilation[0]}"
    if layer.groups > 1:
        text += f" g{layer.groups}"
    return text


def _describe_transposed(layer: LayerShape) -> str:
    t = layer.transposed
    assert t is not None
    (kh, kw), (ih, iw) = t.kernel_size, layer.input_size
    text = f"T{kh}x{kw} {layer.in_channels}->{t.out_channels} @{ih}x{iw} s{t.stride[0]} p{t.padding[0]}"
    return text + (f" g{layer.groups}" if layer.groups > 1 else "")


def _describe_rnn(layer: LayerShape) -> str:
    hidden = layer.hidden_size
    return (f"{layer.cell} {layer.in_channels - hidden}+{hidden}->{layer.out_channels}"
            f" x{layer.input_size[1]} steps")


def _describe_matmul(layer: LayerShape) -> str:
    g = layer.groups
    return (f"matmul {layer.input_size[1]}x{layer.in_per_group}·"
            f"{layer.in_per_group}x{layer.out_per_group}" + (f" x{g}" if g > 1 else ""))


def _describe_conv1d(layer: LayerShape) -> str:
    text = (f"1x{layer.kernel_size[1]} {layer.in_channels}->{layer.out_channels} "
            f"@1x{layer.input_size[1]} s{layer.stride[1]} p{layer.padding[1]}")
    text += f" d{layer.dilation[1]}" if layer.dilation[1] > 1 else ""
    return text + (f" g{layer.groups}" if layer.groups > 1 else "")


_DESCRIBE = {
    "conv1d": _describe_conv1d, "conv_transpose2d": _describe_transposed, "rnn": _describe_rnn,
    "matmul": _describe_matmul,
}
