"""Crossbar layers that compute as the chip would, following the layer's ``LayerMapping``.

``to_crossbar(model, report, config)`` returns a deep copy of ``model`` whose Conv2d and
Linear layers (matched to the report's mappings by qualified name) are replaced by
:class:`CrossbarConv2d` / :class:`CrossbarLinear`.  Each one quantizes its weights and
inputs, slices them over cells and DAC cycles (``imcsim.nn.functional``), sums every
array tile's column separately — which weights share a column comes from the mapping's
placement (``imcsim.nn.tileplan``) — quantizes each partial sum with the ADC, shifts and
adds the slices and accumulates the row tiles digitally.  Per window copy, one strided
grouped convolution (``imcsim.nn.mvm``) computes the column partial sums of every tile,
input slice and weight slice at once: no Python loop over windows or tiles.  The layer
class is in ``imcsim.nn.crossbar_conv`` (re-exported here).

Everything the forward pass needs is a parameter or a buffer, so ``state_dict`` /
``torch.load(weights_only=True)`` / ``load_state_dict`` on a model converted with the same
report and config reproduces the outputs.  In training mode with autograd on, the layer
returns the simulated output with the float convolution's gradient (straight-through
estimator), so fine-tuning can keep the chip in the loop.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import torch
from torch import nn

from imcsim.errors import ConfigError, ImcsimWarning, MappingError
from imcsim.nn import crossbar_layers
from imcsim.nn.adc import AdcCounts
from imcsim.nn.calibration import calibrate
from imcsim.nn.crossbar_config import CrossbarConfig, resolve_settings
from imcsim.nn.crossbar_conv import CrossbarConv2d, CrossbarLinear
from imcsim.nn.devices import module_device, resolve_device
from imcsim.nn.ops import FUNCTIONAL_PARENTS, module_entry, weight_modules
from imcsim.nn.tileplan import TilePlan, build_plan
from imcsim.report import NetworkReport

__all__ = ["CrossbarConfig", "CrossbarConv2d", "CrossbarLinear", "adc_clipping", "to_crossbar"]


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
    calibration: torch.Tensor | None = None, calibration_cache: Path | None = None,
    device: str | torch.device | None = None,
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
    when ``config`` calibrates the ADC or input ranges (``imcsim.nn.calibration``; its
    statistics are cached in ``calibration_cache`` when given, and every layer's
    ``calibration_info`` says what was used).  ``model`` is left untouched.  The copy
    computes on ``device`` (``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"auto"``, a
    ``torch.device``; ``None``: the model's own device, see ``imcsim.nn.devices``).
    """
    target = module_device(model) if device is None else resolve_device(device)
    config = config if config is not None else CrossbarConfig()
    settings = resolve_settings(report.chip, config)
    if config.needs_calibration and calibration is None:
        raise ConfigError("adc_range/input_range 'calibrated' needs calibration images")
    mappings = {m.layer.name: m for m in report.mappings}
    converted = detached_copy(model).eval().to(target)
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
        calibrate(converted, calibration, config, calibration_cache)  # type: ignore[arg-type]
    return converted


def adc_clipping(model: nn.Module) -> dict[str, AdcCounts]:
    """ADC conversions and clipped conversions of every crossbar layer since conversion
    (calibration passes bypass the ADC and are not counted)."""
    return {m.name: m.adc_counts for m in model.modules()
            if isinstance(m, CrossbarConv2d) and not m.settings.ideal}
