"""Calibration of a converted model's input and ADC ranges, cheap and cached.

``calibrate(model, images, config, cache_dir=…)`` sets every crossbar layer's input range
(``input_range="calibrated"``) and ADC full scale (``adc_range="calibrated"``) from a few
calibration images, in at most two passes:

1. *inputs* (only for calibrated input ranges): a float pass, every layer records the
   largest input it sees.
2. either *adc* — one simulated pass with the ADCs bypassed, every layer histograms
   |partial sum| per tile (power-of-two bins: integer sums fall on bin edges) and keeps
   each tile's largest one — for ``max`` and ``percentile``; or *bits* — a float pass in
   which every layer records the mean and second moment of each input channel's DAC
   slices — for ``analytic``, which needs no sliced MVM at all.

The statistics, not the ranges, are what a pass produces, so one pass serves every ADC
resolution, calibration method, scope (per layer or per tile) and step rule; they are
cached on disk under a key that hashes everything they depend on: the code of the
simulation, every weight, buffer and cell position of the converted model, each layer's
settings (without the ADC conversion settings and the read time, which calibration does
not see: it runs at programming time, t₀), and the calibration images.  Writes are
atomic (temporary file + rename); an unreadable entry is recomputed.

Ranges, per layer or per tile (``CrossbarConfig.adc_scope``):

* ``max`` — the largest |partial sum| seen (the range of aihwkit's/CrossSim's "max"
  calibration);
* ``percentile:P`` — the P-th percentile of |partial sum| over all conversions (CrossSim's
  per-layer percentile calibration of ADC ranges, Xiao et al., 2022);
* ``analytic:K`` — max over columns and input slices of ``μ + K·σ`` with
  ``μ = Σ_j G_j·E[x_j]``, ``σ² = Σ_j G_j²·Var[x_j]`` (independent inputs), the input
  moments per channel and DAC slice from the *bits* pass.

The ADC step is then ``range / levels`` (``adc_step="exact"``) or the smallest whole
number of unit currents covering the range (``"whole"``, see ``imcsim.nn.adc``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from imcsim.nn import functional as xf
from imcsim.nn.calibration_cache import cache_key, default_cache_dir, load_stats, save_stats
from imcsim.nn.crossbar_config import CrossbarConfig
from imcsim.nn.crossbar_conv import CrossbarConv2d
from imcsim.nn.devices import module_device

__all__ = ["CalibrationInfo", "calibrate", "default_cache_dir"]

_BINS = 4096
@dataclass(frozen=True)
class CalibrationInfo:
    """What a calibration used: method, images, passes run, and whether it hit the cache."""

    method: str
    images: int
    passes: tuple[str, ...]
    cached: bool


def _layers(model: nn.Module) -> list[CrossbarConv2d]:
    return [m for m in model.modules() if isinstance(m, CrossbarConv2d)]


@torch.no_grad()
def calibrate(model: nn.Module, images: torch.Tensor, config: CrossbarConfig,
              cache_dir: Path | None = None) -> CalibrationInfo:
    """Set the calibrated input ranges and ADC full scales of ``model``'s crossbar layers
    from (at most ``config.calibration_images`` of) ``images``, in batches of
    ``config.batch_size``; what is calibrated, and how, is each layer's settings (those it
    was converted with).  Statistics are read from / written to ``cache_dir`` when given
    (see the module docstring)."""
    layers, images = _layers(model), images[: config.calibration_images]
    passes = _passes(layers[0].settings) if layers else ()
    key = cache_key(model, layers, images, passes) if cache_dir is not None else None
    stats = load_stats(cache_dir, key) if key is not None else None
    cached = stats is not None
    if stats is None:
        stats = _run(model, layers, images, passes, config.batch_size)
        if key is not None:
            # cpu-only: stored on the host (readable on any machine)
            save_stats(cache_dir, key, _moved(stats, torch.device("cpu")))  # type: ignore[arg-type]
    stats = _moved(stats, module_device(model))
    s = layers[0].settings if layers else None
    method = "fixed" if s is None or s.adc_range != "calibrated" else (
        s.adc_calibration if s.adc_parameter is None else f"{s.adc_calibration}:{s.adc_parameter:g}")
    info = CalibrationInfo(method=method, images=len(images), passes=passes, cached=cached)
    for layer in layers:
        _apply(layer, stats.get(layer.name, {}))
        layer.calibration_info = info
    return info


def _moved(stats: dict[str, dict[str, torch.Tensor]],
           device: torch.device) -> dict[str, dict[str, torch.Tensor]]:
    """The statistics on ``device`` (stored on the CPU; used on the model's device)."""
    return {name: {k: v.to(device) for k, v in st.items()} for name, st in stats.items()}


def _passes(s) -> tuple[str, ...]:
    if s.ideal:
        return ()
    passes = ("inputs",) if s.input_range == "calibrated" else ()
    if s.adc_range == "calibrated":
        passes += ("bits",) if s.adc_calibration == "analytic" else ("adc",)
    return passes


# -- the passes ------------------------------------------------------------------------------
class _Observer:
    """Collects each layer's statistics during the *bits* and *adc* passes."""

    def __init__(self) -> None:
        self.stats: dict[str, dict[str, torch.Tensor]] = {}

    def inputs(self, layer: CrossbarConv2d, xq: torch.Tensor, signed: bool) -> None:
        s = layer.settings
        if s.sliced:
            planes, _ = xf.encode_inputs(xq, s.input_bits, s.dac_bits, signed)
        else:
            planes = xq.unsqueeze(0)
        st = self.stats.setdefault(layer.name, {})
        m1, m2 = planes.sum(dim=(1, 3, 4)).double(), planes.square().sum(dim=(1, 3, 4)).double()
        count = planes.shape[1] * planes.shape[3] * planes.shape[4]
        if "m1" in st and st["m1"].shape != m1.shape:  # signed in one batch only
            raise ValueError(f"layer {layer.name!r}: input sign changed between batches")
        for k, v in (("m1", m1), ("m2", m2),
                     ("count", torch.tensor(float(count), device=m1.device))):
            st[k] = st[k] + v if k in st else v

    def sums(self, layer: CrossbarConv2d, v: torch.Tensor, copy: int) -> None:
        st = self.stats.setdefault(layer.name, {})
        tiles, width = layer.columns.tiles, _bin_width(layer)
        if "hist" not in st:
            st["hist"] = torch.zeros(tiles + 1, _BINS + 1, dtype=torch.int64, device=v.device)
            st["peak"] = torch.zeros(tiles + 1, dtype=torch.float64, device=v.device)
            st["bin_width"] = torch.tensor(width, dtype=torch.float64, device=v.device)
        tile = layer.columns.tile[copy]
        slot = torch.where(tile >= 0, tile, torch.full_like(tile, tiles))  # padding: last
        a = v.abs()
        st["peak"].scatter_reduce_(0, slot, a.reshape(-1, a.shape[-1]).amax(0).double(), "amax")
        # int32 (truncation = floor for |v| ≥ 0): converting to int64 costs 10× more
        index = a.mul_(1.0 / width).clamp_(max=_BINS).to(torch.int32)
        if tiles > 1 or bool((slot > 0).any()):
            index += (slot * (_BINS + 1)).to(torch.int32)
        st["hist"] += torch.bincount(index.reshape(-1), minlength=(tiles + 1) * (_BINS + 1)
                                     ).view(tiles + 1, _BINS + 1)

    def __call__(self, layer: CrossbarConv2d, t: torch.Tensor, extra) -> None:
        """The layer's hook: partial sums (*adc* pass) or quantized inputs (*bits* pass)."""
        if layer.calibrating == "adc":
            self.sums(layer, t, extra)
        elif layer.calibrating == "bits":
            self.inputs(layer, t, extra)


def _bin_width(layer: CrossbarConv2d) -> float:
    """Power-of-two bin width with ``_BINS`` bins covering the worst-case column sum."""
    return 2.0 ** math.ceil(math.log2(max(layer._fixed_full_scale(), 1.0) / _BINS))


def _run(model: nn.Module, layers: list[CrossbarConv2d], images: torch.Tensor,
         passes: tuple[str, ...], batch_size: int) -> dict[str, dict[str, torch.Tensor]]:
    observer = _Observer()
    training = model.training
    model.eval()
    try:
        for phase in passes:
            for layer in layers:
                layer.calibrating, layer.observer = phase, observer
                if phase == "inputs":
                    layer.input_max.zero_()
                    layer.input_signed.zero_()
            device = module_device(model)
            for start in range(0, len(images), batch_size):  # one transfer per batch
                model(images[start : start + batch_size].to(device))
    finally:
        for layer in layers:
            layer.calibrating, layer.observer = "", None
        model.train(training)
    for layer in layers:
        st = observer.stats.setdefault(layer.name, {})
        if "inputs" in passes:
            st["input_max"] = layer.input_max.clone()
            st["input_signed"] = layer.input_signed.clone()
    return observer.stats


# -- statistics → ranges ------------------------------------------------------------------------
def _apply(layer: CrossbarConv2d, st: dict[str, torch.Tensor]) -> None:
    s = layer.settings
    if "input_max" in st:
        layer.input_max.copy_(st["input_max"])
        layer.input_signed.copy_(st["input_signed"])
    if s.adc_range != "calibrated" or s.ideal:
        return
    per_layer = s.adc_scope == "layer"
    if s.adc_calibration == "analytic" and "m1" in st:
        value = _analytic(layer, st, float(s.adc_parameter))
        value = value.max() if per_layer else value
    elif s.adc_calibration != "analytic" and "hist" in st:
        hist, peak = st["hist"][:-1], st["peak"][:-1]  # the last row: padding columns
        if per_layer:  # one distribution over all of the layer's conversions
            hist, peak = hist.sum(0, keepdim=True), peak.max().view(1)
        value = _from_histogram(hist, peak, st["bin_width"], s.adc_calibration, s.adc_parameter)
        value = value[0] if per_layer else value
    else:
        return  # the layer saw no input: keep the worst case
    value = torch.where(value > 0, value, torch.full_like(value, layer._fixed_full_scale()))
    layer.adc_full_scale.copy_(value.to(layer.adc_full_scale.dtype))


def _from_histogram(hist: torch.Tensor, peak: torch.Tensor, width: torch.Tensor, method: str,
                    percent: float | None) -> torch.Tensor:
    """Per histogram row: the largest |sum| (``max``) or the P-th percentile (lower edge of
    the bin holding it: exact for sums on the bin grid)."""
    if method == "max":
        return peak
    counts = hist.double()
    cumulative = counts.cumsum(-1)
    total = cumulative[:, -1:]
    first = (cumulative < total * (float(percent) / 100.0) - 1e-9).sum(-1)
    value = first.double() * width
    value = torch.where(first >= _BINS, peak, torch.minimum(value, peak))
    value = torch.where(value > 0, value, peak)  # mostly-zero sums: a zero range is no range
    return torch.where(total[:, 0] > 0, value, torch.zeros_like(value))


def _analytic(layer: CrossbarConv2d, st: dict[str, torch.Tensor], k: float) -> torch.Tensor:
    """Per tile: max over its columns and input slices of μ + k·σ (see the docstring)."""
    mean = st["m1"] / st["count"]
    var = (st["m2"] / st["count"] - mean.square()).clamp(min=0)
    cells, tiles = layer.cells(at_t0=True), layer.columns.tiles
    out = torch.zeros(tiles + 1, dtype=torch.float64, device=layer.weight.device)
    for copy, w in enumerate(cells.weights):
        blocks = layer.channels[copy].reshape(-1, layer.channels.shape[-1])  # (K·R, C)
        g = w.double().reshape(len(blocks), -1, blocks.shape[1], w.shape[-2] * w.shape[-1])
        mu = torch.einsum("gmck,sgc->sgm", g, mean[:, blocks])
        sd = torch.einsum("gmck,sgc->sgm", g.square(), var[:, blocks]).sqrt()
        top = (mu.abs() + k * sd).amax(0).reshape(-1)                       # per column
        tile = layer.columns.tile[copy]
        out.scatter_reduce_(0, torch.where(tile >= 0, tile, torch.full_like(tile, tiles)),
                            top, "amax")
    return out[:-1]
