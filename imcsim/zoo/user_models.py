"""Any model from the command line: built-in names, your own factory, and model zoos.

``--model`` takes

* a built-in name (``resnet20``, ``tiny-vit``, …, ``imcsim.zoo.models.MODELS``);
* ``path/to/file.py:factory`` — a function in a Python file returning an ``nn.Module``;
* ``package.module:factory`` — the same in an importable module;
* ``timm:NAME`` / ``torchvision:NAME`` — a zoo architecture with random weights
  (``pretrained=False`` / ``weights=None``: nothing is downloaded);
* ``transformers:NAME`` — a Hugging Face architecture built from its default config
  object (``GPT2Config``, ``BertConfig``, or a model type such as ``gpt2``) with random
  weights (``AutoModel.from_config``: nothing is downloaded).

The example input has ``--input-shape`` (e.g. ``1,3,224,224``); without it, the
factory's module attribute ``INPUT_SHAPE``, a zoo model's own default, or an error
naming what to give.  Token models get seeded random token ids of shape
(batch, tokens) — default (1, 128) — and image models seeded ``randn`` images.

User code is the user's (``imcsim.nn.user_code``): a model file loads with its own folder
importable (sibling modules resolve), and any failure of the file, the factory, the
example input or the forward pass — ``sys.exit`` included — is one ``ConfigError``
``model FILE:FACTORY: …`` naming the input's shape and dtype; an example input that could
not fit in this machine's memory is refused before it is built.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from imcsim.errors import ConfigError
from imcsim.nn.user_code import check_example_shape, importable_folder, user_code

__all__ = ["UserModel", "parse_shape", "resolve_model"]

ZOOS = ("timm", "torchvision", "transformers")
DEFAULT_TOKENS = (1, 128)
DEFAULT_IMAGE = (1, 3, 224, 224)


def parse_shape(text: str) -> tuple[int, ...]:
    """``"1,3,32,32"`` → ``(1, 3, 32, 32)`` (positive integers)."""
    parts = [p.strip() for p in text.replace("x", ",").split(",") if p.strip()]
    if not parts or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise ConfigError(f"--input-shape {text!r}: expected positive integers like 1,3,32,32")
    return tuple(int(p) for p in parts)


class UserModel:
    """A resolved ``--model``: its display name, the module and its example input."""

    def __init__(self, name: str, model: nn.Module, example: Any) -> None:
        self.name, self.model, self.example = name, model, example


def _seeded_randn(shape: tuple[int, ...], model: str = "") -> torch.Tensor:
    shape = check_example_shape(model, shape)
    with user_code(model, "building the example input"):
        return torch.randn(shape, generator=torch.Generator().manual_seed(0))


def _zoo_import(package: str) -> Any:
    try:
        return importlib.import_module(package)
    except Exception as exc:  # noqa: BLE001 - a broken install is as good as none
        raise ConfigError(
            f"--model {package}:…: {package} does not import here ({type(exc).__name__}: "
            f"{' '.join(str(exc).split())[:120]}); pip install 'imcsim[zoo]'"
        ) from None


def _timm(name: str, shape: tuple[int, ...] | None) -> UserModel:
    timm = _zoo_import("timm")
    model = timm.create_model(name, pretrained=False)
    shape = shape or (1, *model.pretrained_cfg.get("input_size", DEFAULT_IMAGE[1:]))
    return UserModel(f"timm:{name}", model, _seeded_randn(shape, f"timm:{name}"))


def _torchvision(name: str, shape: tuple[int, ...] | None) -> UserModel:
    tv = _zoo_import("torchvision")
    model = tv.models.get_model(name, weights=None)
    return UserModel(f"torchvision:{name}", model,
                     _seeded_randn(shape or DEFAULT_IMAGE, f"torchvision:{name}"))


def _hf_config(transformers: Any, name: str) -> Any:
    if name.endswith("Config") and hasattr(transformers, name):
        return getattr(transformers, name)()
    try:
        return transformers.AutoConfig.for_model(name)
    except ValueError:
        raise ConfigError(
            f"--model transformers:{name}: not a config class (e.g. GPT2Config) or model type "
            "(e.g. gpt2)"
        ) from None


def _transformers(name: str, shape: tuple[int, ...] | None) -> UserModel:
    transformers = _zoo_import("transformers")
    config = _hf_config(transformers, name)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = transformers.AutoModel.from_config(config)
    if getattr(model, "main_input_name", "input_ids") == "pixel_values":
        size = getattr(config, "image_size", 224)
        example = _seeded_randn(shape or (1, getattr(config, "num_channels", 3), size, size),
                                f"transformers:{name}")
    else:
        gen = torch.Generator().manual_seed(0)
        tokens = check_example_shape(f"transformers:{name}", shape or DEFAULT_TOKENS)
        example = torch.randint(0, config.vocab_size, tokens, generator=gen)
    return UserModel(f"transformers:{name}", model.eval(), example)


def _load_module(target: str) -> Any:
    if target.endswith(".py"):
        path = Path(target)
        if not path.is_file():
            raise ConfigError(f"--model: file {target!r} does not exist")
        spec = importlib.util.spec_from_file_location(f"imcsim_user_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        with importable_folder(path):
            spec.loader.exec_module(module)  # type: ignore[union-attr]
        return module
    return importlib.import_module(target)


def _factory(spec: str, shape: tuple[int, ...] | None) -> UserModel:
    target, _, func = spec.rpartition(":")
    with user_code(spec, "loading the model file" if target.endswith(".py") else "importing"):
        module = _load_module(target)
    with user_code(spec, f"{func}()"):
        factory: Callable[[], Any] = getattr(module, func)
        model = factory()
    if not isinstance(model, nn.Module):
        raise ConfigError(f"model {spec}: {func}() returned {type(model).__name__}, not an nn.Module")
    shape = shape or getattr(module, "INPUT_SHAPE", None)
    if shape is None:
        raise ConfigError(
            f"model {spec}: give --input-shape (e.g. 1,3,32,32) or set INPUT_SHAPE in {target}"
        )
    with user_code(spec, "eval()"):
        model = model.eval()
    return UserModel(spec, model, _seeded_randn(shape, spec))


def resolve_model(spec: str, input_shape: tuple[int, ...] | None = None) -> UserModel:
    """The module and example input ``--model spec`` names (see the module docstring)."""
    from imcsim.zoo.models import MODELS, build_model, example_input

    if spec in MODELS:
        example = _seeded_randn(input_shape, spec) if input_shape else example_input(spec)
        return UserModel(spec, build_model(spec).eval(), example)
    zoo, sep, name = spec.partition(":")
    if sep and zoo in ZOOS:
        return {"timm": _timm, "torchvision": _torchvision, "transformers": _transformers}[zoo](
            name, input_shape)
    if ":" not in spec:
        known = ", ".join(MODELS)
        raise ConfigError(
            f"unknown model {spec!r}; give a built-in ({known}), FILE.py:FACTORY, "
            "module.path:FACTORY or timm:/torchvision:/transformers:NAME"
        )
    return _factory(spec, input_shape)
