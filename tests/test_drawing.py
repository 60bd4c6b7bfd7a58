"""Mapping pictures and charts: what the tile views say against brute force, every chart
rendered headless and checked as an image, and one golden picture of a tiny layout.

Update the golden image after an intended change of the drawing with
``python -m pytest tests/test_drawing.py --update-goldens`` (the switch of every golden
file, ``tests/conftest.py``).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import numpy as np
import pytest

from imcsim import ArrayConfig, LayerShape, get_mapper, load_chip, map_network
from imcsim.cost import estimate_network
from imcsim.errors import ConfigError
from imcsim.mappers import Placement, Tile
from imcsim.placement_view import (
    PRUNED,
    WEIGHT,
    column_tiles,
    dropped_outputs,
    skipped_rows,
    tile_split,
    tile_views,
)
from imcsim.plotting import (
    as_records,
    plot_compression,
    plot_energy_breakdown,
    plot_layer_cycles,
    plot_pareto,
    plot_placement,
    plot_placements,
    plot_speedup,
    plot_tile_cycles,
    plot_utilization,
)
from imcsim.tables import load_layer_table

matplotlib.use("Agg")  # headless

GOLDEN = Path(__file__).parent / "golden" / "placement_tiny.png"
LAYER = LayerShape.conv2d(3, 4, 3, 6, padding=1, name="tiny")


def masked(layer: LayerShape, density: float, seed: int) -> LayerShape:
    return layer.with_mask(np.random.default_rng(seed).random(layer.weight_shape) < density)


def brute_cells(mapping) -> dict[tuple[int, int, int], tuple[int, int, int]]:
    """(tile, word line, weight column) → (filter, copy, tap) of every nonzero weight, found
    by walking every weight of every window copy and looking its row and column up."""
    layer, placement = mapping.layer, mapping.placement
    (kh, kw), (sh, sw), (dh, dw) = layer.kernel_size, layer.stride, layer.dilation
    mask = layer.nonzero_mask()
    rows = {}
    cols = {}
    for t, tile in enumerate(placement.tiles):
        for i, row in enumerate(map(tuple, tile.rows)):
            rows.setdefault(row, []).append((t, i))
        for j, col in enumerate(map(tuple, tile.cols)):
            cols.setdefault(col, []).append((t, j))
    found = {}
    a_h, a_w = placement.window
    for copy in range(a_h * a_w):
        oy, ox = divmod(copy, a_w)
        for f in range(layer.out_channels):
            g = f // layer.out_per_group
            for c_local in range(layer.in_per_group):
                c = g * layer.in_per_group + c_local
                for ty in range(kh):
                    for tx in range(kw):
                        if mask is not None and not mask[f, c_local, ty, tx]:
                            continue
                        row = (c, oy * sh + ty * dh, ox * sw + tx * dw)
                        hits = {t for t, _ in rows.get(row, [])} & {t for t, _ in cols.get((copy, f), [])}
                        assert len(hits) == 1, (row, copy, f)
                        t = hits.pop()
                        i = next(i for tt, i in rows[row] if tt == t)
                        j = next(j for tt, j in cols[(copy, f)] if tt == t)
                        found[(t, i, j)] = (f, copy, ty * kw + tx)
    return found


CASES = [
    ("im2col", LAYER, ArrayConfig(rows=16, cols=8)),
    ("sdk", LAYER, ArrayConfig(rows=48, cols=24)),
    ("vw-sdk", LAYER, ArrayConfig(rows=32, cols=32)),
    ("sdk-rect", LayerShape.conv2d(4, 6, 3, 7, stride=2, groups=2, name="g"), ArrayConfig(rows=24, cols=16)),
    ("pruned-sdk", masked(LAYER, 0.3, 1), ArrayConfig(rows=40, cols=16)),
    ("vw-sdk", LAYER, ArrayConfig(rows=32, cols=32, weight_bits=8, cell_bits=2)),
]


@pytest.mark.parametrize(("mapper", "layer", "array"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_views_put_every_weight_where_brute_force_finds_it(mapper, layer, array) -> None:
    mapping = get_mapper(mapper).map(layer, array)
    expected = brute_cells(mapping)
    cpw = array.cols_per_weight
    seen = {}
    for view in tile_views(mapping.placement):
        for i, x in zip(*np.nonzero(view.kind == WEIGHT)):
            if x % cpw == 0:
                seen[(view.index, int(i), int(x) // cpw)] = (
                    int(view.filter[i, x]), int(view.copy[i, x]), int(view.tap[i, x]))
        assert (view.kind[:, : view.used_cols] != 0).any()
    assert seen == expected
    assert len(seen) == mapping.weight_cells // cpw  # every nonzero weight of every copy once
    assert sum(tile_split(mapping)) == mapping.tiles


def test_skipped_rows_and_dropped_filters_match_the_pruned_mapper() -> None:
    mask = np.random.default_rng(3).random(LAYER.weight_shape) < 0.25
    mask[1] = False  # an all-zero filter is dropped
    layer = LAYER.with_mask(mask)
    mapping = get_mapper("pruned-sdk").map(layer, ArrayConfig(rows=40, cols=16))
    placement = mapping.placement
    groups = column_tiles(placement)
    assert sum(len(skipped_rows(placement, g)) for g in groups) == mapping.skipped_rows > 0
    views = list(tile_views(placement))
    assert sum(int(v.skipped_before.sum()) for v in views) == mapping.skipped_rows
    assert dropped_outputs(placement) == placement.copies * 1
    assert any((v.kind == PRUNED).any() for v in views)  # zeros stored on kept rows
    dense = get_mapper("sdk").map(LAYER, ArrayConfig(rows=40, cols=16))
    assert all(len(skipped_rows(dense.placement, g)) == 0 for g in column_tiles(dense.placement))


def test_a_hand_built_placement_is_viewed_from_its_tiles() -> None:
    layer = LayerShape.conv2d(2, 3, 3, 5, name="c")
    rows = np.array([(c, dy, dx) for c in range(2) for dy in range(3) for dx in range(3)])
    rows = rows[np.random.default_rng(0).permutation(len(rows))]
    cols = np.column_stack([np.zeros(3, dtype=int), np.arange(3)])
    tiles = [Tile(rows=rows[i::3], cols=cols) for i in range(3)]
    mapping = Placement.from_tiles(layer, ArrayConfig(rows=8, cols=4), (1, 1), tiles).to_mapping("hand")
    assert tile_split(mapping) == [3]
    assert brute_cells(mapping) == {
        (v.index, int(i), int(j)): (int(v.filter[i, j]), int(v.copy[i, j]), int(v.tap[i, j]))
        for v in tile_views(mapping.placement) for i, j in zip(*np.nonzero(v.kind == WEIGHT))}
    with pytest.raises(ConfigError, match="tile 3 out of range"):
        plot_placement(mapping, tile=3)


# -- charts as images -------------------------------------------------------------------

def png_of(ax, path: Path, dpi: int = 80) -> np.ndarray:
    ax.figure.savefig(path, dpi=dpi)
    plt.close(ax.figure)
    return mpimg.imread(path)[..., :3]


def assert_drawn(image: np.ndarray, min_size: tuple[int, int] = (200, 200)) -> None:
    """Big enough, and not blank: ink on a real share of it, in many colours."""
    assert image.shape[0] >= min_size[0] and image.shape[1] >= min_size[1], image.shape
    ink = (image < 0.9).any(axis=-1)
    assert 0.02 < ink.mean() < 0.95, ink.mean()
    colours = np.unique((image[ink] * 15).round().astype(int), axis=0)
    assert len(colours) >= 6, len(colours)


@pytest.fixture(scope="module")
def reports():
    chip = load_chip("default")
    layers = load_layer_table("cnn8")
    out = []
    for array in ("64x64", "256x256"):
        rows, cols = map(int, array.split("x"))
        sized = chip.model_copy(update={"array": chip.array.model_copy(update={"rows": rows, "cols": cols})})
        for mapper in ("im2col", "vw-sdk"):
            out.append(estimate_network(map_network(layers, mapper, sized, model="cnn8"), sized))
    return out


def accuracy_records(reports) -> list[dict]:
    records = as_records([r for r in reports if r.chip.array.rows == 256])
    methods = [("dense", 1.0, 0.95), ("pattern", 0.5, 0.9)]
    return [{**r, "compression": comp, "keep": keep, "accuracy": acc - 0.1 * i,
             "float_accuracy": acc, "adc_bits": 6}
            for i, r in enumerate(records) for comp, keep, acc in methods]


@pytest.mark.parametrize("chart", ["utilization", "speedup", "layer_cycles", "tile_cycles",
                                   "energy_breakdown", "compression", "pareto"])
def test_every_chart_renders_headless(reports, chart: str, tmp_path: Path) -> None:
    plots = {"utilization": (plot_utilization, reports), "speedup": (plot_speedup, reports),
             "layer_cycles": (plot_layer_cycles, reports[:2]),
             "tile_cycles": (plot_tile_cycles, reports[:2]),
             "energy_breakdown": (plot_energy_breakdown, reports),
             "compression": (plot_compression, accuracy_records(reports)),
             "pareto": (plot_pareto, accuracy_records(reports))}
    plot, data = plots[chart]
    ax = plot(data)
    assert ax.get_title()
    assert_drawn(png_of(ax, tmp_path / f"{chart}.png"))


def test_tile_cycles_bars_add_up_to_the_cycles(reports) -> None:
    ax = plot_tile_cycles(reports[:1])
    widths = sum(p.get_width() for p in ax.patches)
    plt.close(ax.figure)
    assert widths == reports[0].cycles


@pytest.mark.parametrize("size", [8, 64, 512])
def test_placement_pictures_from_8x8_to_512x512(size: int, tmp_path: Path) -> None:
    layer = LayerShape.conv2d(16, 16, 3, 32, padding=1, name="l")
    mapping = get_mapper("vw-sdk").map(layer, ArrayConfig(rows=size, cols=size))
    ax = plot_placement(mapping, tile=0, cols_per_adc=4)
    title = ax.get_title()
    assert f"on {size}x{size}" in title and "utilization" in title
    assert f"ADC shared by 4 bit lines ({size // 4} per array)" in title
    assert ("averaged in" in title) == (size == 512)  # more cells than pixels: say so
    texts = [t.get_text() for t in ax.texts]
    if size == 8:
        assert any(t.startswith("f") and "\nt" in t for t in texts)  # taps labelled
    assert_drawn(png_of(ax, tmp_path / "p.png"), (300, 300))


def test_side_by_side_and_all_tiles(tmp_path: Path) -> None:
    array = ArrayConfig(rows=32, cols=32)
    mappings = [get_mapper(m).map(LAYER, array) for m in ("im2col", "sdk", "vw-sdk")]
    axes = plot_placements(mappings, title="three")
    assert len(axes) == 3 and axes[0].figure.legends
    assert_drawn(png_of(axes[0], tmp_path / "three.png"), (300, 800))


def test_golden_tiny_layout(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    mapping = get_mapper("pruned-sdk").map(masked(LAYER, 0.35, 5), ArrayConfig(rows=24, cols=16))
    fig = plt.figure(figsize=(1.6, 1.6), dpi=40)
    ax = fig.add_axes((0, 0, 1, 1))
    plot_placement(mapping, ax, annotate=False)
    fig.savefig(tmp_path / "tiny.png", dpi=40)
    plt.close(fig)
    image = mpimg.imread(tmp_path / "tiny.png")[..., :3]
    if request.config.getoption("--update-goldens"):
        GOLDEN.write_bytes((tmp_path / "tiny.png").read_bytes())
    golden = mpimg.imread(GOLDEN)[..., :3]
    assert image.shape == golden.shape == (64, 64, 3)
    diff = np.abs(image - golden).max(axis=-1)
    assert diff.mean() < 0.02 and (diff > 0.25).mean() < 0.02, (
        "placement drawing changed; if intended: pytest tests/test_drawing.py --update-goldens")
