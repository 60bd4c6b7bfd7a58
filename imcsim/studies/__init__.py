"""Studies: experiments only — compare, sweeps and their executors, recipes, accuracy studies,
rank search, the DATE 2025 reproduction, result records.

The names below are resolved on first use (PEP 562), so that importing one study module (a
sweep worker, the CLI) does not import torch unless that module needs it.

Models, checkpoints and data moved to ``imcsim.zoo``; training moved to ``imcsim.train``.
Their old paths (``imcsim.studies.models``, ``imcsim.studies.train``, …, and
``from imcsim.studies import build_model``) keep working for one release with a
``DeprecationWarning``.
"""

from imcsim._lazy import MovedModules, lazy_getattr

_LAZY = {
    "Comparison": "imcsim.studies.compare",
    "MethodResult": "imcsim.studies.compare",
    "compare_methods": "imcsim.studies.compare",
}
_MOVED_NAMES = {
    "MODELS": "imcsim.zoo.models",
    "build_model": "imcsim.zoo.models",
    "example_input": "imcsim.zoo.models",
    "load_model": "imcsim.zoo.checkpoints",
    "model_inputs": "imcsim.zoo.checkpoints",
    "TrainConfig": "imcsim.train.loop",
    "finetune": "imcsim.train.loop",
}
_MOVED_MODULES = {
    "imcsim.studies.models": "imcsim.zoo.models",
    "imcsim.studies.vit": "imcsim.zoo.vit",
    "imcsim.studies.zoo": "imcsim.zoo.checkpoints",
    "imcsim.studies.user_models": "imcsim.zoo.user_models",
    "imcsim.studies.data": "imcsim.zoo.data",
    "imcsim.studies.workloads": "imcsim.zoo.workloads",
    "imcsim.studies.train": "imcsim.train.loop",
    "imcsim.studies.train_state": "imcsim.train.state",
    "imcsim.studies.distributed": "imcsim.train.distributed",
    "imcsim.studies.workers": "imcsim.train.workers",
    "imcsim.studies.grad_compression": "imcsim.train.grad_compression",
    "imcsim.studies.greedylore": "imcsim.train.greedylore",
}

__all__ = sorted(_LAZY)
__getattr__ = lazy_getattr(__name__, _LAZY, deprecated=_MOVED_NAMES)
MovedModules.install(_MOVED_MODULES)
