"""One workload: a model, its weights, example inputs, data and metric — every verb's input.

Python API (what the CLI, recipes and sweeps build)::

    from imcsim.zoo.workload import Workload, load_workload

    w = Workload(model="mynet.py:build", weights="mynet.pt", data="digits.npz")
    loaded = load_workload(w)            # .model .example .data .metric .name
    loaded.float_metric(loaded.data.test_images, loaded.data.test_labels)
    w.content()                          # digests: the result key of everything it reads

Fields map one to one to the CLI options ``--model``, ``--model-arg KEY=VALUE``,
``--weights``, ``--input-shape``, ``--input-dtype``, ``--data`` (+ ``--data-dir``) and
``--metric``, and to a recipe's ``[workload]`` table.  A built-in model keeps its shipped
checkpoint and mnist5k when ``weights``/``data`` are not given; a user's model without
``data`` can be mapped (``map``, ``compare``, ``simulate``) but not evaluated.

``content()`` digests what the workload reads (the model's source file or module, or the
built-in's shipped checkpoint; the weights file; the data file or folder; the inputs; the
metric's source), so a result computed on other weights or data is never reused.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from pydantic import Field, field_validator
from torch import nn

from imcsim._config import StrictModel
from imcsim.errors import ConfigError
from imcsim.zoo.checkpoints import Dataset
from imcsim.zoo.inputs import (
    DTYPES,
    call_model,
    check_example,
    decoder_inputs,
    draw_input,
    example_factory,
    leading_tensor,
    logits_of,
    vocab_size,
)
from imcsim.zoo.metrics import Metric, evaluate_metric, resolve_metric

__all__ = ["LoadedWorkload", "Workload", "load_workload"]


class Workload(StrictModel):
    """What the user brings (see the module docstring); frozen, content-keyed."""

    model: str = "resnet20"
    """Built-in name, FILE.py:FACTORY, module.path:FACTORY, transformers:NAME, a local
    Hugging Face folder, timm:NAME or torchvision:NAME."""
    model_args: tuple[tuple[str, str], ...] = ()
    """``--model-arg KEY=VALUE`` pairs, in order (typed by the factory or the config)."""
    weights: Path | None = None
    """A state dict (.pt or .safetensors); None: a built-in's shipped checkpoint."""
    input_shape: tuple[int, ...] | None = None
    """Example input shape; None: example_inputs(), INPUT_SHAPE or the model's own."""
    input_dtype: str | None = None
    """float32 (default) or an integer dtype (token ids below the vocabulary size)."""
    data: str | None = None
    """Built-in data name, .npz/.pt/.npy file, image folder or FILE.py:FACTORY."""
    data_dir: Path | None = None
    """CIFAR python batches for data cifar10/cifar100."""
    metric: str | None = None
    """top1, top5, perplexity, mse or FILE.py:FUNCTION; None: perplexity on token data,
    else top1."""
    seed: int = Field(default=0, ge=0, le=2**63 - 1)
    """Seed of drawn example inputs and of a train/test split the data does not give."""

    @field_validator("input_dtype")
    @classmethod
    def _dtype(cls, value: str | None) -> str | None:
        if value is not None and value not in DTYPES:
            raise ValueError(f"{value!r} is not one of {', '.join(DTYPES)}")
        return value

    @field_validator("input_shape")
    @classmethod
    def _shape(cls, value: tuple[int, ...] | None) -> tuple[int, ...] | None:
        if value is not None and (not value or min(value) < 1):
            raise ValueError(f"{value} needs positive sizes")
        return value

    @property
    def args(self) -> dict[str, str]:
        return dict(self.model_args)

    @property
    def metric_name(self) -> str:
        if self.metric is not None:
            return self.metric
        return "perplexity" if (self.data or "").endswith(".npy") else "top1"

    @property
    def is_builtin(self) -> bool:
        from imcsim.zoo.models import MODELS

        return self.model in MODELS

    @property
    def plain(self) -> bool:
        """A built-in model with its shipped weights, own inputs, built-in data and top-1:
        what the verbs' built-in path (``--checkpoint``, ``--dataset``) already runs."""
        return (self.is_builtin and not self.model_args and self.weights is None
                and self.input_shape is None and self.input_dtype is None
                and self.data in (None, "mnist5k", "cifar10", "cifar100")
                and self.metric in (None, "top1"))

    def content(self) -> dict[str, str]:
        """Digests of everything the workload reads (its result key)."""
        return {"model": _model_digest(self.model, self.weights), "model_args":
                json.dumps(self.model_args), "weights": _path_digest(self.weights),
                "inputs": f"{self.input_shape}:{self.input_dtype}",
                "data": _data_digest(self.data, self.data_dir),
                "metric": _source_digest(self.metric_name), "seed": str(self.seed)}

    def key(self) -> str:
        """One digest of ``content()``."""
        return _digest(json.dumps(self.content(), sort_keys=True).encode())


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def _path_digest(path: Path | str | None) -> str:
    if path is None:
        return ""
    path = Path(path)
    if path.is_file():
        return _digest(path.read_bytes())
    if path.is_dir():
        h = hashlib.sha256()
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            h.update(str(file.relative_to(path)).encode() + b"\0" + file.read_bytes())
        return h.hexdigest()[:16]
    raise ConfigError(f"{str(path)!r} does not exist")


