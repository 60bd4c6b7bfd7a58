"""Resolve what the user wants mapped: a torch model (``--model``) or a CSV layer table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from imcsim.errors import ConfigError, ImcsimError
from imcsim.layers import LayerShape
from imcsim.tables import load_layer_table

if TYPE_CHECKING:
    from imcsim.nn.extract import Coverage
    from imcsim.zoo.inference import InputSpec

__all__ = ["Workload", "capture_workload", "load_workload", "model_workload", "spec_workload",
           "workload_layers"]


@dataclass(frozen=True)
class Workload:
    """Named layers in execution order, what could not be mapped, and the MAC coverage."""

    name: str
    layers: tuple[LayerShape, ...]
    unmapped: tuple[str, ...] = ()
    coverage: Coverage | None = None
    """Captured vs. ``FlopCounterMode`` MACs (torch models only)."""
    digital: tuple[tuple[str, str, int, str | None], ...] = ()
    """Digital operations of the pass: ``(kind, owner, elements, table)`` (torch models)."""
    inference: dict | None = None
    """Phase, batch, context, KV-cache elements, shape-only (``imcsim.zoo.inference``)."""

    @property
    def complete(self) -> bool:
        """Nothing ran that is not mapped (always true for a layer table)."""
        return not self.unmapped and (self.coverage is None or self.coverage.difference == 0)


def model_workload(name: str, input_shape: tuple[int, ...] | None = None,
                   spec: InputSpec | None = None) -> Workload:
    """Extract a torch model's layers (``imcsim.zoo.user_models`` resolves ``name``)
    on the input ``spec`` describes (default: ``input_shape``, shape-only capture)."""
    from imcsim.zoo.inference import InputSpec

    spec = spec or InputSpec(shape=input_shape)
    try:
        return capture_workload(name, spec)
    except ImcsimError:
        raise
    except Exception as exc:  # noqa: BLE001 - a model failing on its input is one line
        where = (f"decoding {spec.batch} token(s) after {spec.context}" if spec.phase == "decode"
                 else f"on input {spec.shape or 'default'}")
        raise ConfigError(
            f"model {name!r} {where}: {type(exc).__name__}: {' '.join(str(exc).split())}"
        ) from None


def spec_workload(spec: Any) -> Workload:
    """The layers of a user's ``imcsim.zoo.workload.Workload``, extracted on its example input."""
    from imcsim.nn.extract import extract_layers
    from imcsim.nn.user_code import user_code
    from imcsim.zoo.workload import load_workload as load_spec

    loaded = load_spec(spec, with_data=spec.data is not None)
    with user_code(loaded.name, "forward pass", loaded.example):
        extraction = extract_layers(loaded.model, loaded.example)
    return Workload(loaded.name, extraction.layers, extraction.unmapped, extraction.coverage)


def workload_layers(spec: Any, phase: str = "prefill", context: int | None = None,
                    batch: int = 1) -> Workload:
    """The layers of a user's ``imcsim.zoo.workload.Workload`` for a shape-only verb.

    A model given by name alone (no ``--weights``, ``--model-arg``, ``--data`` or
    ``--metric``) is captured on fake tensors (``capture_workload``: any size, prefill or
    decode); otherwise the workload is loaded for real (``spec_workload``: its weights
    decide pruning masks, its factory arguments the architecture) and captured in prefill.
    """
    from imcsim.zoo.inference import InputSpec

    if phase not in ("prefill", "decode"):
        raise ConfigError(f"--phase {phase!r}: expected prefill or decode")
    by_name = (spec.weights is None and not spec.model_args and spec.data is None
               and spec.metric is None and spec.input_dtype in (None, "int64", "float32")
               and _captured_by_name(spec.model))
    if by_name:
        return model_workload(spec.model, spec=InputSpec(
            shape=spec.input_shape, dtype=spec.input_dtype, phase=phase, context=context,
            batch=batch))
    if phase != "prefill" or context is not None or batch != 1:
        raise ConfigError("--phase decode, --context and --batch capture a model given by name "
                          "only (no --weights, --model-arg, --data or --metric)")
    return spec_workload(spec)


