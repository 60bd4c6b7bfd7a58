"""``imcsim accuracy`` / ``accuracy-sweep`` / ``train`` end to end, and their one-line errors."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from imcsim.zoo.checkpoints import save_checkpoint
from imcsim.zoo.models import build_model

from cli_helpers import run

BASE = ("accuracy", "--model", "resnet20", "--array", "128x128", "--mapper", "vw-sdk")


def test_accuracy_json_on_shipped_checkpoint(capsys: pytest.CaptureFixture[str]) -> None:
    res = run(capsys, *BASE, "--adc-bits", "6", "--format", "json", "--images", "100")
    assert res.code == 0, res.err
    data = res.json()
    assert 0 <= data["accuracy"] <= 1 and 0 <= data["float_accuracy"] <= 1
    assert data["float_accuracy"] > 0.9  # the shipped weights are trained
    assert data["adc_bits"] == 6 and data["array"] == "128x128" and data["images"] == 100
    assert "mnist5k" in data["data"] and data["cycles"] > 0
    # how the ADC range was calibrated, on how many images, and what clipped, per layer
    assert data["adc_calibration"] == "percentile:99.9" and data["calibration_images"] == 32
    assert 0 <= data["adc_clipped"] < 0.01 and len(data["adc_clipped_by_layer"]) == 22
    assert data["accuracy"] >= data["float_accuracy"] - 0.05  # 6-bit ADC, calibrated


def test_ideal_chip_equals_float(capsys: pytest.CaptureFixture[str]) -> None:
    res = run(capsys, *BASE, "--ideal", "--format", "json", "--images", "60")
    assert res.code == 0, res.err
    data = res.json()
    assert data["accuracy"] == data["float_accuracy"] and data["ideal"] is True


def test_sweep_accuracy_does_not_rise_as_adc_bits_drop(capsys: pytest.CaptureFixture[str]) -> None:
    res = run(capsys, "accuracy-sweep", "--array", "128x128", "--adc-bits", "8,3",
              "--noise", "0.5", "--images", "60", "--slicing", "none", "--format", "json",
              "--adc-calibration", "percentile,max", "--drift-time-s", "3.15e7")
    assert res.code == 0, res.err
    rows = res.json()["rows"]
    acc = {(r["varied"], r["value"], r["adc_calibration"], r["drift_compensation"]):
           r["accuracy"] for r in rows}
    ideal = acc["ideal", "-", "-", False]
    for method in ("percentile:99.9", "max"):
        assert ideal >= acc["adc_bits", 8, method, False] >= acc["adc_bits", 3, method, False]
        assert acc["adc_bits", 3, method, False] < ideal
    assert acc["noise_sigma", 0.5, "percentile:99.9", False] < ideal
    # a year of drift: compensation recovers what the decayed conductances lose
    year = {c: acc["drift_time_s", 3.15e7, "percentile:99.9", c] for c in (False, True)}
    assert year[True] >= year[False]
    assert all(r["calibration_images"] == 32 for r in rows if r["varied"] != "ideal")


def test_sweep_takes_the_sign_encoding(capsys: pytest.CaptureFixture[str]) -> None:
    """IR drop lowers both cells of a differential pair alike, so their difference keeps the
    weight; the offset encoding's cells lose part of the offset, which the digital offset
    subtraction does not see: at aihwkit's 0.35 ohm the offset chip falls to chance."""
    acc = {}
    for sign in ("offset", "differential"):
        res = run(capsys, "accuracy-sweep", "--array", "128x128", "--adc-bits", "", "--noise", "",
                  "--images", "20", "--sign", sign, "--wire-resistance-ohm", "0.35",
                  "--ir-drop-solver", "linear", "--format", "json")
        assert res.code == 0, res.err
        assert f"{sign} sign encoding" in res.json()["title"]
        acc[sign] = {r["varied"]: r["accuracy"] for r in res.json()["rows"]}
    assert acc["offset"]["wire_resistance_ohm"] < 0.5 * acc["offset"]["ideal"]
    assert acc["differential"]["wire_resistance_ohm"] > 0.9 * acc["differential"]["ideal"]
    bad = run(capsys, "accuracy-sweep", "--sign", "both", "--images", "5")
    assert bad.code == 2 and "sign" in bad.err and bad.err.count("\n") == 1