def _source_digest(spec: str) -> str:
    """A ``FILE.py:NAME``'s file text or a ``module:NAME``'s source file; else the name."""
    target, sep, _ = spec.rpartition(":")
    if not sep or target in ("transformers", "timm", "torchvision"):
        return spec
    if target.endswith(".py"):
        return _path_digest(target)
    try:
        found = importlib.util.find_spec(target)
    except (ImportError, ValueError):
        raise ConfigError(f"{spec}: module {target!r} does not import") from None
    origin = getattr(found, "origin", None)
    return _path_digest(origin) if origin and Path(origin).is_file() else target


def _model_digest(model: str, weights: Path | None) -> str:
    from imcsim.zoo.models import MODELS

    if model in MODELS and weights is None:
        from imcsim.zoo.checkpoints import checkpoint_path

        path = checkpoint_path(model)
        return f"{model}:{_path_digest(path) if path.is_file() else 'untrained'}"
    if Path(model).is_dir():
        return _path_digest(model)
    return _source_digest(model)


def _data_digest(data: str | None, data_dir: Path | None) -> str:
    if data is None:
        return ""
    if Path(data).exists():
        return _path_digest(data)
    return f"{_source_digest(data)}:{_path_digest(data_dir)}"


@dataclass(frozen=True)
class LoadedWorkload:
    """A workload's model (weights loaded, eval mode), example input, data and metric."""

    workload: Workload
    name: str
    model: nn.Module
    example: Any
    data: Dataset | None
    metric: Metric
    weights: str
    """Where the weights came from, in words."""

    def float_metric(self, x: torch.Tensor, y: torch.Tensor) -> float:
        """The metric of the float model on ``x``/``y``."""
        return evaluate_metric(self.model, self.metric, x, y)

    def require_data(self, verb: str) -> Dataset:
        """The data, or a one-line error saying ``verb`` needs ``--data``."""
        if self.data is None:
            raise ConfigError(f"{verb} evaluates {self.name} on data: give --data (an .npz, "
                              "an image folder, a token .npy, FILE.py:FACTORY or a built-in)")
        return self.data


