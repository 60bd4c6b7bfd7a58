"""The non-ideality protocol: the shipped models sit on it, a new one plugs in with one
registration, and every cell knows its physical word line and bit line."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from imcsim import ArrayConfig, ChipConfig, LayerShape, PrecisionConfig, map_network
from imcsim.nn import CrossbarConfig, nonideal, to_crossbar
from imcsim.nn.crossbar import CrossbarConv2d
from imcsim.nn.crossbar_config import resolve_settings


class Wrap(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 6, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


CHIP = ChipConfig(array=ArrayConfig(rows=16, cols=32, cell_bits=2, weight_bits=4),
                  precision=PrecisionConfig(input_bits=4, dac_bits=1, adc_bits=8))
LAYER = LayerShape.conv2d(4, 6, 3, 6, padding=1, name="conv")


def converted(mapper: str, config: CrossbarConfig) -> nn.Module:
    torch.manual_seed(0)
    return to_crossbar(Wrap().eval(), map_network([LAYER], mapper, CHIP), config)


def test_settings_select_the_registered_models_in_order() -> None:
    s = resolve_settings(CHIP, CrossbarConfig(programming_noise=0.1, read_noise=0.2,
                                              stuck_off_rate=0.01))
    kinds = [type(n) for n in nonideal.build_nonidealities(s)]
    assert kinds == [nonideal.ProgrammingNoise, nonideal.StuckAt, nonideal.ReadNoise]
    assert nonideal.build_nonidealities(resolve_settings(CHIP, CrossbarConfig(ideal=True))) == ()
    with pytest.raises(ValueError, match="already registered"):
        nonideal.register_nonideality("read_noise", lambda s: None)


@pytest.mark.parametrize("mapper", ["im2col", "sdk", "vw-sdk"])
def test_cells_carry_their_placement_positions(mapper: str) -> None:
    layer = next(m for m in converted(mapper, CrossbarConfig()).modules()
                 if isinstance(m, CrossbarConv2d))
    real = layer.weight_index < LAYER.params
    rows, cols = layer.row_position[real], layer.col_position[real]
    assert (layer.row_position[~real] == -1).all()
    assert int(rows.min()) >= 0 and int(rows.max()) < CHIP.array.rows
    assert int(cols.min()) >= 0 and int(cols.max()) < CHIP.array.effective_cols
    mapping = map_network([LAYER], mapper, CHIP).mappings[0]
    _, row_of, _ = mapping.placement.locate()
    assert sorted(rows.tolist()) == sorted(row_of[row_of >= 0].tolist())


def test_a_new_nonideality_plugs_in_with_one_registration(monkeypatch) -> None:
    """A 'dead word line 0' model, written outside the package, reaches the MVM."""

    class DeadFirstWordLine(nonideal.NonIdeality):
        name = "dead_word_line"

        def program(self, cells, ctx):
            return torch.where(ctx.row == 0, torch.zeros_like(cells), cells)

    x = torch.rand(2, 4, 6, 6)
    config = CrossbarConfig(adc_bits=8)
    before = converted("im2col", config)(x)
    monkeypatch.setitem(nonideal._REGISTRY, "dead_word_line", lambda s: DeadFirstWordLine())
    after = converted("im2col", config)(x)
    assert not torch.allclose(before, after)
    # the same model on the ideal chip stays exact: ideal settings build no non-ideality
    ideal = converted("im2col", CrossbarConfig(ideal=True))
    torch.manual_seed(0)
    assert torch.allclose(ideal(x), Wrap().eval()(x), atol=1e-5)


def test_read_noise_grows_with_sigma_and_is_seeded() -> None:
    x = torch.rand(3, 4, 6, 6)
    clean = converted("sdk", CrossbarConfig(adc_bits=12))(x)
    errors = []
    for sigma in (0.02, 0.2):
        cfg = CrossbarConfig(adc_bits=12, read_noise=sigma, seed=5)
        first, second = converted("sdk", cfg)(x), converted("sdk", cfg)(x)
        assert torch.equal(first, second)  # same seed, same draws
        errors.append(float((first - clean).abs().mean()))
    assert 0 < errors[0] < errors[1]
    assert np.isfinite(errors).all()
