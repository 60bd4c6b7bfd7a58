"""Pruned mapper: shape shrinking, row skipping against brute force and the pattern table."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imcsim import ArrayConfig, LayerShape, get_mapper
from imcsim.errors import MappingError
from imcsim.mappers.grid import GridLayout
from imcsim.mappers.placement import check_mapping
from imcsim.mappers.pruned import Pruned, shrink, skip_count

from bruteforce import patch


def brute_kept(layer: LayerShape, mask: np.ndarray, window: tuple[int, int], cols: int) -> list[int]:
    """Kept rows per column tile by enumerating every nonzero tap of every (copy, filter)."""
    (kh, kw), (sh, sw), (dh, dw) = layer.kernel_size, layer.stride, layer.dilation
    columns = [(oy, ox, f) for oy in range(window[0]) for ox in range(window[1])
               for f in range(layer.out_channels)]
    kept = []
    for start in range(0, len(columns), cols):
        rows = set()
        for oy, ox, f in columns[start:start + cols]:
            for c in range(layer.in_channels):
                for ty in range(kh):
                    for tx in range(kw):
                        if mask[f, c, ty, tx]:
                            rows.add((c, oy * sh + ty * dh, ox * sw + tx * dw))
        kept.append(len(rows))
    return kept


@st.composite
def masked_layers(draw):
    cin, cout = draw(st.integers(1, 4)), draw(st.integers(1, 5))
    k = draw(st.integers(1, 3))
    stride, dilation = draw(st.integers(1, 2)), draw(st.sampled_from([1, 1, 2]))
    size = draw(st.integers(dilation * (k - 1) + 1, 7))
    layer = LayerShape.conv2d(cin, cout, k, size, stride=stride, dilation=dilation,
                              padding=draw(st.integers(0, 1)))
    seed, density = draw(st.integers(0, 2**31)), draw(st.sampled_from([0.2, 0.5, 0.8, 1.0]))
    mask = np.random.default_rng(seed).random(layer.weight_shape) < density
    oh, ow = layer.output_size
    window = (draw(st.integers(1, oh)), draw(st.integers(1, ow)))
    array = ArrayConfig(rows=draw(st.integers(4, 40)), cols=draw(st.integers(2, 24)))
    return layer, mask, window, array


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(masked_layers())
def test_kept_rows_equal_brute_force_and_placement(case) -> None:
    layer, mask, window, array = case
    masked = layer.with_mask(mask)
    skip = skip_count(masked, array, window)
    assert skip.kept.tolist() == brute_kept(layer, mask, window, array.effective_cols)
    assert skip.rows == layer.in_channels * len(patch(layer, *window))
    # the explicit placement with row skipping holds exactly the kept rows of each column tile
    grid = GridLayout(tiling="element", window=window, channels_per_tile=1, filters_per_tile=1,
                      skip_zero_rows=True)
    tiles = grid.placement(masked, array).tiles
    column_tiles = [key for key, _ in itertools.groupby(t.cols.tobytes() for t in tiles)]
    per_col = [sum(len(t.rows) for t in tiles if t.cols.tobytes() == key) for key in column_tiles]
    assert per_col == [k for k in skip.kept.tolist() if k]  # an all-zero column tile has no tile
    assert len(tiles) == skip.tiles == sum(math.ceil(k / array.rows) for k in skip.kept)


@settings(max_examples=40, deadline=None)
@given(masked_layers())
def test_mapping_cycles_follow_the_skip_count(case) -> None:
    layer, mask, _, array = case
    mapping = Pruned().map(layer.with_mask(mask) if mask.any() else layer, array)
    check_mapping(mapping)  # closed-form counts = the explicit placement's
    skip = skip_count(shrink(mapping.layer).layer, array, mapping.window)
    assert mapping.cycles == mapping.windows * sum(math.ceil(k / array.rows) for k in skip.kept)
    assert mapping.skipped_rows == skip.skipped
    dense = get_mapper("sdk").map(layer, array)
    assert mapping.cycles <= dense.cycles  # pruning never makes the SDK mapping slower


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
@pytest.mark.parametrize(
    ("zeroed", "per_channel"),
    [
        ("corner", lambda p: 1),
        ("top", lambda p: p),
        ("top+left", lambda p: 2 * p - 1),
        ("top+left+right", lambda p: 3 * p - 2),
        ("centre only", lambda p: 4 * p - 4),
    ],
)
def test_pattern_table(n: int, zeroed: str, per_channel) -> None:
    """REFERENCES.md: rows skipped per channel of a 3×3 pattern in a P×P window."""
    pattern = np.ones((3, 3), dtype=bool)
    if zeroed == "corner":
        pattern[0, 0] = False
    if "top" in zeroed:
        pattern[0, :] = False
    if "left" in zeroed:
        pattern[:, 0] = False
    if "right" in zeroed:
        pattern[:, 2] = False
    if zeroed == "centre only":
        pattern[:] = False
        pattern[1, 1] = True
    cin, cout, p = 3, 4, n + 2
    layer = LayerShape.conv2d(cin, cout, 3, 8).with_mask(np.broadcast_to(pattern, (cout, cin, 3, 3)))
    array = ArrayConfig(rows=64, cols=512)  # one column tile holds all n² copies
    skip = skip_count(layer, array, (n, n))
    assert skip.skipped == cin * per_channel(p)
    assert skip.kept.tolist() == [cin * p * p - cin * per_channel(p)]


def test_single_column_tile_formula() -> None:
    """N_PW · ⌈(C_in·P² − S)/R⌉ · ⌈n²·C_out/C_eff⌉ when one column tile holds the window."""
    pattern = np.ones((3, 3), dtype=bool)
    pattern[0, :] = pattern[:, 0] = False  # two adjacent edges: 2P − 1 rows per channel
    layer = LayerShape.conv2d(16, 8, 3, 16, padding=1).with_mask(np.broadcast_to(pattern, (8, 16, 3, 3)))
    array = ArrayConfig(rows=128, cols=128)
    mapping = Pruned().map(layer, array)
    n = mapping.window[0]
    p = n + 2  # 3×3 kernel, stride 1
    assert mapping.window[0] == mapping.window[1]
    assert len({t.cols.tobytes() for t in mapping.placement.tiles}) == 1  # one column tile
    s = mapping.skipped_rows
    assert s == 16 * (2 * p - 1)
    expected = mapping.windows * math.ceil((16 * p * p - s) / 128) * math.ceil(n * n * 8 / 128)
    assert mapping.cycles == expected
    assert mapping.cycles < get_mapper("sdk").map(layer, array).cycles


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 40), st.integers(1, 40), st.sampled_from([1, 3]), st.integers(3, 12),
    st.integers(1, 2), st.sampled_from([16, 64, 100]), st.sampled_from([16, 64, 96]),
)
def test_dense_layers_map_as_the_dense_mappers(cin, cout, k, size, stride, rows, cols) -> None:
    layer = LayerShape.conv2d(cin, cout, k, size, stride=stride, padding=k // 2)
    array = ArrayConfig(rows=rows, cols=cols)
    for pruned, dense in (("pruned-sdk", "sdk"), ("pruned-im2col", "im2col")):
        got, ref = get_mapper(pruned).map(layer, array), get_mapper(dense).map(layer, array)
        assert (got.cycles, got.window, got.tiles) == (ref.cycles, ref.window, ref.tiles)
        assert got.skipped_rows == got.index_rows == 0


def test_unstructured_sparsity_without_empty_rows_saves_nothing() -> None:
    rng = np.random.default_rng(0)
    layer = LayerShape.conv2d(8, 16, 3, 12, padding=1)
    mask = rng.random(layer.weight_shape) < 0.5
    mask[0] = True  # filter 0 dense: every row of every column tile stays nonzero
    array = ArrayConfig(rows=64, cols=64)
    masked = layer.with_mask(mask)
    for name, dense in (("pruned-im2col", "im2col"), ("pruned-sdk", "sdk")):
        got = get_mapper(name).map(masked, array)
        assert got.skipped_rows == 0 and got.index_rows == 0
        assert got.cycles == get_mapper(dense).map(layer, array).cycles
        assert got.layer.nonzero_params == int(mask.sum())


def test_shrink_drops_zero_filters_and_channels() -> None:
    layer = LayerShape.conv2d(6, 10, 3, 8, padding=1, name="c")
    mask = np.ones(layer.weight_shape, dtype=bool)
    mask[[1, 4, 7]] = False
    mask[:, [0, 5]] = False
    shrunk = shrink(layer.with_mask(mask))
    small = shrunk.layer
    assert (small.out_channels, small.in_channels, small.name) == (7, 4, "c")
    assert small.nonzero_params == int(mask.sum())
    assert shrunk.filters.tolist() == [0, 2, 3, 5, 6, 8, 9]
    assert shrunk.channels.tolist() == [1, 2, 3, 4]
    mapping = Pruned(base="im2col", name="pruned-im2col").map(layer.with_mask(mask), ArrayConfig(rows=32, cols=32))
    assert mapping.layer.in_channels == 6 and mapping.skipped_rows == 0
    placed = mapping.placement.tiles
    assert {int(c) for t in placed for c in t.rows[:, 0]} == {1, 2, 3, 4}
    assert {int(f) for t in placed for f in t.cols[:, 1]} == {0, 2, 3, 5, 6, 8, 9}
    assert mapping.cycles == get_mapper("im2col").map(small.model_copy(update={"nonzero": None}),
                                                       ArrayConfig(rows=32, cols=32)).cycles


def test_index_rows_rule() -> None:
    """Kept rows of a column tile that skipped any row need index logic; others do not."""
    layer = LayerShape.conv2d(2, 4, 3, 6)
    mask = np.ones(layer.weight_shape, dtype=bool)
    mask[:2, 0, 0, 0] = False  # corner of channel 0 zero in filters 0, 1 (column tile 0 only)
    skip = skip_count(layer.with_mask(mask), ArrayConfig(rows=64, cols=2), (1, 1))
    assert skip.kept.tolist() == [17, 18]
    assert (skip.skipped, skip.index_rows) == (1, 17)


def test_all_zero_layer_is_an_error() -> None:
    layer = LayerShape.conv2d(2, 2, 3, 5, name="dead")
    with pytest.raises(MappingError, match="'dead'.*every weight is zero"):
        Pruned().map(layer.with_mask(np.zeros(layer.weight_shape, dtype=bool)), ArrayConfig(rows=8, cols=8))
