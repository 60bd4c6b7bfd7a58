"""The compiled window searches equal the vectorised closed forms they replace, and the
batched call equals one ``map`` per pair."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imcsim import ArrayConfig, LayerShape, get_mapper
from imcsim.errors import ConfigError
from imcsim.mappers.geometry import argmin_cycles, candidates, window_grid
from imcsim.mappers.im2col import im2col_candidate
from imcsim.mappers.sdk import square_windows
from imcsim.mappers.search import SEARCHES, map_batch, search


def reference(kind: str, layer: LayerShape, array: ArrayConfig):
    """The numpy twin: ``geometry.candidates`` + ``argmin_cycles`` (the readable forms)."""
    base = im2col_candidate(layer, array)
    if kind == "im2col":
        return base.pick(0), "element"
    if kind in ("sdk", "sdk-unconstrained"):
        c = square_windows(layer, array)
        if kind == "sdk":
            within = ((c.row_tiles <= base.row_tiles) & (c.col_tiles <= base.col_tiles)
                      & (c.group_sets <= base.group_sets))
            c = type(c)(**{**c.__dict__, "valid": c.valid & within})
        return c.pick(argmin_cycles(c)), "element"
    if kind == "sdk-rect":
        c = candidates(layer, array, *window_grid(layer.output_size), "element")
        return c.pick(argmin_cycles(c)), "element"
    oh, ow = layer.output_size
    limit = (max(1, oh - 1), max(1, ow - 1)) if kind == "vw-sdk-ref" else (oh, ow)
    c = candidates(layer, array, *window_grid(layer.output_size, limit), "channel")
    i = argmin_cycles(c)
    if not c.valid[i] or base.cycles[0] < c.cycles[i]:
        return base.pick(0), "element"
    return c.pick(i), "channel"


@st.composite
def cases(draw):
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    k = (draw(st.sampled_from([1, 3, 5])), draw(st.sampled_from([1, 3])))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 2)))
    dilation = (draw(st.sampled_from([1, 1, 2, 3])), draw(st.sampled_from([1, 2])))
    eff = [d * (kk - 1) + 1 for d, kk in zip(dilation, k)]
    layer = LayerShape.conv2d(
        groups * draw(st.integers(1, 40)), groups * draw(st.integers(1, 40)), k,
        (draw(st.integers(eff[0], 30)), draw(st.integers(eff[1], 30))), stride, 0, dilation,
        groups)
    array = ArrayConfig(rows=draw(st.sampled_from([8, 20, 64, 128, 512])),
                        cols=draw(st.sampled_from([8, 16, 64, 256])),
                        weight_bits=draw(st.sampled_from([1, 2, 8])), cell_bits=1)
    return layer, array


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_compiled_search_equals_the_vectorised_twin(case) -> None:
    layer, array = case
    for kind in SEARCHES[:-1]:
        got, tiling, _ = search(kind, layer, array)
        want, want_tiling = reference(kind, layer, array)
        assert (got, tiling) == (want, want_tiling), kind


def test_best_names_the_winner_and_matches_the_slow_minimum() -> None:
    layer, array = LayerShape.conv2d(64, 64, 3, 56), ArrayConfig(rows=512, cols=512)
    c, _, winner = search("best", layer, array)
    costs = {name: get_mapper(name).map(layer, array).cycles for name in SEARCHES[:5]}
    assert c.cycles == min(costs.values()) == costs[winner]
    assert get_mapper("best").map(layer, array).scheme == winner


def test_batch_equals_one_map_per_pair() -> None:
    layers = [LayerShape.conv2d(3, 64, 3, 224), LayerShape.conv2d(128, 128, 3, 28, padding=1),
              LayerShape.conv2d(32, 32, 3, 14, groups=32)]
    arrays = [ArrayConfig(rows=r, cols=c) for r in (64, 256) for c in (128, 512)]
    for mapper in SEARCHES:
        batch = map_batch(layers, arrays, mapper)
        for i, layer in enumerate(layers):
            for j, array in enumerate(arrays):
                m = get_mapper(mapper).map(layer, array)
                assert (batch.cycles[i, j], batch.tiles[i, j]) == (m.cycles, m.tiles), mapper
                assert tuple(batch.windows[i, j]) == m.window


def test_batch_refuses_mappers_without_a_search() -> None:
    with pytest.raises(ConfigError, match="pruned-sdk"):
        map_batch([LayerShape.conv2d(3, 4, 3, 8)], [ArrayConfig(rows=8, cols=8)], "pruned-sdk")
    assert np.array_equal(map_batch([LayerShape.conv2d(3, 4, 3, 8)], [ArrayConfig(rows=8, cols=8)],
                                    "im2col").cycles, [[36 * 4]])
