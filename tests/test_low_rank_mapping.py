"""Low-rank mapper: factor cycles are the dense mappers' counts; Theorem 2 numerically."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imcsim import ArrayConfig, LayerShape, get_mapper, map_network
from imcsim.errors import ConfigError, MappingError
from imcsim.mappers import LowRank
from imcsim.mappers.low_rank import block_diagonal
from imcsim.mappers.placement import tile_weights

BASES = ("sdk", "vw-sdk", "sdk-unconstrained")


def pair(cin: int, rank: int, cout: int, k: int, size: int, stride: int = 1, pad: int = 0,
         groups: int = 1) -> tuple[LayerShape, LayerShape]:
    r = LayerShape.conv2d(cin, groups * rank, k, size, stride=stride, padding=pad, groups=groups,
                          name="c.r").model_copy(update={"factor_of": "c", "factor_role": "R"})
    l_layer = LayerShape.conv2d(groups * rank, cout, 1, r.output_size, name="c.l").model_copy(
        update={"factor_of": "c", "factor_role": "L"})
    return r, l_layer


@st.composite
def factor_pairs(draw):
    groups = draw(st.sampled_from([1, 1, 2]))
    cin = groups * draw(st.integers(1, 12))
    k = draw(st.sampled_from([1, 3]))
    r, l_layer = pair(cin, draw(st.integers(1, 8)), draw(st.integers(1, 40)), k,
                      draw(st.integers(k, 16)), draw(st.integers(1, 2)), draw(st.integers(0, 1)), groups)
    array = ArrayConfig(rows=draw(st.sampled_from([16, 32, 64, 128])),
                        cols=draw(st.sampled_from([16, 32, 64, 128])))
    return r, l_layer, array


@settings(max_examples=40, deadline=None)
@given(factor_pairs(), st.sampled_from(BASES))
def test_factor_cycles_are_dense_counts_of_equivalent_shapes(case, base) -> None:
    r, l_layer, array = case
    dense = get_mapper(base)
    for mode in ("block-diagonal", "im2col", "independent"):
        r_map, l_map = LowRank(base=base, l_mode=mode).map_pair(r, l_layer, array)
        assert r_map.cycles == dense.map(r, array).cycles
        if mode == "im2col":
            expected = get_mapper("im2col").map(l_layer, array).cycles
        elif mode == "independent":
            expected = dense.map(l_layer, array).cycles
        else:  # I_N ⊗ L: a 1×1 conv N·k → N·C_out over the grid of windows, im2col
            (a_h, a_w), (oh, ow) = r_map.window, r.output_size
            n = a_h * a_w
            equivalent = LayerShape.conv2d(
                n * l_layer.in_channels, n * l_layer.out_channels, 1,
                (math.ceil(oh / a_h), math.ceil(ow / a_w)),
            )
            expected = get_mapper("im2col").map(equivalent, array).cycles
            assert l_map.window == r_map.window
        assert l_map.cycles == expected


def test_block_diagonal_placement_is_kron_identity_l() -> None:
    rng = np.random.default_rng(1)
    r, l_layer = pair(4, 3, 5, 3, 8, pad=1)
    l_w = rng.standard_normal(l_layer.weight_shape)
    window, array = (2, 3), ArrayConfig(rows=8, cols=7)  # small array: several tiles
    mapping = block_diagonal(l_layer, array, window, "block-diagonal")
    n, k, c_out = 6, 3, 5
    full = np.zeros((n * k, n * c_out))
    for tile in mapping.placement.tiles:
        rows = (tile.rows[:, 1] * window[1] + tile.rows[:, 2]) * k + tile.rows[:, 0]
        cols = tile.cols[:, 0] * c_out + tile.cols[:, 1]
        full[np.ix_(rows, cols)] += tile_weights(l_layer, window, tile, l_w)
    assert np.array_equal(full, np.kron(np.eye(n), l_w[:, :, 0, 0].T))
    assert len(mapping.placement.tiles) == mapping.tiles == math.ceil(n * k / 8) * math.ceil(n * c_out / 7)


def test_pipelined_latency_is_the_slower_factor() -> None:
    r, l_layer = pair(16, 4, 32, 3, 16, pad=1)
    array = ArrayConfig(rows=64, cols=64)
    seq = LowRank(schedule="sequential").map_pair(r, l_layer, array)
    pipe = LowRank(schedule="pipelined").map_pair(r, l_layer, array)
    assert [m.cycles for m in seq] == [m.cycles for m in pipe]
    assert sum(m.latency_cycles for m in seq) == seq[0].cycles + seq[1].cycles
    assert sum(m.latency_cycles for m in pipe) == max(seq[0].cycles, seq[1].cycles)
    assert [m.role for m in pipe] == ["R", "L"] and pipe[1].overlap_cycles == min(
        seq[0].cycles, seq[1].cycles)


def test_map_network_pairs_factors_and_maps_other_layers_with_base() -> None:
    r, l_layer = pair(8, 2, 16, 3, 10, pad=1)
    plain = LayerShape.conv2d(16, 16, 3, 10, padding=1, name="plain")
    array = ArrayConfig(rows=64, cols=64)
    report = map_network([plain, r, l_layer], "low-rank-sdk", array)
    sdk = get_mapper("sdk")
    assert report.mappings[0].cycles == sdk.map(plain, array).cycles
    r_map, l_map = LowRank().map_pair(r, l_layer, array)
    assert report.mappings[1].cycles == r_map.cycles and report.mappings[2].cycles == l_map.cycles
    assert report.mappings[2].window == report.mappings[1].window
    assert [m.role for m in report.mappings] == ["layer", "R", "L"]
    assert [m.scheme for m in report.mappings] == ["sdk", "sdk", "block-diagonal"]
    # the same layers through a mapper that is not a PairMapper map one by one
    assert map_network([plain, r, l_layer], "sdk", array).mappings[2].cycles == sdk.map(l_layer, array).cycles


def test_bad_options_and_pairs() -> None:
    with pytest.raises(ConfigError, match="l_mode"):
        LowRank(l_mode="diagonal")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="schedule"):
        LowRank(schedule="parallel")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="unknown mapper"):
        LowRank(base="nope")
    r, _ = pair(4, 2, 8, 3, 6)
    wrong = LayerShape.conv2d(3, 8, 1, r.output_size, name="c.l")
    with pytest.raises(MappingError, match="1x1"):
        LowRank().map_pair(r, wrong, ArrayConfig(rows=32, cols=32))


@pytest.mark.parametrize(("groups", "split"), [(1, "input"), (2, "input"), (2, "output")])
def test_theorem_2_mapped_factors_compute_the_factorised_layer(groups: int, split: str) -> None:
    """D(SDK(W)) = (I_N ⊗ L)·SDK(R): explicit array matrices against the torch layers."""
    torch = pytest.importorskip("torch")
    from imcsim.mappers.geometry import candidates
    from imcsim.mappers.grid import grid_mapping
    from imcsim.nn.compress import factorize_conv

    torch.manual_seed(0)
    conv = torch.nn.Conv2d(4, 6, 3, padding=1).double()
    module, _ = factorize_conv(conv, 2, groups=groups, split=split)
    r, l_layer = pair(4, 2, 6, 3, 6, pad=1, groups=groups if split == "input" else 1)
    if split == "output":
        l_layer = LayerShape.conv2d(groups * 2, 6, 1, r.output_size, groups=groups)
        r = LayerShape.conv2d(4, groups * 2, 3, 6, padding=1)
    w_layer = LayerShape.conv2d(4, 6, 3, 6, padding=1)
    window, array = (2, 3), ArrayConfig(rows=512, cols=512)

    def matrix(layer: LayerShape, weight: torch.Tensor):
        c = candidates(layer, array, np.array([window[0]]), np.array([window[1]]), "element")
        (tile,) = grid_mapping(layer, array, "sdk", "element", c.pick(0)).placement.tiles
        return tile, tile_weights(layer, window, tile, weight.detach().numpy())

    r_tile, m_r = matrix(r, module.r.weight)
    l_tile, m_l = matrix(l_layer, module.l.weight)
    w_tile, m_w = matrix(w_layer, module.reconstructed_weight())
    x = torch.randn(1, 4, 6, 6, dtype=torch.float64)
    expected = (module(x) - module.l.bias[None, :, None, None]).detach().numpy()[0]
    xp = np.pad(x.numpy()[0], ((0, 0), (1, 1), (1, 1)))
    for wy, wx in np.ndindex(3, 2):
        y0, x0 = wy * window[0], wx * window[1]
        v = xp[r_tile.rows[:, 0], y0 + r_tile.rows[:, 1], x0 + r_tile.rows[:, 2]]
        y_r = v @ m_r  # columns (copy, j)
        col_of = {(int(cp), int(j)): i for i, (cp, j) in enumerate(r_tile.cols)}
        u = np.array([y_r[col_of[(int(dy) * window[1] + int(dx), int(j))]] for j, dy, dx in l_tile.rows])
        out = u @ m_l  # columns (copy, f)
        oy, ox = np.divmod(l_tile.cols[:, 0], window[1])
        np.testing.assert_allclose(out, expected[l_tile.cols[:, 1], y0 + oy, x0 + ox], atol=1e-10)
        v_w = xp[w_tile.rows[:, 0], y0 + w_tile.rows[:, 1], x0 + w_tile.rows[:, 2]]
        w_order = np.lexsort((w_tile.cols[:, 1], w_tile.cols[:, 0]))
        l_order = np.lexsort((l_tile.cols[:, 1], l_tile.cols[:, 0]))
        assert np.array_equal(w_tile.cols[w_order], l_tile.cols[l_order])
        np.testing.assert_allclose((v_w @ m_w)[w_order], out[l_order], atol=1e-10)
