"""A mapper written outside the package, from a hand-built placement, reaches every
consumer unchanged: ``map_network``, ``estimate_network``, ``simulate_network`` and
``to_crossbar`` (the issue's acceptance test for the placement contract)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from imcsim import ArrayConfig, LayerShape, estimate_network, load_chip, map_network
from imcsim.errors import MappingError
from imcsim.mappers import Placement, Tile, mapper_names, register_mapper
from imcsim.nn import CrossbarConfig, extract_layers, simulate_network, to_crossbar


class InterleavedIm2col:
    """im2col's rows (every kernel tap of every input channel) shuffled and dealt
    round-robin into ⌈rows/R⌉ tiles, filters cut every C_eff columns: the same tile count
    as im2col, but each tile sums a different subset of the reduction."""

    name = "interleaved-im2col"

    def __init__(self, seed: int = 7) -> None:
        self.seed = seed

    def map(self, layer: LayerShape, array: ArrayConfig) -> object:
        rng = np.random.default_rng(self.seed)
        (kh, kw), (dh, dw) = layer.kernel_size, layer.dilation
        taps = [(ty * dh, tx * dw) for ty in range(kh) for tx in range(kw)]
        tiles = []
        for g in range(layer.groups):
            channels = range(g * layer.in_per_group, (g + 1) * layer.in_per_group)
            rows = np.array([(c, dy, dx) for c in channels for dy, dx in taps])
            rows = rows[rng.permutation(len(rows))]
            n_row = math.ceil(len(rows) / array.rows)
            filters = np.arange(g * layer.out_per_group, (g + 1) * layer.out_per_group)
            for start in range(0, len(filters), array.effective_cols):
                cols = np.column_stack([np.zeros_like(filters), filters])[start:start + array.effective_cols]
                tiles += [Tile(rows=rows[i::n_row], cols=cols) for i in range(n_row)]
        return Placement.from_tiles(layer, array, (1, 1), tiles).to_mapping(mapper=self.name)


@pytest.fixture(scope="module", autouse=True)
def registered() -> None:
    if InterleavedIm2col.name not in mapper_names():
        register_mapper(InterleavedIm2col.name, InterleavedIm2col)


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 12, 3, stride=2, padding=1, groups=2)
        self.fc = nn.Linear(12 * 4 * 4, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv2(torch.relu(self.conv1(x))))
        return self.fc(x.flatten(1))


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    model, x = Net().eval(), torch.randn(4, 3, 8, 8)
    chip = load_chip("default").model_copy(update={"array": ArrayConfig(
        rows=16, cols=16, cell_bits=2, weight_bits=8)})
    layers = extract_layers(model, x[:1]).layers
    return model, x, chip, layers


def test_cycles_are_windows_times_the_tiles_it_built(setup) -> None:
    _, _, chip, layers = setup
    report = map_network(layers, InterleavedIm2col.name, chip)
    im2col = map_network(layers, "im2col", chip)
    for m, ref in zip(report.mappings, im2col.mappings):
        assert m.mapper == InterleavedIm2col.name and m.window == (1, 1)
        assert m.cycles == m.windows * len(m.placement.tiles)
        assert (m.tiles, m.windows) == (ref.tiles, ref.windows)  # same tile count as im2col


def test_cost_and_cycle_simulator_read_the_placement(setup) -> None:
    model, x, chip, layers = setup
    report = map_network(layers, InterleavedIm2col.name, chip)
    costed = estimate_network(report, chip)
    assert costed.total()["energy_pj"] > 0 and costed.total()["latency_ns"] > 0
    sim = simulate_network(model, report, x, chip, skip_zero_slices=False).total()
    assert sim["cycles_no_skip"] == report.cycles * chip.precision.input_slices


def test_functional_simulation_follows_its_partial_sums(setup) -> None:
    model, x, chip, layers = setup
    report = map_network(layers, InterleavedIm2col.name, chip)
    ideal = to_crossbar(model, report, CrossbarConfig(ideal=True))
    assert (ideal(x) - model(x)).abs().max().item() <= 1e-5
    low = CrossbarConfig(adc_bits=4)
    baseline = map_network(layers, "im2col", chip)
    with torch.no_grad():
        ours, theirs = to_crossbar(model, report, low)(x), to_crossbar(model, baseline, low)(x)
    assert not torch.allclose(ours, theirs)  # same weights, other partial sums per ADC read


def test_a_placement_that_misses_or_repeats_a_weight_is_refused() -> None:
    layer = LayerShape.conv2d(2, 3, 3, 5, name="c")
    array = ArrayConfig(rows=32, cols=8)
    rows = np.array([(c, dy, dx) for c in range(2) for dy in range(3) for dx in range(3)])
    cols = np.column_stack([np.zeros(3, dtype=int), np.arange(3)])
    Placement.from_tiles(layer, array, (1, 1), [Tile(rows=rows, cols=cols)])  # complete: fine
    with pytest.raises(MappingError, match="'c'.*misses 3"):
        Placement.from_tiles(layer, array, (1, 1), [Tile(rows=rows[1:], cols=cols)])
    with pytest.raises(MappingError, match="more than once"):
        Placement.from_tiles(layer, array, (1, 1), [Tile(rows=rows, cols=cols)] * 2)
    with pytest.raises(MappingError, match="rows x"):
        Placement.from_tiles(layer, ArrayConfig(rows=8, cols=8), (1, 1), [Tile(rows=rows, cols=cols)])
    with pytest.raises(MappingError, match="filter outside"):
        Placement.from_tiles(layer, array, (1, 1), [Tile(rows=rows, cols=cols + [0, 1])])
