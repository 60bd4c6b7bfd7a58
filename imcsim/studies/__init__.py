"""Studies: the only layer that uses both the core and the torch adapter.

Built-in models, offline data and training (the workbench), compression comparisons,
sweeps and their executors, recipes, accuracy studies.  The names below are resolved
on first use (PEP 562), so that importing one study module (a sweep worker, the CLI)
does not import torch unless that module needs it.  ``train`` and ``evaluate`` are the
submodules of those names (import the functions from ``imcsim.studies.train``).
"""

from importlib import import_module
from typing import Any

_LAZY = {
    "Comparison": "imcsim.studies.compare",
    "MethodResult": "imcsim.studies.compare",
    "compare_methods": "imcsim.studies.compare",
    "MODELS": "imcsim.studies.models",
    "build_model": "imcsim.studies.models",
    "example_input": "imcsim.studies.models",
    "TrainConfig": "imcsim.studies.train",
    "finetune": "imcsim.studies.train",
    "load_model": "imcsim.studies.zoo",
    "model_inputs": "imcsim.studies.zoo",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'imcsim.studies' has no attribute {name!r}")
