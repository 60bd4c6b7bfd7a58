"""Crossbar layers that compute as the chip would, following the layer's ``LayerMapping``.

``to_crossbar(model, report, config)`` returns a deep copy of ``model`` whose Conv2d and
Linear layers (matched to the report's mappings by qualified name) are replaced by
:class:`CrossbarConv2d` / :class:`CrossbarLinear`.  Each one quantizes its weights and
inputs, slices them over cells and DAC cycles (``imcsim.nn.functional``), sums every
array tile's column separately — which weights share a column comes from the mapping's
placement (``imcsim.nn.tileplan``) — quantizes each partial sum with the ADC, shifts and
adds the slices and accumulates the row tiles digitally.  Per window copy, one strided
grouped convolution (``imcsim.nn.mvm``) computes the column partial sums of every tile,
input slice and weight slice at once: no Python loop over windows or tiles.

Everything the forward pass needs is a parameter or a buffer, so ``state_dict`` /
``torch.load(weights_only=True)`` / ``load_state_dict`` on a model converted with the same
report and config reproduces the outputs.  In training mode with autograd on, the layer
returns the simulated output with the float convolution's gradient (straight-through
estimator), so fine-tuning can keep the chip in the loop.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from imcsim.errors import ConfigError, ImcsimWarning, MappingError
from imcsim.nn import functional as xf
from imcsim.nn.crossbar_config import CrossbarConfig, LayerSettings, resolve_settings
from imcsim.nn.mvm import Cells, build_layout, per_image, reducer, tiled_conv
from imcsim.nn.nonideal import CellContext, ReadContext, build_nonidealities, mixed_seed
from imcsim.nn.ops import FUNCTIONAL_PARENTS, module_entry, weight_modules
from imcsim.nn.tileplan import TilePlan, build_plan
from imcsim.report import NetworkReport

Pair = tuple[int, int]

__all__ = ["CrossbarConfig", "CrossbarConv2d", "CrossbarLinear", "calibrate", "to_crossbar"]


class CrossbarConv2d(nn.Module):
    """A Conv2d mapped on crossbar tiles (see the module docstring)."""

    def __init__(self, conv: nn.Conv2d | nn.Linear, plan: TilePlan, settings: LayerSettings,
                 mask: np.ndarray | None, layer_id: int, name: str = "") -> None:
        super().__init__()
        weight = conv.weight.detach()
        weight = weight.view(*weight.shape, 1, 1) if weight.dim() == 2 else weight
        keep = torch.from_numpy(plan.on_chip if mask is None else plan.on_chip & mask)
        self.name, self.settings, self.layer_id = name, settings, layer_id
        self.weight = nn.Parameter(weight * keep)
        self.bias = None if conv.bias is None else nn.Parameter(conv.bias.detach().clone())
        for key, default in (("stride", (1, 1)), ("padding", (0, 0)), ("dilation", (1, 1))):
            setattr(self, key, tuple(getattr(conv, key, default)))
        self.groups = getattr(conv, "groups", 1)
        self.register_buffer("weight_mask", keep.to(weight.dtype))
        self.register_buffer("weight_index", torch.from_numpy(plan.weight_index))
        self.register_buffer("input_max", torch.zeros((), dtype=weight.dtype))
        self.register_buffer("input_signed", torch.zeros((), dtype=torch.bool))
        self.register_buffer("adc_full_scale", torch.tensor(self._fixed_full_scale(),
                                                            dtype=weight.dtype))
        self.register_buffer("reads", torch.zeros((), dtype=torch.int64))
        for key in ("row_position", "col_position"):  # physical cell positions (placement)
            self.register_buffer(key, torch.from_numpy(getattr(plan, key)), persistent=False)
        self.nonideal = build_nonidealities(settings)
        self._readers = tuple(n for n in self.nonideal if n.reads)
        self.layout = build_layout(plan, weight.shape[1] * self.groups, tuple(weight.shape[-2:]),
                              self.stride, self.padding, self.dilation)
        self.calibrating = 0
        self._cells_cache: tuple[tuple[int, int], Cells] | None = None

    @classmethod
    def adopt(cls, module: nn.Module, conv: nn.Conv2d | nn.Linear, plan: TilePlan,
              settings: LayerSettings, mask: np.ndarray | None, layer_id: int,
              name: str = "") -> CrossbarConv2d:
        """The crossbar layer replacing ``module`` (``conv``: its array form)."""
        return cls(conv, plan, settings, mask, layer_id, name)

    def _fixed_full_scale(self) -> float:
        """Worst case of one column: every array row at the top input level and conductance."""
        s = self.settings
        if s.sliced:
            return s.rows * (2**s.dac_bits - 1) * (2**s.cell_bits - 1)
        return s.rows * xf.qmax(s.input_bits, False) * xf.qmax(s.weight_bits, True)

    def extra_repr(self) -> str:
        s, lay = self.settings, self.layout
        mode = "ideal" if s.ideal else (
            f"w{s.weight_bits}/c{s.cell_bits} {s.sign}, in{s.input_bits}/dac{s.dac_bits}, "
            f"adc{s.adc_bits} ({s.adc_range}), slicing={'full' if s.sliced else 'none'}"
        )
        return f"{self.name!r}, window={lay.window}, row_tiles={lay.slots}, {mode}"

    # -- weights → cells -------------------------------------------------------------------
    def cells(self) -> Cells:
        """The programmed cells (quantized, sliced, noisy), cached while the weight is unchanged."""
        key = (self.weight._version, self.weight.data_ptr())
        if self._cells_cache is None or self._cells_cache[0] != key:
            with torch.no_grad():
                self._cells_cache = (key, self._compute_cells(self.weight * self.weight_mask))
        return self._cells_cache[1]

    def _compute_cells(self, w: torch.Tensor) -> Cells:
        s = self.settings
        one = torch.ones((), dtype=w.dtype)
        if s.ideal:
            scale, q = one, w
        else:
            scale = w.abs().max() / xf.qmax(s.weight_bits, True)
            scale = torch.where(scale > 0, scale, one)
            q = xf.quantize(w, scale, s.weight_bits, True)
        flat = torch.cat([q.reshape(-1), q.new_zeros(1)])
        real = (self.weight_index < flat.numel() - 1).to(w.dtype)
        blocks = flat[self.weight_index]
        if s.sliced and not s.ideal:
            cells, coef, offset = xf.encode_weights(blocks, s.weight_bits, s.cell_bits, s.sign)
            top = 2**s.cell_bits - 1
        else:
            cells, coef, offset = blocks.unsqueeze(0), one.view(1), 0.0
            top = xf.qmax(s.weight_bits, True)
        cells = cells * real
        if self.nonideal:
            ctx = CellContext(real=real, top=top, row=self.row_position, col=self.col_position,
                              generator=torch.Generator().manual_seed(
                                  mixed_seed(s.seed, self.layer_id, 0)))
            for effect in self.nonideal:
                cells = effect.program(cells, ctx)
        presence = self._as_conv(real[:, :, :, :1]) if offset else None
        return Cells(weights=self._as_conv(cells.permute(1, 2, 3, 4, 0, 5)), presence=presence,
                     reducer=reducer(coef), offset=offset, scale=scale)

    def _as_conv(self, cells: torch.Tensor) -> list[torch.Tensor]:
        """(A, K, R, F, [S_w,] C·kk) → per copy (K·R·F·S_w, C, K_h, K_w) channels-last weights."""
        kh, kw = self.layout.kernel
        conv = cells.reshape(cells.shape[0], -1, cells.shape[-1] // (kh * kw), kh, kw)
        return [c.contiguous(memory_format=torch.channels_last) for c in conv]

    # -- inputs ------------------------------------------------------------------------------
    def _quantize_input(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, bool]:
        """(integer inputs, scale broadcastable to the output, signed?)."""
        s = self.settings
        if s.ideal:
            return x, torch.ones((), dtype=x.dtype), False
        flat = per_image(x.detach())
        low, high = flat.amin(dim=1), flat.amax(dim=1)  # (aminmax is ~10x slower on CPU)
        signed = bool(self.input_signed) or bool(low.min() < 0)
        top = xf.qmax(s.input_bits, signed)
        if s.input_range == "calibrated" and self.calibrating != 1:
            amax = self.input_max.expand(x.shape[0])
        else:
            amax = torch.maximum(low.abs(), high)
        if self.calibrating == 1:
            self.input_max.copy_(torch.maximum(self.input_max, amax.max()))
            self.input_signed |= signed
        scale = torch.where(amax > 0, amax / top, torch.ones_like(amax)).view(-1, 1, 1, 1)
        return xf.quantize(x, scale, s.input_bits, signed), scale, signed

    # -- the MVM -------------------------------------------------------------------------------
    def _adc(self, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """ADC codes of ``v`` (in place) and the step that turns codes into values."""
        s = self.settings
        if s.ideal or self.calibrating:
            if self.calibrating == 2:
                self.adc_full_scale.copy_(torch.maximum(self.adc_full_scale, v.abs().max()))
            return v, None
        lsb = xf.adc_lsb(self.adc_full_scale, s.adc_bits, not s.sliced).to(v.dtype)
        clip = s.adc_range == "calibrated" or any(n.may_exceed_range for n in self.nonideal)
        return xf.adc_levels_(v, lsb, s.adc_bits, not s.sliced, clip=clip), lsb

    def _read(self, v: torch.Tensor, spread: Callable[[], torch.Tensor]) -> torch.Tensor:
        """Every read-time non-ideality on the analog column sums ``v`` of one MVM."""
        self.reads += 1
        ctx = ReadContext(spread=spread, generator=torch.Generator().manual_seed(
            mixed_seed(self.settings.seed, self.layer_id, int(self.reads))))
        for effect in self._readers:
            v = effect.read(v, ctx)
        return v

    def _chunk(self, x: torch.Tensor, signed: bool) -> int:
        """Images per chunk so one copy's partial-sum tensor stays under the memory bound."""
        s, lay = self.settings, self.layout
        bits = s.input_bits - 1 if signed else s.input_bits
        n_x = 1 if s.ideal or not s.sliced else (2 if signed else 1) * -(-bits // s.dac_bits)
        out = xf.output_size(tuple(x.shape[-2:]), lay.kernel, lay.stride, lay.padding,
                             lay.dilation)
        positions = -(-out[0] // lay.window[0]) * -(-out[1] // lay.window[1])
        per_image = self.cells().weights[0].shape[0] * n_x * positions
        return max(1, s.max_block_elements // max(per_image, 1))

    def _mvm(self, x: torch.Tensor, signed: bool) -> torch.Tensor:
        s = self.settings
        if s.sliced and not s.ideal:
            slices, x_coef = xf.encode_inputs(x, s.input_bits, s.dac_bits, signed)
        else:
            slices, x_coef = x.unsqueeze(0), torch.ones(1, dtype=x.dtype)
        analog = self._read if self._readers else None
        y, lsb = tiled_conv(x, slices, x_coef, self.cells(), self.layout, self._adc, analog)
        return y if lsb is None else y.mul_(lsb)

    def simulate(self, x: torch.Tensor) -> torch.Tensor:
        """The chip's output for a 4-D input (no autograd)."""
        with torch.no_grad():
            xq, x_scale, signed = self._quantize_input(x)
            step = self._chunk(x, signed)
            parts = [self._mvm(xq[i : i + step], signed) for i in range(0, len(x), step)]
            y = parts[0] if len(parts) == 1 else torch.cat(parts)
            y = y.mul_(self.cells().scale * x_scale)
            return y if self.bias is None else y.add_(self.bias.view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.simulate(x)
        if torch.is_grad_enabled() and self.training and self.weight.requires_grad:
            exact = F.conv2d(x, self.weight * self.weight_mask, self.bias, self.stride,
                             self.padding, self.dilation, self.groups)
            return exact + (y - exact).detach()
        return y


class CrossbarLinear(CrossbarConv2d):
    """A Linear layer on crossbar tiles: a 1×1 convolution over its positions (tokens)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        n = lead[0] if len(lead) else 1
        x4 = x.reshape(n, -1, x.shape[-1]).transpose(1, 2).unsqueeze(2)
        y = super().forward(x4)
        return y.squeeze(2).transpose(1, 2).reshape(*lead, -1)


def detached_copy(model: nn.Module) -> nn.Module:
    """``copy.deepcopy`` that also copies computed (non-leaf) weight tensors, such as the
    ``weight`` that ``torch.nn.utils.prune`` recomputes on every forward pass."""
    memo: dict[int, object] = {}
    for module in model.modules():
        for value in vars(module).values():
            if isinstance(value, torch.Tensor) and value.grad_fn is not None:
                memo[id(value)] = value.detach().clone()
    return copy.deepcopy(model, memo)


def crossbar_class(name: str) -> type[nn.Module]:
    """A crossbar layer class by name (this module, or ``imcsim.nn.crossbar_layers``)."""
    from imcsim.nn import crossbar_layers

    return globals().get(name) or getattr(crossbar_layers, name)


def crossbar_targets(
    model: nn.Module, report: NetworkReport
) -> tuple[list[tuple[str, nn.Module, str]], list[str]]:
    """(name, module, crossbar class name) of every module to replace, and why mapped
    layers that are not replaced stay in float."""
    inside = {f"{n}.{c}" for n, m in model.named_modules() if isinstance(m, FUNCTIONAL_PARENTS)
              for c, _ in m.named_children()}
    products = {m.layer.name for m in report.matmuls}
    on_chip = report.chip.matmul.placement == "crossbar"
    targets, kept, notes = [], set(), []
    for name, module, entry in weight_modules(model):
        if entry.kind == "matmul":
            if on_chip and name in products:
                targets.append((name, module, "CrossbarMatMul"))
        elif _run_time_padding(module):
            notes.append(f"{name} ({_run_time_padding(module)}) has no crossbar layer yet")
        elif entry.crossbar is not None and name not in inside:
            targets.append((name, module, entry.crossbar))
            kept.add(name)
    left = [m.layer.name for m in report.mappings if m.layer.name.split("#")[0] not in kept]
    if left:
        notes.append(f"{', '.join(left)} stay in float (no crossbar module to replace)")
    return targets, notes


def _run_time_padding(module: nn.Module) -> str:
    """``padding='same'`` or a non-zero ``padding_mode`` ("" when the padding is plain)."""
    padding, mode = getattr(module, "padding", 0), getattr(module, "padding_mode", "zeros")
    if isinstance(padding, str):
        return f"padding={padding!r}"
    return f"padding_mode={mode!r}" if mode != "zeros" else ""


def _geometry(module: nn.Conv2d | nn.Linear) -> tuple:
    if isinstance(module, nn.Linear):
        return (module.in_features, module.out_features, (1, 1), (1, 1), (0, 0), (1, 1), 1)
    return (module.in_channels, module.out_channels, tuple(module.kernel_size),
            tuple(module.stride), tuple(module.padding), tuple(module.dilation), module.groups)


def _layer_plan(name: str, module: nn.Conv2d | nn.Linear, mapping) -> TilePlan:
    """The plan of ``module`` on ``mapping``, checking that they describe the same layer."""
    layer = mapping.layer
    want = (layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride,
            layer.padding, layer.dilation, layer.groups)
    if _geometry(module) != want:
        raise MappingError(
            f"layer {name!r}: module {type(module).__name__} {_geometry(module)} does not "
            f"match its mapping {layer.describe()}"
        )
    return build_plan(mapping)


def to_crossbar(
    model: nn.Module, report: NetworkReport, config: CrossbarConfig | None = None, *,
    calibration: torch.Tensor | None = None,
) -> nn.Module:
    """A deep copy of ``model`` whose weight layers compute on the report's tiles.

    Every module type the registry (``imcsim.nn.ops``) gives a crossbar form is replaced
    (Conv2d, Linear, Conv1d, ConvTranspose2d, transformers' Conv1D), matched to
    ``report.mappings`` by qualified module name; ``MatMul`` products are simulated on
    crossbars when the chip places them there (``chip.matmul.placement``), else they stay
    exact (the digital unit).  Mapped layers that keep computing in float (LSTM gates,
    weights a parent module uses through ``F.linear``, such as ``nn.MultiheadAttention``'s)
    are named in an ``ImcsimWarning``.  Precisions come
    from ``report.chip`` with ``config``'s overrides.  ``calibration`` images are needed
    when ``config`` calibrates the ADC or input ranges.  ``model`` is left untouched.
    """
    config = config if config is not None else CrossbarConfig()
    settings = resolve_settings(report.chip, config)
    if config.needs_calibration and calibration is None:
        raise ConfigError("adc_range/input_range 'calibrated' needs calibration images")
    mappings = {m.layer.name: m for m in report.mappings}
    converted = detached_copy(model).eval()
    targets, left = crossbar_targets(converted, report)
    if left:
        warnings.warn(f"to_crossbar: {'; '.join(left)}", ImcsimWarning, stacklevel=2)
    if not targets:
        raise MappingError("to_crossbar: the model has no layer with a crossbar form")
    for layer_id, (name, module, cls_name) in enumerate(targets):
        if cls_name == "CrossbarMatMul":
            new = crossbar_class(cls_name)(settings, name)
        else:
            mapping = mappings.get(name)
            if mapping is None:
                raise MappingError(f"layer {name!r} has no mapping in the report of {report.model!r}")
            conv = module_entry(module).as_conv(module)  # type: ignore[union-attr]
            plan, mask = _layer_plan(name, conv, mapping), mapping.layer.nonzero_mask()
            new = crossbar_class(cls_name).adopt(module, conv, plan, settings, mask, layer_id, name)
        parent, _, child = name.rpartition(".")
        setattr(converted.get_submodule(parent), child, new.train(module.training))
    if config.needs_calibration:
        calibrate(converted, calibration, config)  # type: ignore[arg-type]
    return converted


@torch.no_grad()
def calibrate(model: nn.Module, images: torch.Tensor, config: CrossbarConfig) -> None:
    """Set the calibrated input ranges, then the ADC full scales, from ``images``.

    Pass 1 records each layer's largest input (ADC bypassed), pass 2 each layer's largest
    partial sum with the input ranges of pass 1.
    """
    layers = [m for m in model.modules() if isinstance(m, CrossbarConv2d)]
    images = images[: config.calibration_images]
    phases = [p for p, on in ((1, config.input_range == "calibrated"),
                              (2, config.adc_range == "calibrated")) if on]
    for phase in phases:
        for layer in layers:
            layer.calibrating = phase
            (layer.input_max if phase == 1 else layer.adc_full_scale).zero_()
        try:
            model.eval()
            for start in range(0, len(images), config.batch_size):
                model(images[start : start + config.batch_size])
        finally:
            for layer in layers:
                layer.calibrating = 0
