"""Conductance drift and ADC deviations on the non-ideality protocol: hand-solved cases,
t = t₀ = no drift, compensation, seeding, and the ADC transfer function against a brute
force count of its transition levels."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from imcsim.device import DeviceConfig
from imcsim.errors import ConfigError
from imcsim.hardware import ArrayConfig, ChipConfig, PrecisionConfig
from imcsim.layers import LayerShape
from imcsim.network import map_network
from imcsim.nn import CrossbarConfig, to_crossbar
from imcsim.nn.device_models import adc_transitions
from imcsim.nn.nonideal import AdcContext


def chip(sign: str = "differential", nu_std: float = 0.0, **device) -> ChipConfig:
    return ChipConfig(
        array=ArrayConfig(rows=32, cols=32, cell_bits=2, weight_bits=4, sign=sign),
        precision=PrecisionConfig(input_bits=4, dac_bits=1, adc_bits=16),
        device=DeviceConfig(drift_nu_mean=0.05, drift_nu_std=nu_std, drift_t0_s=20.0, **device),
    )


def linear(c: ChipConfig):
    torch.manual_seed(2)
    model = nn.Sequential(nn.Linear(12, 5, bias=False)).double().eval()
    return model, map_network([LayerShape.linear(12, 5, name="0")], "im2col", c)


def run(c: ChipConfig, x: torch.Tensor, **cfg) -> torch.Tensor:
    model, report = linear(c)
    return to_crossbar(model, report, CrossbarConfig(adc_step="exact", **cfg))(x)


def test_drift_by_hand_and_t0_is_no_drift() -> None:
    """ν_std = 0: every conductance scales by (t/t₀)^−ν, so a differential layer's output
    (no offset) scales exactly by that factor; compensation restores it; t = t₀ is exact."""
    c, x = chip(), torch.rand(3, 12, dtype=torch.float64)
    base = run(c, x)
    assert torch.equal(run(c, x, drift_time_s=20.0), base)
    day, tol = 86400.0, 2e-3 * float(base.abs().max())  # tol: the 16-bit ADC's rounding
    factor = (day / 20.0) ** -0.05
    assert torch.allclose(run(c, x, drift_time_s=day), factor * base, rtol=0, atol=tol)
    assert torch.allclose(run(c, x, drift_time_s=day, drift_compensation=True), base,
                          rtol=0, atol=tol)
    assert not torch.allclose(run(c, x, drift_time_s=day), base, rtol=0, atol=100 * tol)


def test_drift_spread_is_seeded_and_grows_the_error_with_time() -> None:
    c, x = chip(nu_std=0.02), torch.rand(4, 12, dtype=torch.float64)
    base = run(c, x)
    errors = []
    for t in (3600.0, 86400.0, 3.15e7):
        first = run(c, x, drift_time_s=t, drift_compensation=True, seed=3)
        assert torch.equal(first, run(c, x, drift_time_s=t, drift_compensation=True, seed=3))
        errors.append(float((first - base).norm() / base.norm()))
    assert 0 < errors[0] < errors[1] < errors[2]


def test_drift_keeps_the_adc_range_calibrated_at_t0() -> None:
    c, x = chip(sign="offset"), torch.rand(8, 12, dtype=torch.float64)
    model, report = linear(c)
    scales = []
    for t in (None, 3.15e7):
        cfg = CrossbarConfig(adc_range="calibrated", adc_calibration="max", drift_time_s=t)
        sim = to_crossbar(model, report, cfg, calibration=x)
        scales.append(float(sim[0].adc_full_scale))
    assert scales[0] == scales[1]


def test_drift_time_before_t0_or_without_a_law_is_refused() -> None:
    x = torch.rand(1, 12, dtype=torch.float64)
    with pytest.raises(ConfigError, match="drift_t0_s"):
        run(chip(), x, drift_time_s=5.0)
    bare = chip().model_copy(update={"device": DeviceConfig()})
    with pytest.raises(ConfigError, match="drift_nu_mean"):
        run(bare, x, drift_time_s=100.0)


# ------------------------------------------------------------------ ADC transfer function
def context(adcs: int, low: int, top: int, seed: int = 0) -> AdcContext:
    return AdcContext(adc=(torch.arange(6) % adcs,), adcs=adcs, low=low, top=top,
                      generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("low,top", [(0, 15), (-7, 7)])
def test_transfer_function_counts_its_transition_levels(low: int, top: int) -> None:
    from imcsim.nn.device_models import AdcDeviation

    ctx = context(3, low, top)
    convert = AdcDeviation(offset_lsb=0.4, dnl_lsb=0.3).converter(ctx)
    levels = adc_transitions(context(3, low, top), 0.4, 0.3)  # same seed, same draws
    assert (levels.diff(dim=1) > 0).all()  # monotonic: no missing codes
    v = torch.empty(500, 6, dtype=torch.float64).uniform_(low - 2, top + 2)
    codes = convert(v.clone(), 0)
    adc = ctx.adc[0]
    brute = low + (v.unsqueeze(-1) >= levels[adc]).sum(-1)
    assert torch.equal(codes, brute.clamp(low, top).to(codes.dtype))
    ideal = adc_transitions(context(3, low, top), 0.0, 0.0)
    assert torch.allclose(ideal, low + 0.5 + torch.arange(top - low, dtype=torch.float64))


def test_adc_deviations_grow_the_error_and_zero_is_ideal() -> None:
    c, x = chip(sign="offset"), torch.rand(6, 12, dtype=torch.float64)
    c = c.model_copy(update={"precision": PrecisionConfig(input_bits=4, dac_bits=1, adc_bits=6)})
    base = run(c, x)
    assert torch.equal(run(c, x, adc_offset_lsb=0.0, adc_dnl_lsb=0.0), base)
    errors = [float((run(c, x, adc_offset_lsb=s, adc_dnl_lsb=s, seed=1) - base).norm())
              for s in (0.1, 0.4)]
    assert 0 < errors[0] < errors[1]
    assert torch.equal(run(c, x, adc_dnl_lsb=0.4, seed=1), run(c, x, adc_dnl_lsb=0.4, seed=1))