def _example(w: Workload, model: nn.Module, module: Any, default: Any) -> Any:
    tokens = getattr(model, "main_input_name", None) == "input_ids"
    dtype = w.input_dtype or ("int64" if tokens else "float32")
    if w.input_shape is not None:
        return decoder_inputs(model, draw_input(model, w.input_shape, dtype, w.seed))
    fn = example_factory(module) if module is not None else None
    if fn is not None:
        if w.input_dtype is not None:
            raise ConfigError("--input-dtype applies to --input-shape; example_inputs() sets "
                              "its own dtypes")
        try:
            made = fn()
        except Exception as exc:  # noqa: BLE001 - any failure of user code is one line
            raise ConfigError(f"example_inputs(): {type(exc).__name__}: {exc}") from None
        return check_example(made, "example_inputs()")
    shape = getattr(module, "INPUT_SHAPE", None) if module is not None else None
    if shape is not None:
        return draw_input(model, tuple(int(s) for s in shape), dtype, w.seed)
    if default is not None and w.input_dtype is None:
        return decoder_inputs(model, default)
    if default is not None:
        return decoder_inputs(model, draw_input(model, tuple(default.shape), w.input_dtype, w.seed))
    return None


def _no_example(w: Workload) -> ConfigError:
    return ConfigError(f"--model {w.model}: give --input-shape (e.g. 1,3,32,32 or 1,128 with "
                      "--input-dtype int64), an example_inputs() beside the factory or INPUT_SHAPE")


def _check_dtype(model: nn.Module, example: Any) -> None:
    """A token model (``main_input_name`` input_ids) fed a float example is one line."""
    lead = leading_tensor(example)
    if getattr(model, "main_input_name", None) == "input_ids" and lead.is_floating_point():
        raise ConfigError(f"--input-dtype {str(lead.dtype).removeprefix('torch.')}: the model "
                          "takes token ids; give --input-dtype int64")


def _load_model(w: Workload) -> tuple[str, nn.Module, Any, str]:
    """(name, model with weights, example, weights description)."""
    from imcsim.zoo.sources import build_source
    from imcsim.zoo.weights import load_weights

    source = build_source(w.model, w.args, causal=w.metric_name == "perplexity")
    model, text = source.model, "random initialisation (seed 0)"
    if w.weights is not None:
        text = load_weights(model, w.weights)
    elif w.is_builtin:
        from imcsim.zoo.checkpoints import load_model

        model, text = load_model(w.model)
    example = _example(w, model, source.module, source.example)
    return source.name, model.eval(), example, text


def _outputs(model: nn.Module, example: Any, name: str) -> torch.Tensor:
    try:
        with torch.no_grad():
            return logits_of(call_model(model, example))
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - a model failing on its input is one line
        shape = tuple(getattr(leading_tensor(example), "shape", ()))
        raise ConfigError(f"model {name!r} on input {shape}: {type(exc).__name__}: "
                          f"{' '.join(str(exc).split())[:300]}") from None


def load_workload(w: Workload, *, with_data: bool = True) -> LoadedWorkload:
    """Build the model, load its weights, make its example input, read and check its data."""
    from imcsim.zoo.datasets import check_data, load_dataset_spec

    name, model, example, weights = _load_model(w)
    if example is not None:
        _check_dtype(model, example)
    metric = resolve_metric(w.metric_name)
    data_name = w.data if w.data is not None else ("mnist5k" if w.is_builtin else None)
    data = None
    if with_data and data_name is not None:
        data = load_dataset_spec(data_name, model_name=w.model, data_dir=w.data_dir,
                                 example=None if example is None else leading_tensor(example),
                                 seed=w.seed)
        example = data.test_images[:1] if example is None else example
        lead = leading_tensor(example)
        tokens = not lead.is_floating_point()
        vocab = vocab_size(model) if tokens else None
        check_data(data, lead, outputs=None, vocab=vocab, tokens=tokens, labels=metric.labels)
        if metric.labels:
            outputs = _outputs(model, data.test_images[:1], name).shape[-1]
            check_data(data, lead, outputs=outputs, vocab=vocab, tokens=tokens, labels=True)
    elif w.data_dir is not None:
        raise ConfigError("--data-dir applies to --data cifar10/cifar100")
    if example is None:
        raise _no_example(w)
    return LoadedWorkload(w, name, model, example, data, metric, weights)
