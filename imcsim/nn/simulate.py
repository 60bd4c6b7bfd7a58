"""``simulate_network``: run a torch model, capture every mapped layer's input and replay
the report's mapping on it with the core cycle simulator (``imcsim.cyclesim``)."""

from __future__ import annotations

import torch

from imcsim.cyclesim import simulate_activations
from imcsim.hardware import ChipConfig
from imcsim.nn.activations import mapped_inputs
from imcsim.report import NetworkReport

__all__ = ["simulate_network"]


def simulate_network(
    model: torch.nn.Module, report: NetworkReport, inputs: torch.Tensor,
    chip: ChipConfig | None = None, *, skip_zero_slices: bool = True,
) -> NetworkReport:
    """Run ``model`` on ``inputs`` (N images), capture every mapped layer's input and
    simulate the whole report.  Per-image figures are means over the N images."""
    activations = mapped_inputs(model, inputs, report.mappings)
    return simulate_activations(report, activations, chip, skip_zero_slices=skip_zero_slices)
