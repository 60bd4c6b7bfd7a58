"""``--data``: the data a workload is calibrated, fine-tuned, searched and evaluated on.

* a built-in name: ``mnist5k`` (bundled), ``cifar10``/``cifar100`` (python batches in
  ``--data-dir``);
* an ``.npz`` or ``.pt`` file with ``x`` (N, …) float32 and ``y`` (N,) int64, optional
  ``x_test``/``y_test`` (else a seeded 80/20 split);
* an ``.npy`` of token ids (N, T) for a language model (targets are the tokens);
* an image folder, one subfolder per class (read with Pillow, RGB in [0, 1], one size);
* ``FILE.py:FACTORY`` returning a torch ``Dataset``/``DataLoader`` of (x, y) or a
  (train, test) pair of them.

Everything is read into tensors (``imcsim.zoo.checkpoints.Dataset``) and checked up front:
sizes, dtypes, shapes against the example input, labels against the model's outputs,
token ids against its vocabulary — one line naming the culprit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from imcsim.errors import ConfigError
from imcsim.zoo.checkpoints import Dataset

__all__ = ["BUILTIN_DATA", "IMAGE_SUFFIXES", "TEST_FRACTION", "check_data", "load_dataset_spec"]

BUILTIN_DATA = ("mnist5k", "cifar10", "cifar100")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
TEST_FRACTION = 0.2
"""Share of the examples a seeded split sets aside for testing."""


def _split(x: torch.Tensor, y: torch.Tensor, seed: int) -> tuple[torch.Tensor, ...]:
    if len(x) < 2:
        raise ConfigError(f"--data: {len(x)} example(s); a train/test split needs at least 2")
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    n_test = max(1, int(round(len(x) * TEST_FRACTION)))
    test, train = order[:n_test], order[n_test:]
    return x[train], y[train], x[test], y[test]


def _tensor(value: Any, key: str, where: str) -> torch.Tensor:
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            raise ConfigError(f"--data {where}: {key} holds Python objects, not numbers")
        return torch.from_numpy(np.ascontiguousarray(value))
    if isinstance(value, torch.Tensor):
        return value
    raise ConfigError(f"--data {where}: {key} is a {type(value).__name__}, not an array")


def _arrays(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as f:
            raw = {k: f[k] for k in f.files}
    else:
        raw = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(raw, dict):
            raise ConfigError(f"--data {path.name}: expected a dict with x and y")
    for key in ("x", "y"):
        if key not in raw:
            raise ConfigError(f"--data {path.name}: no array {key!r} (has {', '.join(raw) or 'none'})")
    if ("x_test" in raw) != ("y_test" in raw):
        raise ConfigError(f"--data {path.name}: x_test and y_test go together")
    return {k: _tensor(v, k, path.name) for k, v in raw.items() if k in ("x", "y", "x_test", "y_test")}


def _from_arrays(path: Path, seed: int) -> Dataset:
    a = _arrays(path)
    for x, y in (("x", "y"), ("x_test", "y_test")):
        if x in a and (a[y].dim() < 1 or len(a[x]) != len(a[y])):
            raise ConfigError(f"--data {path.name}: {x} has {len(a[x])} rows, {y} has "
                              f"{len(a[y]) if a[y].dim() else 0}")
    if "x_test" in a:
        parts = a["x"], a["y"], a["x_test"], a["y_test"]
    else:
        parts = _split(a["x"], a["y"], seed)
    return Dataset(path.name, *parts, num_classes=0,
                   description=f"{path.name}: {len(parts[0])} train / {len(parts[2])} test")


def _tokens(path: Path, seed: int) -> Dataset:
    tokens = torch.from_numpy(np.load(path, allow_pickle=False))
    if tokens.dim() != 2 or tokens.is_floating_point() or tokens.shape[1] < 2:
        raise ConfigError(f"--data {path.name}: token ids must be an integer array (N, T) with "
                          f"T >= 2 (got {tokens.dtype} {tuple(tokens.shape)})")
    tokens = tokens.long()
    parts = _split(tokens, tokens, seed)
    return Dataset(path.name, *parts, num_classes=0,
                   description=f"{path.name}: {len(parts[0])} train / {len(parts[2])} test "
                   f"sequences of {tokens.shape[1]} tokens")


def _folder(path: Path, seed: int) -> Dataset:
    from PIL import Image

    classes = sorted(p for p in path.iterdir() if p.is_dir())
    files = [(f, i) for i, c in enumerate(classes) for f in sorted(c.iterdir())
             if f.suffix.lower() in IMAGE_SUFFIXES]
    if not files:
        raise ConfigError(f"--data {path}: no images (expected one subfolder per class holding "
                          f"{', '.join(IMAGE_SUFFIXES)} files)")
    images = []
    for file, _ in files:
        with Image.open(file) as img:
            arr = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
        if images and arr.shape != images[0].shape:
            raise ConfigError(f"--data {file}: {arr.shape[1]}x{arr.shape[0]} pixels, the first "
                              f"image has {images[0].shape[1]}x{images[0].shape[0]}")
        images.append(arr)
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()
    y = torch.tensor([label for _, label in files], dtype=torch.int64)
    parts = _split(x, y, seed)
    names = ", ".join(c.name for c in classes)
    return Dataset(path.name, *parts, num_classes=len(classes),
                   description=f"{path.name}/ ({names}): {len(parts[0])} train / "
                   f"{len(parts[2])} test images")


def _materialize(data: Any, where: str) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = [], []
    for item in data:
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise ConfigError(f"--data {where}: items must be (x, y) pairs")
        x, y = (torch.as_tensor(v) for v in item)
        batched = isinstance(data, torch.utils.data.DataLoader)
        xs.append(x if batched else x.unsqueeze(0))
        ys.append(y.reshape(-1) if batched else y.reshape(1))
    if not xs:
        raise ConfigError(f"--data {where}: the dataset is empty")
    return torch.cat(xs), torch.cat(ys)


def _factory(spec: str, seed: int) -> Dataset:
    from imcsim.zoo.user_models import _load_module

    target, _, func = spec.rpartition(":")
    try:
        made = getattr(_load_module(target), func)()
    except Exception as exc:  # noqa: BLE001 - any failure of user code is one line
        raise ConfigError(f"--data {spec}: {type(exc).__name__}: {' '.join(str(exc).split())}") from None
    if isinstance(made, tuple) and len(made) == 2 and not isinstance(made[0], torch.Tensor):
        (x, y), (xt, yt) = _materialize(made[0], spec), _materialize(made[1], spec)
        parts = x, y, xt, yt
    else:
        parts = _split(*_materialize(made, spec), seed)
    return Dataset(spec, *parts, num_classes=0,
                   description=f"{spec}: {len(parts[0])} train / {len(parts[2])} test")


def load_dataset_spec(spec: str, *, model_name: str, data_dir: Path | None, example: Any,
                      seed: int = 0) -> Dataset:
    """The tensors ``--data spec`` names (see the module docstring); unchecked."""
    from imcsim.zoo.checkpoints import load_data, mnist_as_cifar
    from imcsim.zoo.models import MODELS

    if spec in BUILTIN_DATA:
        if model_name in MODELS:
            return load_data(model_name, spec, data_dir)
        from imcsim.zoo.data import DATASETS, load_dataset

        x, y = load_dataset(spec, "train", data_dir)
        xt, yt = load_dataset(spec, "test", data_dir)
        if spec == "mnist5k" and tuple(getattr(example, "shape", ()))[1:] == (3, 32, 32):
            x, xt = mnist_as_cifar(x), mnist_as_cifar(xt)
        return Dataset(spec, x, y, xt, yt, DATASETS[spec].num_classes, spec)
    path = Path(spec)
    if path.is_dir():
        return _folder(path, seed)
    if path.suffix in (".npz", ".pt", ".pth", ".npy"):
        if not path.is_file():
            raise ConfigError(f"--data {spec!r} does not exist")
        return _tokens(path, seed) if path.suffix == ".npy" else _from_arrays(path, seed)
    if ":" in spec and spec.rpartition(":")[0]:
        return _factory(spec, seed)
    raise ConfigError(f"--data {spec!r}: not a built-in ({', '.join(BUILTIN_DATA)}), an .npz/.pt/"
                      ".npy file, an image folder or FILE.py:FACTORY")


def check_data(data: Dataset, example: torch.Tensor, *, outputs: int | None,
               vocab: int | None, tokens: bool, labels: bool) -> None:
    """Sizes, dtypes, shapes, label and token ranges, before any work (one-line errors)."""
    where = f"--data {data.name}"
    for part, x, y in (("train", data.train_images, data.train_labels),
                       ("test", data.test_images, data.test_labels)):
        if len(x) == 0:
            raise ConfigError(f"{where}: the {part} split is empty")
        if (x.dim() != example.dim()) if tokens else (tuple(x.shape[1:]) != tuple(example.shape[1:])):
            raise ConfigError(f"{where}: {part} x has shape {tuple(x.shape)}, the model's input "
                              f"is (N, {', '.join(map(str, example.shape[1:]))})")
        if x.is_floating_point() != example.is_floating_point():
            raise ConfigError(f"{where}: {part} x has dtype {x.dtype}, the model takes "
                              f"{example.dtype}")
        if x.is_floating_point() and not torch.isfinite(x).all():
            raise ConfigError(f"{where}: {part} x holds inf or nan")
        if tokens and vocab is not None and (x.min() < 0 or x.max() >= vocab):
            bad = int(x.max()) if x.max() >= vocab else int(x.min())
            raise ConfigError(f"{where}: token id {bad} is outside the model's vocabulary "
                              f"[0, {vocab})")
        if labels:
            if y.is_floating_point() or y.dim() != 1:
                raise ConfigError(f"{where}: {part} y has dtype {y.dtype} and shape "
                                  f"{tuple(y.shape)}; expected (N,) int64 class labels")
            if outputs is not None and len(y) and (y.min() < 0 or y.max() >= outputs):
                bad = int(y.max()) if y.max() >= outputs else int(y.min())
                raise ConfigError(f"{where}: {part} label {bad} is outside the model's "
                                  f"{outputs} outputs [0, {outputs})")
