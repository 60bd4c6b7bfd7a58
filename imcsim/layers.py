"""Torch-free layer geometry: the weight matrix a layer puts on the arrays, as a conv.

Names follow ``torch.nn.Conv2d`` (``in_channels, out_channels, kernel_size, stride,
padding, dilation, groups``).  Every kind is described by the convolution the arrays
really compute, so every mapper, the cost model and the simulators read one geometry:

* ``conv2d`` — as PyTorch defines it.
* ``conv1d`` — a 1×K convolution over a 1×L input (one row).
* ``linear`` — a 1×1 convolution over its positions (``input_size = (1, tokens)``, the
  tokens of one example: every leading dimension except the feature dimension).
* ``conv_transpose2d`` — what a crossbar computes for a transposed convolution
  without zero insertion: every *input* pixel is one MVM with the C_in/g-row,
  (C_out/g·K_h·K_w)-column matrix W_g, and the K_h·K_w partial outputs of each pixel
  are overlap-added digitally (col2im) — the GEMM + col2im form of Caffe/PyTorch's
  ``slow_conv_transpose2d`` and the zero-free dataflow of ReRAM GAN accelerators
  (LerGAN, Mao et al., MICRO 2018).  So the layer is a grouped 1×1 convolution
  C_in → C_out·K_h·K_w over the H_in×W_in input; ``transposed`` keeps the PyTorch
  geometry.  MACs = H_in·W_in·C_in·C_out/g·K_h·K_w, as PyTorch's flop counter counts
  them: the zeros a zero-insertion mapping would multiply are not MACs.
* ``rnn`` — one LSTM/GRU/RNN layer and direction: per time step, the gate matmul
  [x_t; h_(t−1)] (I + H rows) → gates·H columns, so a 1×1 convolution over
  ``(1, steps)``; the recurrence is sequential, so no window may hold two time steps
  (``sequential``).
* ``matmul`` — a product of two activations (QKᵀ, A·V): the second operand plays the
  weight, written per input when the chip puts it on crossbars (``imcsim.matmul``);
  ``groups`` independent products (heads) of ``in_channels/groups`` → ``out_channels/
  groups`` over ``input_size[1]`` rows each.
"""

from __future__ import annotations

from functools import cached_property
from typing import Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from imcsim._config import StrictModel
from imcsim.errors import ConfigError
from imcsim.layer_fields import MAX_CHANNELS, MAX_SIDE, Pair, Transposed, as_pair

__all__ = ["MAX_CHANNELS", "MAX_SIDE", "LayerKind", "LayerShape", "Pair", "as_pair"]

_CACHED = ("effective_kernel", "padded_input", "output_size", "nonzero_params")
LayerKind = Literal["conv2d", "linear", "conv1d", "conv_transpose2d", "rnn", "matmul"]
KINDS: tuple[str, ...] = ("conv2d", "linear", "conv1d", "conv_transpose2d", "rnn", "matmul")
RnnCell = Literal["lstm", "gru", "rnn"]
GATES: dict[str, int] = {"lstm": 4, "gru": 3, "rnn": 1}
"""Gate matrices per cell type (LSTM: i, f, g, o; GRU: r, z, n; plain RNN: one)."""

