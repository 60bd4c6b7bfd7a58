"""Where a workload's model comes from, with ``--model-arg KEY=VALUE`` overrides.

* a built-in name (``resnet20``, …) — no model args;
* ``FILE.py:FACTORY`` / ``module.path:FACTORY`` — model args become keyword arguments of
  the factory, typed by its annotations (``int``, ``float``, ``bool``, ``str``);
* ``transformers:CONFIG_NAME`` (``LlamaConfig``, a model type ``gpt2``, or a model class
  ``LlamaForCausalLM``) — model args override the config's own fields, typed by their
  default values; an unknown key is an error naming the closest field.  A config name
  builds the bare model (``AutoModel``), or its causal-LM model when the metric is
  perplexity;
* a local Hugging Face folder (``config.json`` + safetensors shards), loaded with
  ``local_files_only=True`` — never a download;
* ``timm:NAME`` / ``torchvision:NAME`` where they import (random weights).
"""

from __future__ import annotations

import difflib
import inspect
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from imcsim.errors import ConfigError

__all__ = ["Source", "build_source", "typed_value"]


@dataclass(frozen=True)
class Source:
    """A built model, the module its factory lives in (or None) and its default example."""

    name: str
    model: nn.Module
    module: Any = None
    example: Any = None


def typed_value(key: str, text: str, like: Any, where: str) -> Any:
    """``text`` converted to the type of ``like`` (a default value or an annotation)."""
    kind = like if isinstance(like, type) else type(like)
    try:
        if kind is bool:
            if text.lower() not in ("true", "false", "1", "0"):
                raise ValueError(text)
            return text.lower() in ("true", "1")
        if kind in (int, float):
            return kind(text)
        if kind in (list, tuple, dict):
            return kind(json.loads(text))
    except (ValueError, TypeError, json.JSONDecodeError):
        raise ConfigError(f"--model-arg {key}={text}: {where} expects {kind.__name__}") from None
    return text


def _hf(name: str) -> Any:
    from imcsim.zoo.user_models import _zoo_import

    return _zoo_import(name)


def _config(transformers: Any, name: str, args: dict[str, str]) -> tuple[Any, Any]:
    """(config, model class or None) of ``transformers:name`` with overrides applied."""
    cls = getattr(transformers, name, None) if name[:1].isupper() else None
    model_cls = cls if isinstance(cls, type) and issubclass(cls, nn.Module) else None
    if model_cls is not None:
        config = model_cls.config_class()
    elif isinstance(cls, type) and name.endswith("Config"):
        config = cls()
    else:
        try:
            config = transformers.AutoConfig.for_model(name)
        except ValueError:
            raise ConfigError(f"--model transformers:{name}: not a config class (LlamaConfig), "
                              "model class (LlamaForCausalLM) or model type (gpt2)") from None
    fields = config.to_dict()
    for key, text in args.items():
        if key not in fields:
            near = difflib.get_close_matches(key, fields, n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise ConfigError(f"--model-arg {key}: {type(config).__name__} has no field "
                              f"{key!r}{hint}")
        setattr(config, key, typed_value(key, text, fields[key], type(config).__name__))
    return config, model_cls


def _transformers(name: str, args: dict[str, str], causal: bool) -> Source:
    transformers = _hf("transformers")
    config, model_cls = _config(transformers, name, args)
    if model_cls is None:
        auto = transformers.AutoModelForCausalLM if causal else transformers.AutoModel
        build = lambda: auto.from_config(config)  # noqa: E731
    else:
        build = lambda: model_cls(config)  # noqa: E731
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        try:
            model = build()
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"--model transformers:{name}: {' '.join(str(exc).split())[:200]}") from None
    return Source(f"transformers:{name}", model.eval(), None, _hf_example(model))


def _hf_example(model: nn.Module) -> torch.Tensor:
    """A Hugging Face model's default example: seeded pixels or (1, 128) token ids."""
    from imcsim.zoo.inputs import draw_input
    from imcsim.zoo.user_models import DEFAULT_TOKENS

    config = model.config
    if getattr(model, "main_input_name", "input_ids") == "pixel_values":
        size = getattr(config, "image_size", 224)
        size = size if isinstance(size, int) else size[0]
        return draw_input(model, (1, getattr(config, "num_channels", 3), size, size), "float32")
    return draw_input(model, DEFAULT_TOKENS, "int64")


def hf_folder(path: Path, args: dict[str, str]) -> Source:
    """A local Hugging Face model folder (``config.json`` + weights), never downloaded."""
    transformers = _hf("transformers")
    config = transformers.AutoConfig.from_pretrained(str(path), local_files_only=True)
    archs = getattr(config, "architectures", None) or []
    cls = getattr(transformers, archs[0], None) if archs else None
    cls = cls if isinstance(cls, type) else transformers.AutoModel
    if args:
        raise ConfigError(f"--model-arg: {path} is a trained folder; its config.json is fixed")
    try:
        model = cls.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"--model {path}: {' '.join(str(exc).split())[:200]}") from None
    return Source(str(path), model.eval(), None, _hf_example(model))


def _factory(spec: str, args: dict[str, str]) -> Source:
    from imcsim.zoo.user_models import _load_module

    target, _, func = spec.rpartition(":")
    try:
        module = _load_module(target)
        factory = getattr(module, func)
        params = inspect.signature(factory).parameters
        unknown = [k for k in args if k not in params]
        if unknown:
            raise ConfigError(f"--model-arg {unknown[0]}: {func}() takes no argument "
                              f"{unknown[0]!r} (takes {', '.join(params) or 'none'})")
        kwargs = {k: typed_value(k, v, params[k].annotation if params[k].annotation
                                 is not inspect.Parameter.empty else params[k].default,
                                 f"{func}()") for k, v in args.items()}
        model = factory(**kwargs)
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure of user code is one line
        raise ConfigError(f"--model {spec}: {type(exc).__name__}: {' '.join(str(exc).split())}") from None
    if not isinstance(model, nn.Module):
        raise ConfigError(f"--model {spec}: {func}() returned {type(model).__name__}, not an nn.Module")
    return Source(spec, model.eval(), module)


def build_source(spec: str, args: dict[str, str], *, causal: bool = False) -> Source:
    """The model ``--model spec`` names, built with ``args`` (see the module docstring)."""
    from imcsim.zoo.models import MODELS

    zoo, sep, name = spec.partition(":")
    if sep and zoo == "transformers":
        return _transformers(name, args, causal)
    if Path(spec).is_dir():
        if not (Path(spec) / "config.json").is_file():
            raise ConfigError(f"--model {spec}: a folder needs a config.json (Hugging Face layout)")
        return hf_folder(Path(spec), args)
    if spec in MODELS or (sep and zoo in ("timm", "torchvision")) or ":" not in spec:
        if args:
            raise ConfigError(f"--model-arg applies to FILE.py:FACTORY, module:FACTORY and "
                              f"transformers:NAME, not to {spec!r}")
        from imcsim.zoo.user_models import resolve_model

        user = resolve_model(spec)
        return Source(user.name, user.model, None, user.example)
    return _factory(spec, args)
