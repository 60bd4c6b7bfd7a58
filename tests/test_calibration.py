"""ADC range calibration: max and percentile against every recorded conversion, analytic
against a case with known sums, the unit step rule, clipping counts, and the on-disk cache
(hit, miss on any change, torn files, one pass for every ADC resolution)."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch
from test_crossbar import chip, images, report_for, tiny_model
from torch import nn

from imcsim.device import DeviceConfig
from imcsim.nn import CrossbarConfig, adc_clipping, calibrate, to_crossbar
from imcsim.nn.adc import adc_step
from imcsim.nn.crossbar import CrossbarConv2d


def layers(model: nn.Module) -> list[CrossbarConv2d]:
    return [m for m in model.modules() if isinstance(m, CrossbarConv2d)]


def recorded_sums(model, report, x, monkeypatch) -> dict[str, list[tuple[int, torch.Tensor]]]:
    """|partial sum| of every conversion of every layer, with its window copy: the ADC is
    replaced by a recorder that passes the sums on unconverted (as calibration does), and
    the inputs are scaled per image as in calibration."""
    seen: dict[str, list] = {}

    def spy(self, v, copy):
        seen.setdefault(self.name, []).append((copy, v.detach().abs().clone()))
        return v, None

    monkeypatch.setattr(CrossbarConv2d, "_adc", spy)
    to_crossbar(model, report, CrossbarConfig())(x)
    monkeypatch.undo()
    return seen


@pytest.mark.parametrize("scope", ["layer", "tile"])
def test_max_and_percentile_equal_a_brute_force_over_every_conversion(scope, monkeypatch):
    model, x = tiny_model(), images(4)
    report = report_for(model, "sdk", chip(24, 48), x)
    seen = recorded_sums(model, report, x, monkeypatch)
    for method, p in (("max", 100.0), ("percentile:99", 99.0), ("percentile:90", 90.0)):
        cfg = CrossbarConfig(adc_range="calibrated", adc_calibration=method, adc_scope=scope,
                             adc_step="exact")
        sim = to_crossbar(model, report, cfg, calibration=x)
        for layer in layers(sim):
            tiles = torch.cat([layer.columns.tile[c].expand_as(v).reshape(-1)
                               for c, v in seen[layer.name]])
            values = torch.cat([v.reshape(-1) for _, v in seen[layer.name]])
            groups = [tiles >= 0] if scope == "layer" else \
                [tiles == t for t in range(layer.columns.tiles)]
            want = []
            for keep in groups:
                ordered = values[keep].sort().values
                rank = len(ordered) - 1 if p == 100 else math.ceil(p / 100 * len(ordered)) - 1
                value = float(ordered[rank]) if len(ordered) else 0.0
                want.append(value if value > 0 or not len(ordered) else float(ordered[-1]))
            got = layer.adc_full_scale.reshape(-1).tolist()
            fixed = layer._fixed_full_scale()
            want = [w if w > 0 else fixed for w in want]
            assert got == pytest.approx(want, rel=1e-9, abs=1e-9), (method, layer.name)


def test_analytic_range_is_exact_when_the_inputs_do_not_vary() -> None:
    """Constant inputs: every column sum is its mean (σ = 0), so ``analytic`` equals ``max``."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(40, 6)).eval()
    x = torch.full((3, 40), 0.7)
    report = report_for(model, "im2col", chip(16, 32), x)
    ranges = {}
    for method in ("max", "analytic:3"):
        cfg = CrossbarConfig(adc_range="calibrated", adc_calibration=method, adc_scope="tile",
                             adc_step="exact")
        ranges[method] = to_crossbar(model, report, cfg, calibration=x)[0].adc_full_scale
    assert torch.allclose(ranges["max"], ranges["analytic:3"], rtol=1e-6)


def test_unit_step_is_a_whole_multiple_or_fraction_of_the_unit_current() -> None:
    def step(full, bits):
        return float(adc_step(torch.tensor(float(full)), bits, False, unit=True))

    assert step(126, 6) == 2 and step(127, 6) == 3 and step(63, 6) == 1
    assert step(20, 8) == pytest.approx(1 / 12)  # 255 steps of 1/12 cover 20
    exact = float(adc_step(torch.tensor(127.0), 6, False, unit=False))
    assert exact == pytest.approx(127 / 63)


