"""N-tap kernel patterns, their row skipping and index overhead, fixed-rank factors, and the
``compare`` knobs of the DATE 2025 reproduction."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imcsim import ArrayConfig, LayerShape, get_mapper
from imcsim.cost import estimate, with_cost
from imcsim.hardware import ChipConfig
from imcsim.mappers.placement import check_mapping
from imcsim.mappers.pruned import index_bits

from cli_helpers import run

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from imcsim.nn.compress.kernel_patterns import (  # noqa: E402
    assign_patterns,
    kernel_pattern_prune,
    pattern_library,
)
from imcsim.studies.variants import Knobs, compressed  # noqa: E402

SHARES = ("kernel", "channel", "layer")


def _weights(shape: tuple[int, ...], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape)


@pytest.mark.parametrize("library", ["patdnn", "pconv", "random"])
@pytest.mark.parametrize("taps", range(1, 10))
@pytest.mark.parametrize("share", SHARES)
def test_every_kernel_keeps_exactly_n_taps(library: str, taps: int, share: str) -> None:
    weight = _weights((6, 5, 3, 3), taps)
    lib = pattern_library(library, taps, (3, 3), weights=[weight], size=8, seed=taps)
    assert lib.shape[1:] == (3, 3) and 1 <= len(lib) <= 8
    assert (lib.reshape(len(lib), -1).sum(axis=1) == taps).all()
    assert len({p.tobytes() for p in lib}) == len(lib)  # distinct patterns
    mask = assign_patterns(weight, lib, share)
    assert (mask.reshape(-1, 9).sum(axis=1) == taps).all()
    if library != "random":
        assert lib[:, 1, 1].all()  # PatDNN and PConv keep the centre
    kernels = mask.reshape(6, 5, 9)
    if share == "channel":
        assert (kernels == kernels[:1]).all()
    if share == "layer":
        assert (kernels == kernels[:1, :1]).all()


def test_libraries_and_assignment_follow_their_definitions() -> None:
    t_shapes = {(1, 3, 4, 5), (1, 3, 4, 7), (1, 4, 5, 7), (3, 4, 5, 7)}  # PConv 4-tap patterns
    assert {tuple(np.flatnonzero(p)) for p in pattern_library("pconv", 4, (3, 3))} == t_shapes
    # PatDNN: the most frequent top-n pattern of the weights heads the library
    weight = np.zeros((4, 3, 3, 3))
    weight[..., 0, :] = 5.0  # top row dominates every kernel -> centre + top row
    lib = pattern_library("patdnn", 4, (3, 3), weights=[weight + 0.01 * _weights(weight.shape, 1)])
    assert set(np.flatnonzero(lib[0])) == {0, 1, 2, 4}
    # each kernel takes the pattern that keeps the most energy; sharing sums the energy first
    lib = np.zeros((2, 3, 3), dtype=bool)
    lib[0, 0, 0] = lib[1, 2, 2] = True
    w = np.zeros((2, 1, 3, 3))
    w[0, 0, 0, 0], w[1, 0, 2, 2], w[1, 0, 0, 0] = 3.0, 2.0, 1.0
    assert assign_patterns(w, lib, "kernel")[:, 0, 0, 0].tolist() == [True, False]
    assert assign_patterns(w, lib, "layer")[:, 0, 0, 0].tolist() == [True, True]


def test_model_pruning_skips_small_kernels_and_excluded_layers() -> None:
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Conv2d(8, 8, 3), nn.Conv2d(8, 4, 1),
                          nn.Flatten(), nn.Linear(4, 2))
    pruned = kernel_pattern_prune(model, 4, library="pconv", exclude=["0"])
    assert [r.name for r in pruned.layers] == ["1"]
    layer = pruned.model[1]
    assert (layer.weight_mask.reshape(-1, 9).sum(1) == 4).all()
    assert not hasattr(pruned.model[0], "weight_mask") and not hasattr(pruned.model[2], "weight_mask")
    by_keep = kernel_pattern_prune(model, keep=0.5)  # floor(0.5 * 9) = 4 taps
    assert {r.kept / r.params for r in by_keep.layers} == {4 / 9}


def _brute_cycles(layer: LayerShape, mask: np.ndarray, n: int, array: ArrayConfig) -> int:
    """Cycles of an n×n window with row skipping, by enumerating every nonzero tap."""
    (kh, kw), (sh, sw) = layer.kernel_size, layer.stride
    oh, ow = layer.output_size
    a_h, a_w = min(n, oh), min(n, ow)
    columns = [(oy, ox, f) for oy in range(a_h) for ox in range(a_w)
               for f in range(layer.out_channels)]
    tiles = 0
    for start in range(0, len(columns), array.effective_cols):
        rows = {(c, oy * sh + ty, ox * sw + tx) for oy, ox, f in columns[start:start + array.effective_cols]
                for c in range(layer.in_channels) for ty in range(kh) for tx in range(kw)
                if mask[f, c, ty, tx]}
        tiles += math.ceil(len(rows) / array.rows)
    return math.ceil(oh / a_h) * math.ceil(ow / a_w) * tiles


@st.composite
def pattern_layers(draw):
    cin, cout = draw(st.integers(1, 4)), draw(st.integers(1, 5))
    layer = LayerShape.conv2d(cin, cout, 3, draw(st.integers(3, 7)), stride=draw(st.integers(1, 2)),
                              padding=draw(st.integers(0, 1)))
    taps, share = draw(st.integers(1, 8)), draw(st.sampled_from(SHARES))
    library = draw(st.sampled_from(["patdnn", "pconv", "random"]))
    weight = _weights(layer.weight_shape, draw(st.integers(0, 2**16)))
    lib = pattern_library(library, taps, (3, 3), weights=[weight], seed=taps)
    array = ArrayConfig(rows=draw(st.integers(9, 40)), cols=draw(st.integers(2, 24)))
    return layer, assign_patterns(weight, lib, share), array


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pattern_layers())
def test_row_skipping_on_patterns_equals_brute_force(case) -> None:
    layer, mask, array = case
    masked = layer.with_mask(mask)
    constrained = get_mapper("pruned-sdk").map(masked, array)
    free = get_mapper("pruned-sdk-unconstrained").map(masked, array)
    for mapping in (constrained, free):
        check_mapping(mapping)  # closed-form counts = the explicit placement's
        assert mapping.window[0] == mapping.window[1] or min(mapping.window) == min(layer.output_size)
        assert mapping.cycles == _brute_cycles(layer, mask, max(mapping.window), array)
    # without the im2col tile budget the best window over every n is found
    every_n = range(1, max(layer.output_size) + 1)
    assert free.cycles == min(_brute_cycles(layer, mask, n, array) for n in every_n)
    assert free.cycles <= constrained.cycles
    assert get_mapper("pruned-sdk-unconstrained").map(layer, array).cycles <= \
        get_mapper("sdk-unconstrained").map(layer, array).cycles


def test_index_bits_per_sharing() -> None:
    layer = LayerShape.conv2d(4, 6, 3, 8, padding=1)
    weight = _weights(layer.weight_shape, 3)
    lib = pattern_library("pconv", 4, (3, 3))  # 4 patterns -> 2 bits per unit
    bits = {s: index_bits(layer.with_mask(assign_patterns(weight, lib, s))) for s in SHARES}
    used = len({p.tobytes() for p in assign_patterns(weight, lib, "kernel").reshape(-1, 9)})
    assert bits["layer"] == 0
    assert bits["kernel"] == 24 * math.ceil(math.log2(used))
    channel_used = len({p.tobytes() for p in assign_patterns(weight, lib, "channel")[0].reshape(-1, 9)})
    assert bits["channel"] == (4 * math.ceil(math.log2(channel_used)) if channel_used > 1 else 0)
    assert index_bits(layer) == 0


def test_index_overhead_is_charged_in_the_cost_breakdown() -> None:
    array = ArrayConfig(rows=64, cols=64, weight_bits=2, cell_bits=1)
    chip = with_cost(ChipConfig(array=array), "isaac")
    layer = LayerShape.conv2d(16, 16, 3, 8, padding=1)
    lib = pattern_library("pconv", 4, (3, 3))
    weight = _weights(layer.weight_shape, 0)
    idx = chip.cost.index
    for share in ("kernel", "layer"):
        mapping = get_mapper("pruned-sdk").map(layer.with_mask(assign_patterns(weight, lib, share)), array)
        cost = estimate(mapping, chip)
        assert cost.area_breakdown_um2["pattern_index"] == pytest.approx(mapping.index_bits * idx.bit_area_um2)
        assert cost.energy_breakdown_pj["pattern_index"] == pytest.approx(
            mapping.windows * mapping.index_bits * idx.bit_energy_pj)
        assert cost.area_breakdown_um2["index"] == pytest.approx(mapping.index_rows * idx.area_um2)
        assert cost.energy_breakdown_pj["index"] == pytest.approx(
            mapping.windows * mapping.index_rows * chip.precision.input_slices * idx.energy_pj)
    per_kernel = get_mapper("pruned-sdk").map(layer.with_mask(assign_patterns(weight, lib, "kernel")), array)
    per_layer = get_mapper("pruned-sdk").map(layer.with_mask(assign_patterns(weight, lib, "layer")), array)
    assert per_kernel.index_bits > 0 and per_layer.index_bits == 0 and per_layer.index_rows > 0
    dense = estimate(get_mapper("sdk").map(layer, array), chip)
    assert dense.energy_breakdown_pj["pattern_index"] == dense.area_breakdown_um2["index"] == 0


def test_fixed_rank_factor_shapes_and_dense_layers() -> None:
    from imcsim.nn.compress.modules import LowRankConv2d
    from imcsim.zoo.models import build_model

    model = build_model("resnet20", num_classes=10, seed=0)
    for groups in (1, 2):
        transform = "low-rank" if groups == 1 else "group-low-rank"
        net = compressed(model, transform, 1.0, groups, "input",
                         Knobs(rank=8, dense_layers="stem-1x1-fc"))
        modules = dict(net.named_modules())
        factored = {n: m for n, m in modules.items() if isinstance(m, LowRankConv2d)}
        for name, m in factored.items():
            assert m.r.out_channels == groups * 8 and m.l.in_channels == groups * 8, name
            assert m.r.kernel_size == (3, 3) and m.l.kernel_size == (1, 1)
            assert m.r.groups == groups and m.l.out_channels == modules[name].l.out_channels
        assert isinstance(modules["conv1"], nn.Conv2d) and isinstance(modules["fc"], nn.Linear)
        assert isinstance(modules["layer2.0.shortcut.0"], nn.Conv2d)
        # 16-channel layers have full rank 16 per group of 8 inputs... a rank 8 reaches it
        # for groups=2 (min(16, 8*9)=16 > 8: factorised); every 3x3 conv after the stem is
        assert len(factored) == 18


def test_compare_acceptance_command(capsys) -> None:
    out = run(capsys, "compare", "--model", "wrn16-4", "--array", "128x128", "--weight-bits", "2",
              "--cell-bits", "1", "--rank", "4", "--taps", "4", "--r-mapper", "sdk-unconstrained",
              "--schedule", "pipelined", "--methods", "low-rank-sdk,pruned-kernel-pattern-sdk",
              "--format", "json")
    assert out.code == 0, out.err
    low, pattern = out.json()["methods"]
    assert {"method", "params", "cycles", "latency_cycles", "tiles", "active_arrays",
            "index_bits"} <= set(low)
    assert low["mapper"] == "sdk-unconstrained" and pattern["method"] == "pruned-kernel-pattern-sdk"
    assert 2 * low["cycles"] <= pattern["cycles"] and 2 * low["latency_cycles"] <= pattern["latency_cycles"]
    assert low["index_bits"] == 0 and pattern["index_bits"] > 0
    assert low["active_arrays"] > 0 and low["tiles"] >= low["active_arrays"]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--taps", "0"), "taps"),
        (("--rank", "0"), "rank"),
        (("--pattern-library", "magic"), "pattern_library"),
        (("--pattern-share", "row"), "pattern_share"),
        (("--r-mapper", "magic"), "unknown mapper"),
        (("--r-mapper", "low-rank-sdk"), "maps factor pairs"),
        (("--pruned-mapper", "sdk"), "pruned mapper"),
        (("--dense-layers", "most"), "dense_layers"),
    ],
)
def test_compare_knob_errors_are_one_line(capsys, args, needle) -> None:
    out = run(capsys, "compare", "--model", "resnet20", "--array", "64x64", *args)
    assert out.code == 2 and out.out == ""
    assert len(out.err.strip().splitlines()) == 1 and needle in out.err


@pytest.mark.parametrize(
    ("methods", "option", "value"),
    [
        ("dense-sdk,pruned-channel-sdk", "--taps", "4"),
        ("low-rank-sdk", "--pattern-library", "pconv"),
        ("pruned-kernel-pattern-sdk", "--rank", "4"),
        ("pruned-channel-sdk", "--r-mapper", "sdk-unconstrained"),
        ("low-rank-sdk,dense-sdk", "--pruned-mapper", "pruned-sdk-unconstrained"),
    ],
)
def test_compare_refuses_a_knob_no_chosen_method_uses(capsys, methods, option, value) -> None:
    out = run(capsys, "compare", "-m", "resnet20", "--array", "64x64", "--methods", methods,
              option, value)
    assert out.code == 2 and out.err.count("\n") == 1 and option in out.err, out.err
