"""Resolve what the user wants mapped: a torch model (``--model``) or a CSV layer table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from imcsim.errors import ConfigError, ImcsimError
from imcsim.layers import LayerShape
from imcsim.tables import load_layer_table

if TYPE_CHECKING:
    from imcsim.nn.extract import Coverage
    from imcsim.studies.inference import InputSpec

__all__ = ["Workload", "load_workload", "model_workload"]


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
    """Phase, batch, context, KV-cache elements, shape-only (``imcsim.studies.inference``)."""

    @property
    def complete(self) -> bool:
        """Nothing ran that is not mapped (always true for a layer table)."""
        return not self.unmapped and (self.coverage is None or self.coverage.difference == 0)


def model_workload(name: str, input_shape: tuple[int, ...] | None = None,
                   spec: InputSpec | None = None) -> Workload:
    """Extract a torch model's layers (``imcsim.studies.user_models`` resolves ``name``)
    on the input ``spec`` describes (default: ``input_shape``, shape-only capture)."""
    from imcsim.studies.inference import InputSpec, capture_workload

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
