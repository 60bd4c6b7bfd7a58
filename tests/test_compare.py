"""``imcsim compare`` / ``compare_methods``: every method at the same kept fraction of weights."""

from __future__ import annotations

import numpy as np
import pytest

from imcsim import ArrayConfig, LayerShape, get_mapper, map_network
from imcsim.compression import METHODS
from imcsim.errors import ConfigError
from imcsim.studies.compare import CompareOptions, compare_methods, compare_workloads

from cli_helpers import run


@pytest.fixture(scope="module")
def resnet20_256():
    pytest.importorskip("torch")
    return compare_methods("resnet20", "256x256", keep=0.5)


def test_records_names_params_and_speedups(resnet20_256) -> None:
    result = resnet20_256
    by = {m.method: m for m in result.methods}
    assert list(by) == list(METHODS)
    for needle in ("im2col", "sdk", "prun", "low-rank", "group-low-rank"):
        assert any(needle in name for name in by)
    assert by["dense-im2col"].latency_cycles == result.im2col_cycles and by["dense-im2col"].speedup == 1
    for m in result.methods:
        assert m.speedup == pytest.approx(result.im2col_cycles / m.latency_cycles)
        if m.transform == "dense":
            assert m.params == result.dense_params
        else:  # every compressed method keeps about half of the weights, never more
            assert 0.45 <= m.keep <= 0.5 and m.params == round(m.keep * result.dense_params)
    # unstructured sparsity empties no row: no skipping, the dense mappers' cycles
    assert by["pruned-unstructured-sdk"].skipped_rows == 0
    assert by["pruned-unstructured-sdk"].cycles == by["dense-sdk"].cycles
    assert by["pruned-unstructured-im2col"].cycles == by["dense-im2col"].cycles
    assert by["pruned-pattern-sdk"].skipped_rows > 0 and by["pruned-pattern-sdk"].index_rows > 0
    assert "Kaiming" in result.weights or "trained" in result.weights


def test_cli_json(capsys) -> None:
    pytest.importorskip("torch")
    out = run(capsys, "compare", "--model", "resnet20", "--array", "256x256", "--keep", "0.5",
              "--format", "json", "--methods", "dense-im2col,low-rank-sdk,pruned-pattern-sdk")
    assert out.code == 0, out.err
    data = out.json()
    assert [m["method"] for m in data["methods"]] == ["dense-im2col", "low-rank-sdk", "pruned-pattern-sdk"]
    for record in data["methods"]:
        assert {"method", "params", "cycles", "speedup", "utilization"} <= set(record)
    assert data["methods"][0]["speedup"] == 1.0 and data["keep"] == 0.5


def test_cli_table_and_pipelined(capsys) -> None:
    pytest.importorskip("torch")
    out = run(capsys, "compare", "--model", "resnet20", "--array", "128x128", "--methods",
              "low-rank-sdk,group-low-rank-sdk", "--schedule", "pipelined", "--groups", "4")
    assert out.code == 0, out.err
    assert "group-low-rank-sdk" in out.out and "pipelined" in out.out


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--keep", "0"), "keep"),
        (("--keep", "1.5"), "keep"),
        (("--methods", "magic"), "unknown method 'magic'"),
        (("--split", "rows"), "split"),
        (("--l-mode", "x"), "l_mode"),
        (("--array", "12"), "ROWSxCOLS"),
        (("--format", "csv"), "csv"),
    ],
)
def test_cli_errors_are_one_line(capsys, args, needle) -> None:
    base = {"--array": "64x64"}
    argv = ["compare", "--model", "resnet20"]
    for key, value in base.items():
        if key not in args:
            argv += [key, value]
    out = run(capsys, *argv, *args)
    assert out.code == 2 and out.out == ""
    assert len(out.err.strip().splitlines()) == 1 and needle in out.err


def test_compare_workloads_without_torch() -> None:
    """The core maps ready-made layer lists: dense vs a channel-pruned copy of one layer."""
    dense = LayerShape.conv2d(16, 16, 3, 8, padding=1, name="c")
    mask = np.ones(dense.weight_shape, dtype=bool)
    mask[:, ::2] = False
    workloads = {"dense": [dense], "channel": [dense.with_mask(mask)]}
    options = CompareOptions(keep=0.5, methods=("dense-sdk", "pruned-channel-sdk"))
    array = ArrayConfig(rows=64, cols=64)
    result = compare_workloads(workloads, array, options, model="one")
    sdk, pruned = result.methods
    assert sdk.cycles == get_mapper("sdk").map(dense, array).cycles
    assert pruned.params == dense.params // 2 and pruned.keep == 0.5
    assert pruned.cycles == get_mapper("sdk").map(LayerShape.conv2d(8, 16, 3, 8, padding=1), array).cycles
    assert result.im2col_cycles == map_network([dense], "im2col", array).cycles
    assert str(result).splitlines()[0].startswith("one on 64x64")


def test_module_input() -> None:
    torch = pytest.importorskip("torch")
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(),
                                torch.nn.Conv2d(8, 8, 3, padding=1))
    result = compare_methods(model, ArrayConfig(rows=32, cols=32), 0.5,
                             example_input=torch.zeros(1, 3, 8, 8),
                             methods=("dense-im2col", "low-rank-vw-sdk"))
    assert result.model == "Sequential" and result.methods[1].keep <= 0.5
    with pytest.raises(ConfigError, match="example_input"):
        compare_methods(model, "32x32", 0.5)
