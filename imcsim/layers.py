"""Torch-free layer geometry: what a mapper needs to know about a Conv2d or Linear.

Names follow ``torch.nn.Conv2d`` (``in_channels, out_channels, kernel_size, stride,
padding, dilation, groups``).  A Linear layer is a 1×1 convolution over its
positions (1 for a plain classifier, the token count for a sequence).
"""

from __future__ import annotations

import numbers
from functools import cached_property
from typing import Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from imcsim._config import StrictModel
from imcsim.errors import ConfigError

__all__ = ["MAX_CHANNELS", "MAX_SIDE", "LayerKind", "LayerShape", "Pair", "as_pair"]

Pair = tuple[int, int]
_CACHED = ("effective_kernel", "padded_input", "output_size", "nonzero_params")
LayerKind = Literal["conv2d", "linear"]

MAX_CHANNELS = 2**20
"""Largest channel (feature) count accepted: 4× the widest layers in use (a 256k-token
vocabulary head), small enough to keep every count an exact machine integer."""
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


class LayerShape(StrictModel):
    """Geometry of one Conv2d/Linear layer, plus an optional mask of its nonzero weights."""

    name: str = ""
    kind: LayerKind = "conv2d"
    in_channels: int = Field(gt=0, le=MAX_CHANNELS)
    out_channels: int = Field(gt=0, le=MAX_CHANNELS)
    kernel_size: Pair
    input_size: Pair
    """Unpadded input height × width (positions of a Linear layer: 1 × tokens)."""
    stride: Pair = (1, 1)
    padding: Pair = (0, 0)
    dilation: Pair = (1, 1)
    groups: int = Field(default=1, gt=0, le=MAX_CHANNELS)
    nonzero: bytes | None = Field(default=None, repr=False)
    """Bit-packed mask of the nonzero weights (shape ``weight_shape``), set for pruned layers."""
    factor_of: str | None = None
    """Name of the original layer when this layer is a low-rank factor of it."""
    factor_role: Literal["R", "L"] | None = None
    """Which factor: ``R`` (the K×K conv to the rank) or ``L`` (the 1×1 conv from it)."""

    @field_validator("kernel_size", "input_size", "stride", "dilation", mode="before")
    @classmethod
    def _positive_pair(cls, value: object) -> Pair:
        pair = as_pair(value)  # type: ignore[arg-type]
        if min(pair) < 1:
            raise ValueError(f"must be positive, got {pair}")
        if max(pair) > MAX_SIDE:
            raise ValueError(f"{max(pair)} exceeds the limit of {MAX_SIDE}")
        return pair

    @field_validator("padding", mode="before")
    @classmethod
    def _padding_pair(cls, value: object) -> Pair:
        pair = as_pair(value)  # type: ignore[arg-type]
        if min(pair) < 0:
            raise ValueError(f"must be >= 0, got {pair}")
        if max(pair) > MAX_SIDE:
            raise ValueError(f"{max(pair)} exceeds the limit of {MAX_SIDE}")
        return pair

    @model_validator(mode="after")
    def _check(self) -> LayerShape:
        who = f"layer {self.name!r}" if self.name else "layer"
        for field in ("in_channels", "out_channels"):
            if getattr(self, field) % self.groups:
                raise ValueError(
                    f"{who}: {field}={getattr(self, field)} not divisible by groups={self.groups}"
                )
        for axis, (k, i) in enumerate(zip(self.effective_kernel, self.padded_input)):
            if k > i:
                raise ValueError(
                    f"{who}: kernel {self.kernel_size[0]}x{self.kernel_size[1]} "
                    f"(dilation {self.dilation[axis]}) exceeds padded input "
                    f"{self.padded_input[0]}x{self.padded_input[1]}"
                )
        if (self.factor_of is None) != (self.factor_role is None):
            raise ValueError(f"{who}: factor_of and factor_role go together")
        if self.nonzero is not None and len(self.nonzero) != -(-self.params // 8):
            raise ValueError(f"{who}: nonzero mask has the wrong size for {self.weight_shape}")
        return self

    # -- constructors -----------------------------------------------------------------
    @classmethod
    def conv2d(
        cls,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Pair,
        input_size: int | Pair,
        stride: int | Pair = 1,
        padding: int | Pair = 0,
        dilation: int | Pair = 1,
        groups: int = 1,
        name: str = "",
    ) -> LayerShape:
        return cls(
            name=name, kind="conv2d", in_channels=in_channels, out_channels=out_channels,
            kernel_size=kernel_size, input_size=input_size, stride=stride,
            padding=padding, dilation=dilation, groups=groups,
        )

    @classmethod
    def linear(
        cls, in_features: int, out_features: int, positions: int = 1, name: str = ""
    ) -> LayerShape:
        """A Linear layer applied at ``positions`` independent positions (tokens)."""
        return cls(
            name=name, kind="linear", in_channels=in_features, out_channels=out_features,
            kernel_size=1, input_size=(1, positions),
        )

    def model_copy(self, *, update: dict | None = None, deep: bool = False) -> LayerShape:
        """A copy whose cached geometry is recomputed from its own fields."""
        copy = super().model_copy(update=update, deep=deep)
        for name in _CACHED:
            copy.__dict__.pop(name, None)
        return copy

    def with_mask(self, mask: np.ndarray) -> LayerShape:
        """A copy that records which weights are nonzero (``mask.shape == weight_shape``)."""
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != self.weight_shape:
            raise ConfigError(
                f"layer {self.name!r}: mask shape {mask.shape} != weight shape {self.weight_shape}"
            )
        return self.model_copy(update={"nonzero": np.packbits(mask.ravel()).tobytes()})

    # -- derived geometry -------------------------------------------------------------
    @cached_property
    def effective_kernel(self) -> Pair:
        """Kernel extent on the input once dilated: d·(K − 1) + 1."""
        (kh, kw), (dh, dw) = self.kernel_size, self.dilation
        return dh * (kh - 1) + 1, dw * (kw - 1) + 1

    @cached_property
    def padded_input(self) -> Pair:
        (ih, iw), (ph, pw) = self.input_size, self.padding
        return ih + 2 * ph, iw + 2 * pw

    @cached_property
    def output_size(self) -> Pair:
        """O = ⌊(I + 2p − d(K − 1) − 1)/s⌋ + 1 per axis (torch's formula)."""
        return tuple(  # type: ignore[return-value]
            (i - k) // s + 1
            for i, k, s in zip(self.padded_input, self.effective_kernel, self.stride)
        )

    @property
    def in_per_group(self) -> int:
        return self.in_channels // self.groups

    @property
    def out_per_group(self) -> int:
        return self.out_channels // self.groups

    @property
    def reduction_size(self) -> int:
        """Rows of one filter unrolled (im2col): C_in/g · K_h · K_w."""
        return self.in_per_group * self.kernel_size[0] * self.kernel_size[1]

    @property
    def weight_shape(self) -> tuple[int, int, int, int]:
        return (self.out_channels, self.in_per_group, *self.kernel_size)

    @property
    def params(self) -> int:
        """Weights (bias excluded: it is added digitally)."""
        return self.out_channels * self.reduction_size

    @property
    def output_positions(self) -> int:
        oh, ow = self.output_size
        return oh * ow

    @property
    def macs(self) -> int:
        return self.output_positions * self.params

    @property
    def is_depthwise(self) -> bool:
        return self.groups > 1 and self.groups == self.in_channels

    def nonzero_mask(self) -> np.ndarray | None:
        """Boolean mask of the nonzero weights, or ``None`` for a dense layer."""
        if self.nonzero is None:
            return None
        bits = np.unpackbits(np.frombuffer(self.nonzero, dtype=np.uint8), count=self.params)
        return bits.astype(bool).reshape(self.weight_shape)

    @cached_property
    def nonzero_params(self) -> int:
        """Weights that are not exactly zero."""
        if self.nonzero is None:
            return self.params
        return int(np.unpackbits(np.frombuffer(self.nonzero, dtype=np.uint8), count=self.params).sum())

    def describe(self) -> str:
        """Short geometry string, e.g. ``3x3 64->64 @56x56 s1 p1``."""
        (kh, kw), (ih, iw) = self.kernel_size, self.input_size
        text = f"{kh}x{kw} {self.in_channels}->{self.out_channels} @{ih}x{iw}"
        text += f" s{self.stride[0]} p{self.padding[0]}"
        if self.dilation != (1, 1):
            text += f" d{self.dilation[0]}"
        if self.groups > 1:
            text += f" g{self.groups}"
        return text