class LayerShape(StrictModel):
    """Geometry of one layer as the arrays compute it, plus an optional mask of its nonzero weights."""

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
    transposed: Transposed | None = None
    """PyTorch geometry of a ``conv_transpose2d`` layer."""
    cell: RnnCell | None = None
    """Cell type of an ``rnn`` layer."""
    experts: int = Field(default=1, gt=0, le=MAX_CHANNELS)
    """Weight matrices of this shape stored (a routed mixture-of-experts layer: every
    expert on the arrays), of which each position uses one: ``macs`` are executed (the
    routed positions), ``stored_params`` all experts (``imcsim.nn.capture``)."""

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
        if (self.kind == "conv_transpose2d") != (self.transposed is not None):
            raise ValueError(f"{who}: transposed geometry is for kind conv_transpose2d only")
        if (self.kind == "rnn") != (self.cell is not None):
            raise ValueError(f"{who}: cell is for kind rnn only")
        if self.kind not in ("conv2d", "conv1d") and self.kernel_size != (1, 1):
            raise ValueError(f"{who}: a {self.kind} layer is a 1x1 convolution")
        if self.kind == "conv1d" and (self.kernel_size[0], self.input_size[0]) != (1, 1):
            raise ValueError(f"{who}: a conv1d layer has a 1xK kernel over a 1xL input")
        if self.cell is not None and self.out_channels % GATES[self.cell]:
            raise ValueError(f"{who}: {self.out_channels} outputs for {GATES[self.cell]} gates")
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

    @classmethod
    def conv1d(
        cls, in_channels: int, out_channels: int, kernel_size: int, length: int,
        stride: int = 1, padding: int = 0, dilation: int = 1, groups: int = 1, name: str = "",
    ) -> LayerShape:
        """A Conv1d over ``length`` samples: a 1×K convolution over a 1×L input."""
        return cls(
            name=name, kind="conv1d", in_channels=in_channels, out_channels=out_channels,
            kernel_size=(1, kernel_size), input_size=(1, length), stride=(1, stride),
            padding=(0, padding), dilation=(1, dilation), groups=groups,
        )

    @classmethod
    def conv_transpose2d(
        cls, in_channels: int, out_channels: int, kernel_size: int | Pair,
        input_size: int | Pair, stride: int | Pair = 1, padding: int | Pair = 0,
        output_padding: int | Pair = 0, dilation: int | Pair = 1, groups: int = 1,
        name: str = "",
    ) -> LayerShape:
        """A ConvTranspose2d in its array form (see the module docstring)."""
        kh, kw = as_pair(kernel_size)
        geometry = Transposed(out_channels=out_channels, kernel_size=(kh, kw), stride=stride,
                              padding=padding, output_padding=output_padding, dilation=dilation)
        if out_channels % groups:
            raise ValueError(
                f"layer {name!r}: out_channels={out_channels} not divisible by groups={groups}"
            )
        return cls(
            name=name, kind="conv_transpose2d", in_channels=in_channels,
            out_channels=out_channels * kh * kw, kernel_size=1, input_size=input_size,
            groups=groups, transposed=geometry,
        )

    @classmethod
    def rnn(
        cls, cell: RnnCell, input_size: int, hidden_size: int, steps: int, name: str = ""
    ) -> LayerShape:
        """One direction of one recurrent layer over ``steps`` time steps (per example)."""
        return cls(
            name=name, kind="rnn", in_channels=input_size + hidden_size,
            out_channels=GATES[cell] * hidden_size, kernel_size=1, input_size=(1, steps),
            cell=cell,
        )

    @classmethod
    def matmul(
        cls, reduction: int, columns: int, rows: int, groups: int = 1, name: str = ""
    ) -> LayerShape:
        """``groups`` products (rows × reduction) · (reduction × columns) of two activations."""
        return cls(
            name=name, kind="matmul", in_channels=groups * reduction,
            out_channels=groups * columns, kernel_size=1, input_size=(1, rows), groups=groups,
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
    def stored_params(self) -> int:
        """Weights on the arrays: every expert of a routed layer."""
        return self.nonzero_params * self.experts

    @property
    def output_positions(self) -> int:
        oh, ow = self.output_size
        return oh * ow

    @property
    def macs(self) -> int:
        return self.output_positions * self.params

    @property
    def sequential(self) -> bool:
        """Outputs depend on the previous output (a recurrence): one position per window."""
        return self.kind == "rnn"

    @property
    def hidden_size(self) -> int:
        """Hidden units of an ``rnn`` layer (0 for other kinds)."""
        return self.out_channels // GATES[self.cell] if self.cell is not None else 0

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
        if self.kind in _DESCRIBE:
            return _DESCRIBE[self.kind](self)
        text = f"{kh}x{kw} {self.in_channels}->{self.out_channels} @{ih}x{iw}"
        text += f" s{self.stride[0]} p{self.padding[0]}"
        if self.dilation != (1, 1):
            text += f" d{self.dilation[0]}"
        if self.groups > 1:
            text += f" g{self.groups}"
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
