"""Resolve what the user wants mapped: a torch model (``--model``) or a CSV layer table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from imcsim.errors import ConfigError
from imcsim.layers import LayerShape
from imcsim.tables import load_layer_table

if TYPE_CHECKING:
    from imcsim.nn.extract import Coverage

__all__ = ["Workload", "load_workload", "model_workload", "spec_workload"]


@dataclass(frozen=True)
class Workload:
    """Named layers in execution order, what could not be mapped, and the MAC coverage."""

    name: str
    layers: tuple[LayerShape, ...]
    unmapped: tuple[str, ...] = ()
    coverage: Coverage | None = None
    """Captured vs. ``FlopCounterMode`` MACs (torch models only)."""

    @property
    def complete(self) -> bool:
        """Nothing ran that is not mapped (always true for a layer table)."""
        return not self.unmapped and (self.coverage is None or self.coverage.difference == 0)


def model_workload(name: str, input_shape: tuple[int, ...] | None = None) -> Workload:
    """Extract a torch model's layers (``imcsim.zoo.user_models`` resolves ``name``)."""
    from imcsim.nn.extract import extract_layers
    from imcsim.nn.user_code import user_code
    from imcsim.zoo.user_models import resolve_model

    user = resolve_model(name, input_shape)
    with user_code(name, "forward pass", user.example):
        extraction = extract_layers(user.model, user.example)
    return Workload(user.name, extraction.layers, extraction.unmapped, extraction.coverage)


def spec_workload(spec: Any) -> Workload:
    """The layers of a user's ``imcsim.zoo.workload.Workload``, extracted on its example input."""
    from imcsim.nn.extract import extract_layers
    from imcsim.nn.user_code import user_code
    from imcsim.zoo.workload import load_workload as load_spec

    loaded = load_spec(spec, with_data=spec.data is not None)
    with user_code(loaded.name, "forward pass", loaded.example):
        extraction = extract_layers(loaded.model, loaded.example)
    return Workload(loaded.name, extraction.layers, extraction.unmapped, extraction.coverage)


def load_workload(
    model: str | None = None, layers: str | None = None,
    input_shape: tuple[int, ...] | None = None,
) -> Workload:
    """``model`` names a torch model (see ``user_models``); ``layers`` a CSV file or shipped table."""
    if (model is None) == (layers is None):
        raise ConfigError("give exactly one of --model NAME or --layers TABLE.csv")
    if layers is not None:
        if input_shape is not None:
            raise ConfigError("--input-shape applies to --model, not to --layers")
        shapes = load_layer_table(layers)
        return Workload(layers.rsplit("/", 1)[-1].removesuffix(".csv"), tuple(shapes))
    return model_workload(model, input_shape)  # type: ignore[arg-type]