def _captured_by_name(model: str) -> bool:
    """Names ``user_models.resolve_model`` builds without weights: built-ins, factories,
    ``timm:``/``torchvision:`` and ``transformers:`` config classes or config files (a
    Hugging Face folder, a model type or a model class go through ``imcsim.zoo.sources``)."""
    from pathlib import Path

    if Path(model).is_dir():
        return False
    zoo, _, name = model.partition(":")
    return zoo != "transformers" or name.endswith(("Config", ".json"))


def load_workload(
    model: str | None = None, layers: str | None = None,
    input_shape: tuple[int, ...] | None = None, spec: InputSpec | None = None,
) -> Workload:
    """``model`` names a torch model (see ``user_models``); ``layers`` a CSV file or shipped table."""
    if (model is None) == (layers is None):
        raise ConfigError("give exactly one of --model NAME or --layers TABLE.csv")
    if layers is not None:
        if input_shape is not None or spec is not None:
            raise ConfigError("--input-shape applies to --model, not to --layers")
        shapes = load_layer_table(layers)
        return Workload(layers.rsplit("/", 1)[-1].removesuffix(".csv"), tuple(shapes))
    return model_workload(model, input_shape, spec)  # type: ignore[arg-type]


def _small_builtin(name: str) -> bool:
    """A built-in CIFAR-size network (at most 2.7M weights, WRN-16-4): built for real in a
    few milliseconds, while fake tensors cost the import of ``torch._dynamo`` (about 1 s of
    start-up); ``tests/test_llm.py`` checks that both captures give the same layers."""
    from imcsim.zoo.models import MODELS

    return name in MODELS and MODELS[name].input_size == (32, 32)


def _is_factory(name: str) -> bool:
    """``FILE.py:FACTORY`` / ``module:FACTORY``: user code that may load trained (pruned)
    weights, so it is built for real (a fake weight has no zeros to find)."""
    from imcsim.zoo.models import MODELS
    from imcsim.zoo.user_models import ZOOS

    return name not in MODELS and ":" in name and name.partition(":")[0] not in ZOOS


def _example(user: Any, spec: InputSpec) -> Any:
    from imcsim.zoo.inference import build_input, decode_inputs

    if spec.phase == "decode":
        return decode_inputs(user.model, spec.batch, spec.context)  # type: ignore[arg-type]
    if spec.dtype is None:
        return user.example
    return build_input(user.model, spec.shape or tuple(user.example.shape), spec.dtype)


def _tokens(example: Any) -> int | None:
    """Token positions of a step: the token ids' elements (``None`` for other inputs)."""
    import torch

    ids = example.get("input_ids") if isinstance(example, dict) else example
    if isinstance(ids, torch.Tensor) and not ids.is_floating_point():
        return ids.numel()
    return None


def capture_workload(name: str, spec: InputSpec) -> Workload:
    """Resolve ``--model name``, build its example input (``spec``) and extract its layers
    — on fake tensors as ``spec.shape_only`` says (``InputSpec``), never for user code."""
    import contextlib

    from imcsim.nn.extract import extract_layers
    from imcsim.nn.fake import shape_only
    from imcsim.nn.user_code import user_code
    from imcsim.zoo.inference import cache_elements, cache_keyword
    from imcsim.zoo.user_models import resolve_model

    small = spec.shape_only is None and _small_builtin(name)
    fake = spec.shape_only is not False and not _is_factory(name) and not small
    with shape_only() if fake else contextlib.nullcontext():
        user = resolve_model(name, spec.shape if spec.phase == "prefill" else None)
        example = _example(user, spec)
        with user_code(name, "forward pass", example):
            extraction = extract_layers(user.model, example)
        cache = example.get(cache_keyword(user.model)) if spec.phase == "decode" else None
        kv = cache_elements(cache) if cache is not None else None
    facts = {"phase": spec.phase, "shape_only": fake, "batch": spec.batch,
             "context": spec.context, "kv_cache_elements": kv, "tokens": _tokens(example)}
    return Workload(user.name, extraction.layers, extraction.unmapped, extraction.coverage,
                    extraction.digital, facts)