@pytest.mark.parametrize("args,needle", [
    (("--adc-bits", "0"), "adc_bits"),
    (("--noise", "-0.1"), "programming_noise"),
    (("--faults", "2"), "--faults"),
    (("--mapper", "nope"), "unknown mapper"),
    (("--slicing", "half"), "slicing"),
    (("--method", "magic"), "unknown method"),
    (("--adc-calibration", "mean"), "adc_calibration"),
    (("--adc-calibration", "percentile:120"), "percentile"),
    (("--drift-time-s", "5"), "drift_t0_s"),
    (("--chip", "isaac", "--wire-resistance-ohm", "1"), "cell_on_resistance_ohm"),
    (("--wire-resistance-ohm", "-1"), "wire_resistance_ohm"),
])
def test_bad_inputs_are_one_line_errors(capsys, args, needle) -> None:
    res = run(capsys, *BASE, "--images", "5", *args)
    assert res.code == 2
    assert needle in res.err and res.err.count("\n") == 1


def test_checkpoint_of_another_model_is_refused(capsys, tmp_path: Path) -> None:
    path = save_checkpoint(build_model("vgg-cifar"), tmp_path / "vgg.pt", model_name="vgg-cifar",
                           dataset="mnist5k", num_classes=10)
    res = run(capsys, *BASE, "--checkpoint", str(path), "--images", "5")
    assert res.code == 2 and "holds model 'vgg-cifar', not 'resnet20'" in res.err


def write_cifar(root: Path, n: int = 12) -> None:
    rng = np.random.default_rng(0)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                 b"labels": rng.integers(0, 10, n).tolist()}
        (folder / name).write_bytes(pickle.dumps(batch))


def test_cifar_data_dir_with_checkpoint(capsys, tmp_path: Path) -> None:
    write_cifar(tmp_path / "data")
    ckpt = save_checkpoint(build_model("resnet20"), tmp_path / "c.pt", model_name="resnet20",
                           dataset="cifar10", num_classes=10)
    res = run(capsys, *BASE, "--checkpoint", str(ckpt), "--data-dir", str(tmp_path / "data"),
              "--ideal", "--format", "json", "--images", "8")
    assert res.code == 0, res.err
    data = res.json()
    assert data["images"] == 8 and "cifar10" in data["data"]
    assert data["accuracy"] == data["float_accuracy"]
    empty = tmp_path / "empty"
    empty.mkdir()
    res = run(capsys, *BASE, "--checkpoint", str(ckpt), "--data-dir", str(empty), "--images", "4")
    assert res.code == 2 and "no CIFAR batch file" in res.err
    res = run(capsys, *BASE, "--data-dir", str(empty), "--images", "4")
    assert res.code == 2 and "--checkpoint" in res.err


def test_train_command_writes_a_loadable_checkpoint(capsys, tmp_path: Path) -> None:
    out = tmp_path / "r20.pt"
    res = run(capsys, "train", "--model", "resnet20", "--epochs", "1", "--train-images", "64",
              "--batch-size", "32", "--out", str(out), "--format", "json")
    assert res.code == 0, res.err
    data = res.json()
    assert data["steps"] == 2 and 0 <= data["float_accuracy"] <= 1 and out.exists()
    assert not Path(str(out) + ".state").exists()
    res = run(capsys, *BASE, "--checkpoint", str(out), "--ideal", "--images", "20",
              "--format", "json")
    assert res.code == 0 and res.json()["float_accuracy"] == res.json()["accuracy"]
    res = run(capsys, "train", "--model", "resnet20", "--data-dir", str(tmp_path), "--out",
              str(out))
    assert res.code == 2 and "no CIFAR batch file" in res.err
