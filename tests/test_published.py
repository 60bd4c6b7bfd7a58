"""The published cycle counts of REFERENCES.md, computed by the mappers."""

from __future__ import annotations

import pytest

from imcsim import ArrayConfig, LayerShape, get_mapper, load_layer_table, map_network

# VW-SDK (Rhe, Moon, Ko, DATE 2022): 512x512 array, 1-bit columns, padding 0, stride 1.
# image, C_in, C_out, im2col, SDK, VW-SDK, best parallel window (P_w, P_h) or None
VW_SDK_TABLE = [
    (224, 3, 64, 49284, 12321, 6216, (10, 3)),
    (224, 64, 64, 98568, 24642, 24642, (4, 4)),
    (112, 64, 128, 24200, 6050, 6050, (4, 4)),
    (112, 128, 128, 36300, 36300, 12100, (4, 4)),
    (56, 128, 256, 8748, 8748, 5832, (4, 3)),
    (56, 256, 256, 14580, 14580, 10206, (4, 3)),
    (28, 256, 512, 3380, 3380, 3380, None),
    (28, 512, 512, 6084, 6084, 6084, None),
    (14, 512, 512, 1296, 1296, 1296, None),
]

# VWC-SDK journal extension, CNN-8 on a 256-row x 512-column array, full-width windows.
CNN8_TABLE = [
    (18, 3, 24, 32, 64, 256),
    (18, 3, 32, 32, 80, 512),
    (9, 3, 32, 64, 28, 98),
    (7, 3, 64, 64, 30, 75),
    (5, 5, 64, 256, 7, 7),
]


@pytest.mark.parametrize(("image", "cin", "cout", "im2col", "sdk", "vw", "pw"), VW_SDK_TABLE)
def test_vw_sdk_paper_table(image, cin, cout, im2col, sdk, vw, pw) -> None:
    layer = LayerShape.conv2d(in_channels=cin, out_channels=cout, kernel_size=3, input_size=image)
    array = ArrayConfig(rows=512, cols=512)
    assert get_mapper("im2col").map(layer, array).cycles == im2col
    assert get_mapper("sdk").map(layer, array).cycles == sdk
    mapping = get_mapper("vw-sdk").map(layer, array)
    assert mapping.cycles == vw
    if pw is not None:  # the paper's window ties with ours: same cycles by the paper's formula
        p_w, p_h = pw
        a_h, a_w = p_h - 2, p_w - 2
        ic_t, oc_t = 512 // (p_h * p_w), 512 // (a_h * a_w)
        o = image - 2
        paper_cc = -(-o // a_h) * -(-o // a_w) * -(-cin // ic_t) * -(-cout // oc_t)
        assert paper_cc == vw == mapping.cycles


@pytest.mark.parametrize(("image", "k", "cin", "cout", "vw", "im2col"), CNN8_TABLE)
def test_vwc_sdk_cnn8_table(image, k, cin, cout, vw, im2col) -> None:
    layer = LayerShape.conv2d(cin, cout, k, image)
    array = ArrayConfig(rows=256, cols=512)
    assert get_mapper("vw-sdk").map(layer, array).cycles == vw
    assert get_mapper("im2col").map(layer, array).cycles == im2col


def test_im2col_wins_where_the_paper_says_so() -> None:
    array = ArrayConfig(rows=512, cols=512)
    for image in (28, 14):
        mapping = get_mapper("vw-sdk").map(LayerShape.conv2d(512, 512, 3, image), array)
        assert mapping.scheme == "im2col" and mapping.window == (1, 1)


def test_shipped_tables_reproduce_the_papers() -> None:
    vgg = map_network(load_layer_table("vgg13"), "vw-sdk", ArrayConfig(rows=512, cols=512))
    expected = [row[5] for row in VW_SDK_TABLE] + [VW_SDK_TABLE[-1][5]]
    assert [m.cycles for m in vgg.mappings] == expected
    cnn8 = map_network(load_layer_table("cnn8"), "vw-sdk", ArrayConfig(rows=256, cols=512))
    assert [m.cycles for m in cnn8.mappings] == [row[4] for row in CNN8_TABLE]


def test_reference_bounds_never_take_a_full_width_window() -> None:
    layer = LayerShape.conv2d(24, 32, 3, 18)
    mapping = get_mapper("vw-sdk-ref").map(layer, ArrayConfig(rows=256, cols=512))
    assert max(mapping.window) <= 18 - 3
