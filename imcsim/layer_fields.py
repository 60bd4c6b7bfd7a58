"""The field types a ``LayerShape`` is built from: (h, w) pairs and their strict parser, the
size limits, and the PyTorch geometry of a transposed convolution."""

from __future__ import annotations

import numbers

from pydantic import Field, field_validator

from imcsim._config import StrictModel

__all__ = ["MAX_CHANNELS", "MAX_SIDE", "Pair", "Transposed", "as_pair"]

Pair = tuple[int, int]

MAX_CHANNELS = 2**24
"""Largest channel (feature) count accepted: the channels of an activation product are
groups × per-group size, and a decode step of a batch reaches 16 sequences × 32 heads ×
2,049 cached keys = 1,049,088 (weight layers stay far below: a 256k-token vocabulary
head); small enough to keep every count an exact machine integer."""
MAX_SIDE = 2**20
"""Largest input side, padding, stride or dilation accepted (pixels, or tokens of a
Linear layer): the mapping searches allocate arrays of this length."""


def _integer(value: object) -> int:
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    raise ValueError(f"expected an integer, got {value!r}")


def as_pair(value: int | tuple[int, int] | list[int]) -> Pair:
    """``3`` → ``(3, 3)``; ``(3, 5)`` stays; anything but integers is refused (no
    truncation of ``3.9``, no ``True``, no ``"3"``)."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"expected an int or an (h, w) pair, got {value!r}")
        return _integer(value[0]), _integer(value[1])
    number = _integer(value)
    return number, number


class Transposed(StrictModel):
    """PyTorch geometry of a transposed convolution (the layer's fields hold its array form)."""

    out_channels: int = Field(gt=0)
    kernel_size: Pair
    stride: Pair = (1, 1)
    padding: Pair = (0, 0)
    output_padding: Pair = (0, 0)
    dilation: Pair = (1, 1)

    @field_validator("kernel_size", "stride", "padding", "output_padding", "dilation",
                     mode="before")
    @classmethod
    def _pair(cls, value: object) -> Pair:
        return as_pair(value)  # type: ignore[arg-type]
