"""IR drop: the per-tile solver against dense nodal solves written here, the layer's output
against an independent solve of a 4×4 tile, zero wire resistance = no IR drop exactly,
the first-order approximation's second-order error, and the placement dependence."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from imcsim import _irdrop
from imcsim.device import DeviceConfig
from imcsim.hardware import ArrayConfig, ChipConfig, PrecisionConfig
from imcsim.layers import LayerShape
from imcsim.network import map_network
from imcsim.nn import CrossbarConfig, to_crossbar

G_ON, G_OFF = 1 / 40e3, 1 / 6e6


def nodal_currents(g: np.ndarray, volts: np.ndarray, r_wl: float, r_bl: float) -> np.ndarray:
    """Column currents of one tile by a dense nodal solve (independent of the package):
    word-line node (i, j) = 2·(i·C + j), bit-line node = 2·(i·C + j) + 1."""
    rows, cols = g.shape
    n = 2 * rows * cols
    y, rhs = np.zeros((n, n)), np.zeros(n)

    def wl(i, j):
        return 2 * (i * cols + j)

    def stamp(a, b, conductance):
        y[a, a] += conductance
        if b is not None:
            y[b, b] += conductance
            y[a, b] -= conductance
            y[b, a] -= conductance

    for i in range(rows):
        stamp(wl(i, 0), None, 1 / r_wl)
        rhs[wl(i, 0)] += volts[i] / r_wl  # driver V_i through the first segment
        for j in range(cols):
            stamp(wl(i, j), wl(i, j) + 1, g[i, j])
            if j + 1 < cols:
                stamp(wl(i, j), wl(i, j + 1), 1 / r_wl)
            below = wl(i + 1, j) + 1 if i + 1 < rows else None  # None: the sense amplifier
            stamp(wl(i, j) + 1, below, 1 / r_bl)
    v = np.linalg.solve(y, rhs)
    return np.array([v[wl(rows - 1, j) + 1] / r_bl for j in range(cols)])


@pytest.mark.parametrize("shape", [(1, 1), (1, 5), (5, 1), (4, 4), (6, 3), (9, 12)])
def test_solver_matches_dense_nodal_solves(shape) -> None:
    rng = np.random.default_rng(sum(shape))
    g = rng.uniform(G_OFF, G_ON, (2, *shape))
    for r_wl, r_bl in ((0.35, 0.35), (5.0, 2.0), (400.0, 900.0)):
        exact = _irdrop.effective_conductance(g, r_wl, r_bl)
        twin = _irdrop.effective_conductance_py(g, r_wl, r_bl)
        assert np.abs(exact - twin).max() <= 1e-6 * G_ON
        for t in range(2):
            volts = rng.uniform(0, 1, shape[0])
            want = nodal_currents(g[t], volts, r_wl, r_bl)
            assert np.allclose(exact[t].T @ volts, want, rtol=1e-9, atol=1e-6 * G_ON * shape[0])
        assert (exact.sum(axis=(1, 2)) < g.sum(axis=(1, 2))).all()  # wires only lose current


def test_drop_grows_with_wire_resistance_and_distance() -> None:
    g = np.full((1, 8, 8), G_ON)
    drops = [1 - _irdrop.effective_conductance(g, r, r).sum() / g.sum() for r in (0.1, 1, 10)]
    assert 0 < drops[0] < drops[1] < drops[2] < 1
    geff = _irdrop.effective_conductance(g, 1.0, 1.0)[0]
    # the cell nearest its driver (column 0) and its amplifier (last row) loses least
    assert geff[-1, 0] == geff.max() and geff[0, -1] < geff[-1, 0]


def test_linear_approximation_error_is_second_order() -> None:
    rng = np.random.default_rng(0)
    g = rng.uniform(G_OFF, G_ON, (1, 32, 32))
    errors = []
    for r in (0.5, 0.25):
        exact = _irdrop.effective_conductance(g, r, r)
        errors.append(np.abs(_irdrop.effective_conductance_linear(g, r, r) - exact).max())
        assert errors[-1] < 0.1 * np.abs(exact - g).max()  # far better than ignoring IR drop
    assert 3.5 < errors[0] / errors[1] < 4.5  # halving r quarters the error


# ------------------------------------------------------------------ the layer on a 4×4 tile
CHIP = ChipConfig(
    array=ArrayConfig(rows=4, cols=4, cell_bits=2, weight_bits=2),
    precision=PrecisionConfig(input_bits=2, dac_bits=2, adc_bits=16),
    device=DeviceConfig(cell_on_resistance_ohm=1 / G_ON, cell_off_resistance_ohm=1 / G_OFF),
)


def _linear() -> tuple[nn.Module, object]:
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(4, 4)).double().eval()
    report = map_network([LayerShape.linear(4, 4, name="0")], "im2col", CHIP)
    assert report.mappings[0].tiles == 1  # one 4×4 tile, every cell a weight
    return model, report


def test_layer_output_matches_an_independent_solve_of_its_tile() -> None:
    model, report = _linear()
    x = torch.tensor([[0.9, 0.3, 0.0, 0.6], [0.2, 0.8, 0.5, 0.1]], dtype=torch.float64)
    cfg = CrossbarConfig(adc_step="exact", wire_resistance_ohm=50.0)
    got = to_crossbar(model, report, cfg)(x)
    clean = to_crossbar(model, report, cfg.model_copy(update={"wire_resistance_ohm": 0.0}))(x)
    # the same numbers by hand: 2-bit weights, offset encoding (level = q + 2), one cell each
    w, b = model[0].weight.detach(), model[0].bias.detach()
    w_scale = w.abs().max() / 1
    q = torch.round(w / w_scale).clamp(-1, 1)
    levels = (q + 2).numpy()                                   # (out, in): column j = output j
    x_scale = x.abs().amax(dim=1, keepdim=True) / 3
    xq = torch.round(x / x_scale).clamp(0, 3)
    want = []
    for n in range(len(x)):
        cells = (G_OFF + (G_ON - G_OFF) * levels.T / 3)       # (rows = inputs, cols = outputs)
        amps = nodal_currents(cells, xq[n].numpy(), 50.0, 50.0)
        level_sums = (amps - G_OFF * xq[n].sum().item()) * 3 / (G_ON - G_OFF)
        want.append((level_sums - 2 * xq[n].sum().item()) * w_scale.item() * x_scale[n].item())
    want = torch.tensor(np.array(want)) + b
    step = 36 / (2**16 - 1)  # the 16-bit ADC over the worst case 4 rows × 3 × 3 rounds
    tol = 0.5 * step * float(w_scale) * x_scale.view(-1, 1)
    assert ((got - want).abs() <= tol * (1 + 1e-9)).all()
    assert (got < clean - 1e-9).any()  # the drop lowers every column sum: outputs fall


def test_zero_wire_resistance_is_no_ir_drop_exactly() -> None:
    model, report = _linear()
    x = torch.rand(3, 4, dtype=torch.float64)
    base = to_crossbar(model, report, CrossbarConfig())(x)
    assert torch.equal(to_crossbar(model, report, CrossbarConfig(wire_resistance_ohm=0.0))(x), base)


def test_ir_drop_needs_cell_resistances() -> None:
    from imcsim.errors import ConfigError

    model, report = _linear()
    bare = report.chip.model_copy(update={"device": DeviceConfig()})
    report = map_network([LayerShape.linear(4, 4, name="0")], "im2col", bare)
    with pytest.raises(ConfigError, match="cell_on_resistance_ohm"):
        to_crossbar(model, report, CrossbarConfig(wire_resistance_ohm=1.0))


def _conv_case() -> tuple[nn.Module, ChipConfig, torch.Tensor]:
    """A seeded 8→6 3×3 conv, a 64×64 chip with the shipped device and a 16-bit ADC, inputs."""
    torch.manual_seed(0)
    conv = nn.Sequential(nn.Conv2d(8, 6, 3, padding=1)).double().eval()
    chip = ChipConfig(array=ArrayConfig(rows=64, cols=64, cell_bits=2, weight_bits=4),
                      precision=PrecisionConfig(input_bits=4, dac_bits=1, adc_bits=16),
                      device=CHIP.device)
    return conv, chip, torch.rand(2, 8, 8, 8, dtype=torch.float64)


def test_ir_drop_error_depends_on_the_placement() -> None:
    """Same conv, weights and inputs; im2col and SDK place the weights differently, so the
    same wire resistance costs them different output errors."""
    conv, chip, x = _conv_case()
    shape = LayerShape.conv2d(8, 6, 3, 8, padding=1, name="0")
    errors = {}
    for mapper in ("im2col", "sdk"):
        report = map_network([shape], mapper, chip)
        clean = to_crossbar(conv, report, CrossbarConfig(adc_step="exact"))(x)
        dropped = [to_crossbar(conv, report, CrossbarConfig(adc_step="exact",
                                                             wire_resistance_ohm=r))(x)
                   for r in (1.0, 4.0)]
        errs = [float((d - clean).norm() / clean.norm()) for d in dropped]
        assert 0 < errs[0] < errs[1]
        errors[mapper] = errs[1]
    assert abs(errors["im2col"] - errors["sdk"]) > 0.05 * max(errors.values())


def test_global_compensation_removes_the_mean_loss() -> None:
    """The all-ones reference read restores the layer's mean gain: the compensated error
    is smaller, and the compensation gain is exactly Σ ideal / Σ effective levels."""
    conv, chip, x = _conv_case()
    report = map_network([LayerShape.conv2d(8, 6, 3, 8, padding=1, name="0")], "sdk", chip)
    clean = to_crossbar(conv, report, CrossbarConfig(adc_step="exact"))
    errors = []
    for compensate in (False, True):
        cfg = CrossbarConfig(adc_step="exact", wire_resistance_ohm=4.0,
                             ir_drop_compensation=compensate)
        sim = to_crossbar(conv, report, cfg)
        errors.append(float((sim(x) - clean(x)).norm() / clean(x).norm()))
    ideal, dropped = clean[0].cells(), sim[0].cells()
    slice_weight = torch.tensor([1.0, 4.0])  # 4-bit weights in two 2-bit cells

    def reference_read(cells) -> float:  # all inputs at one, shift-and-added, all columns
        return sum(float((w.reshape(-1, 2, w[0].numel()).sum(-1) * slice_weight).sum())
                   for w in cells.weights)

    assert dropped.gain == pytest.approx(reference_read(ideal) / reference_read(dropped),
                                         rel=1e-3)  # (the gain sums |level|: tiny negatives)
    assert dropped.gain > 1 and errors[1] < 0.5 * errors[0]