def test_clipping_is_counted_per_layer() -> None:
    model, x = tiny_model(), images(3)
    report = report_for(model, "vw-sdk", chip(48, 64), x)
    low = to_crossbar(model, report, CrossbarConfig(adc_range="calibrated", adc_step="exact",
                                                    adc_calibration="percentile:50"),
                      calibration=x)
    low(x)
    clipped = {k: c.fraction for k, c in adc_clipping(low).items()}
    assert all(0 <= f <= 0.5 for f in clipped.values()), clipped  # at most half lie above
    assert sum(f > 0.1 for f in clipped.values()) >= 3  # ('pw' sees mostly zeros: no range cut)
    fixed = to_crossbar(model, report, CrossbarConfig())
    fixed(x)
    assert all(c.clipped == 0 and c.conversions > 0 for c in adc_clipping(fixed).values())


def test_cache_hits_misses_and_survives_a_torn_file(tmp_path) -> None:
    model, x = tiny_model(), images(3)
    report = report_for(model, "sdk", chip(48, 64), x)
    cfg = CrossbarConfig(adc_range="calibrated", adc_bits=6)

    def run(m, config=cfg):
        sim = to_crossbar(m, report, config, calibration=x, calibration_cache=tmp_path)
        return sim.conv1.calibration_info, [layer.adc_full_scale.clone() for layer in layers(sim)]

    first, ranges = run(model)
    assert not first.cached and first.images == 3 and first.passes == ("adc",)
    again, same = run(model)
    assert again.cached and all(torch.equal(a, b) for a, b in zip(ranges, same))
    # other ADC bits, method, scope: the same statistics serve them (no new pass)
    for update in ({"adc_bits": 4}, {"adc_calibration": "max"}, {"adc_scope": "tile"}):
        assert run(model, cfg.model_copy(update=update))[0].cached
    # a changed weight, chip setting or image set is another entry
    changed = tiny_model()
    with torch.no_grad():
        changed.conv1.weight[0, 0, 0, 0] += 0.5
    assert not run(changed)[0].cached
    assert not run(model, cfg.model_copy(update={"programming_noise": 0.01}))[0].cached
    files = sorted((tmp_path / "calibration").glob("*.pt"))
    assert len(files) == 3 and not list((tmp_path / "calibration").glob(".*"))
    files[0].write_bytes(b"torn")
    for f in files[1:]:
        f.write_bytes(b"torn")
    info, recomputed = run(model)
    assert not info.cached and all(torch.equal(a, b) for a, b in zip(ranges, recomputed))
    assert run(model)[0].cached
    # IR drop and its compensation gain change what later layers see while calibrating;
    # drift does not (calibration happens at programming time)
    device = DeviceConfig(cell_on_resistance_ohm=40e3, cell_off_resistance_ohm=6e6,
                          drift_nu_mean=0.05)
    report = replace(report, chip=report.chip.model_copy(update={"device": device}))
    ir = cfg.model_copy(update={"wire_resistance_ohm": 2.0})
    assert not run(model, ir)[0].cached
    assert not run(model, ir.model_copy(update={"ir_drop_compensation": True}))[0].cached
    assert run(model, ir.model_copy(update={"drift_time_s": 1e3}))[0].cached


def test_analytic_needs_only_float_passes(monkeypatch) -> None:
    model, x = tiny_model(), images(3)
    report = report_for(model, "vw-sdk", chip(48, 64), x)

    def no_mvm(*args, **kwargs):
        raise AssertionError("the analytic calibration ran a sliced MVM")

    cfg = CrossbarConfig(adc_range="calibrated", adc_calibration="analytic", adc_bits=6,
                         input_range="calibrated")
    sim = to_crossbar(model, report, cfg, calibration=x)
    monkeypatch.setattr(CrossbarConv2d, "_mvm", no_mvm)
    info = calibrate(sim, x, cfg)
    assert info.passes == ("inputs", "bits")
    assert all(float(layer.adc_full_scale) > 0 for layer in layers(sim))
