"""Resolve what the user wants mapped: a built-in torch model or a CSV layer table."""

from __future__ import annotations

from dataclasses import dataclass

from imcsim.errors import ConfigError
from imcsim.layers import LayerShape
from imcsim.tables import load_layer_table


@dataclass(frozen=True)
class Workload:
    """Named layers in execution order, plus modules that could not be mapped."""

    name: str
    layers: tuple[LayerShape, ...]
    unmapped: tuple[str, ...] = ()


def model_workload(name: str) -> Workload:
    """Extract a built-in model's layers at its native input size (needs torch)."""
    from imcsim.nn.extract import extract_layers
    from imcsim.studies.models import build_model, example_input

    extraction = extract_layers(build_model(name), example_input(name))
    return Workload(name, extraction.layers, extraction.unmapped)


def load_workload(model: str | None = None, layers: str | None = None) -> Workload:
    """``model`` names a built-in torch model; ``layers`` a CSV file or shipped table."""
    if (model is None) == (layers is None):
        raise ConfigError("give exactly one of --model NAME or --layers TABLE.csv")
    if layers is not None:
        shapes = load_layer_table(layers)
        return Workload(layers.rsplit("/", 1)[-1].removesuffix(".csv"), tuple(shapes))
    return model_workload(model)  # type: ignore[arg-type]
