"""Every mapper's closed form agrees with a brute-force placement counter (tiny layers)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imcsim import ArrayConfig, LayerShape, get_mapper
from imcsim.mappers.placement import check_mapping

from bruteforce import count


@st.composite
def tiny_layers(draw) -> LayerShape:
    groups = draw(st.sampled_from([1, 1, 1, 2, 3]))
    cin = groups * draw(st.integers(1, 3))
    cout = groups * draw(st.integers(1, 3))
    k = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    dilation = (draw(st.sampled_from([1, 1, 2])), 1)
    padding = (draw(st.integers(0, 1)), draw(st.integers(0, 1)))
    eff = [d * (kk - 1) + 1 for d, kk in zip(dilation, k)]
    size = (
        draw(st.integers(max(1, eff[0] - 2 * padding[0]), 7)),
        draw(st.integers(max(1, eff[1] - 2 * padding[1]), 7)),
    )
    return LayerShape.conv2d(cin, cout, k, size, stride, padding, dilation, groups, name="t")


arrays = st.builds(
    ArrayConfig, rows=st.integers(4, 40), cols=st.integers(2, 24),
    weight_bits=st.just(2), cell_bits=st.sampled_from([1, 2]),
)
MAPPERS = ["im2col", "sdk", "sdk-unconstrained", "vw-sdk", "vw-sdk-ref", "sdk-rect", "best"]
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(layer=tiny_layers(), array=arrays)
def test_closed_form_equals_brute_force_placement(layer: LayerShape, array: ArrayConfig) -> None:
    for name in MAPPERS:
        m = get_mapper(name).map(layer, array)
        assert m.cycles == count(layer, array, *m.window, m.layout.tiling), name
        check_mapping(m)  # every closed-form count equals the explicit placement's


@SETTINGS
@given(layer=tiny_layers(), array=arrays)
def test_vw_sdk_is_the_true_minimum(layer: LayerShape, array: ArrayConfig) -> None:
    oh, ow = layer.output_size
    brute = [
        count(layer, array, a_h, a_w, "channel")
        for a_h in range(1, oh + 1) for a_w in range(1, ow + 1)
    ]
    best = min([c for c in brute if c is not None] + [count(layer, array, 1, 1, "element")])
    assert get_mapper("vw-sdk").map(layer, array).cycles == best


@SETTINGS
@given(layer=tiny_layers(), array=arrays)
def test_unconstrained_sdk_is_the_square_window_minimum(layer: LayerShape, array: ArrayConfig) -> None:
    oh, ow = layer.output_size
    brute = [
        count(layer, array, min(n, oh), min(n, ow), "element") for n in range(1, max(oh, ow) + 1)
    ]
    assert get_mapper("sdk-unconstrained").map(layer, array).cycles == min(brute)


@pytest.mark.parametrize("name", MAPPERS)
def test_depthwise_is_not_a_dense_conv_full_of_zeros(name: str) -> None:
    """A depthwise 3×3 conv packs channels block-diagonally: far fewer tiles than dense."""
    array = ArrayConfig(rows=64, cols=64)
    dw = LayerShape.conv2d(128, 128, 3, 6, padding=1, groups=128)
    dense = LayerShape.conv2d(128, 128, 3, 6, padding=1)
    m = get_mapper(name).map(dw, array)
    assert m.cycles == count(dw, array, *m.window, m.layout.tiling)
    assert m.cycles < get_mapper(name).map(dense, array).cycles
    assert m.weight_cells == m.window[0] * m.window[1] * dw.params


@SETTINGS
@given(layer=tiny_layers(), array=arrays)
def test_rectangular_sdk_is_the_element_tiled_minimum(layer: LayerShape, array: ArrayConfig) -> None:
    oh, ow = layer.output_size
    brute = [
        count(layer, array, a_h, a_w, "element")
        for a_h in range(1, oh + 1) for a_w in range(1, ow + 1)
    ]
    assert get_mapper("sdk-rect").map(layer, array).cycles == min(brute)
