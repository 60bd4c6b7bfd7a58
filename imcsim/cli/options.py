"""The workload options, declared once for every verb.

``@workload_options()`` adds ``--model``, ``--model-arg KEY=VALUE`` (repeatable),
``--weights FILE``, ``--input-shape``, ``--input-dtype``, ``--data``, ``--data-dir`` and
``--metric`` to a verb and hands it one ``workload: Workload | None`` (``imcsim.zoo.workload``)
instead of eight parameters; chip, mapping and output options are the shared ``Annotated``
types of ``imcsim.cli.common``.  Nothing here imports torch: the verb loads the workload
when it runs.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, get_type_hints

import typer

from imcsim.errors import ConfigError

__all__ = ["WORKLOAD_FLAGS", "build_workload", "workload_options"]

Opt = typer.Option
_MODEL_HELP = ("Built-in model (resnet20, wrn16-4, vgg-cifar, tiny-vit, resnet18, vgg13), "
               "FILE.py:FACTORY, module.path:FACTORY, transformers:CONFIG_OR_CLASS, a local "
               "Hugging Face folder, or timm:/torchvision:NAME (nothing is downloaded).")
_PARAMS: dict[str, tuple[Any, Any]] = {
    "model": (Annotated[str | None, Opt("--model", "-m", help=_MODEL_HELP)], None),
    "model_arg": (Annotated[list[str] | None, Opt(
        "--model-arg", help="KEY=VALUE for the factory's keyword arguments or the transformers "
        "config's fields (repeatable).")], None),
    "weights": (Annotated[Path | None, Opt(
        "--weights", help="State dict for --model: .pt (weights_only) or .safetensors "
        "(default: a built-in's shipped checkpoint).")], None),
    "input_shape": (Annotated[str | None, Opt(
        "--input-shape", help="Example input shape, e.g. 1,3,32,32 or 1,128 (default: "
        "example_inputs(), INPUT_SHAPE or the model's own).")], None),
    "input_dtype": (Annotated[str | None, Opt(
        "--input-dtype", help="Example input dtype: float32 (default) or int64 (token ids "
        "below the model's vocabulary size).")], None),
    "data": (Annotated[str | None, Opt(
        "--data", help="mnist5k, cifar10/cifar100 (with --data-dir), an .npz/.pt with x and y, "
        "a token-id .npy, an image folder (one subfolder per class) or FILE.py:FACTORY.")], None),
    "data_dir": (Annotated[Path | None, Opt(
        "--data-dir", help="Folder of the CIFAR python batches (--data cifar10/cifar100).")], None),
    "metric": (Annotated[str | None, Opt(
        "--metric", help="top1 (default), top5, perplexity (causal LMs on token data), mse or "
        "FILE.py:FUNCTION(outputs, targets) -> float.")], None),
}
WORKLOAD_FLAGS = tuple(f"--{name.replace('_', '-')}" for name in _PARAMS)


def _model_args(pairs: list[str] | None) -> tuple[tuple[str, str], ...]:
    out = []
    for text in pairs or ():
        key, sep, value = text.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--model-arg {text!r}: expected KEY=VALUE")
        out.append((key.strip(), value.strip()))
    return tuple(out)


def build_workload(default_model: str | None, model: str | None = None, **given: Any) -> Any:
    """The ``Workload`` of the options (``None`` when no option names one and the verb has
    no default model)."""
    from imcsim.zoo.user_models import parse_shape
    from imcsim.zoo.workload import Workload

    others = {k: v for k, v in given.items() if v not in (None, [])}
    if model is None and default_model is None:
        if others:
            flag = "--" + next(iter(others)).replace("_", "-")
            raise ConfigError(f"{flag} applies to --model; give --model")
        return None
    shape = given.get("input_shape")
    return Workload(
        model=model or default_model, model_args=_model_args(given.get("model_arg")),
        weights=given.get("weights"), input_shape=None if shape is None else parse_shape(shape),
        input_dtype=given.get("input_dtype"), data=given.get("data"),
        data_dir=given.get("data_dir"), metric=given.get("metric"))


def workload_options(default_model: str | None = "resnet20") -> Callable[[Callable], Callable]:
    """Decorate a verb taking ``workload``: it gets the workload options instead."""
    def decorate(func: Callable) -> Callable:
        hints = get_type_hints(func, include_extras=True)
        own = [p.replace(annotation=hints[p.name])
               for p in inspect.signature(func).parameters.values() if p.name != "workload"]
        added = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=kind,
                                   default=default) for name, (kind, default) in _PARAMS.items()]
        params = [*added[:1], *[p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own],
                  *added[1:]]

        @functools.wraps(func)
        def verb(**kwargs: Any) -> Any:
            given = {name: kwargs.pop(name) for name in _PARAMS}
            return func(workload=build_workload(default_model, **given), **kwargs)

        del verb.__wrapped__
        verb.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        verb.__annotations__ = {p.name: p.annotation for p in params}
        return verb
    return decorate
