"""What the user brings: built-in models and their shipped checkpoints, datasets, and a user's
own model file, weights, inputs and data, resolved into one workload.

The names below are resolved on first use (PEP 562), so ``import imcsim.zoo`` imports no torch.
See ``imcsim/zoo/README.md`` for what lives here and how to add a model or a dataset.
"""

from imcsim._lazy import lazy_getattr

_LAZY = {
    "MODELS": "imcsim.zoo.models",
    "ModelSpec": "imcsim.zoo.models",
    "build_model": "imcsim.zoo.models",
    "example_input": "imcsim.zoo.models",
    "load_model": "imcsim.zoo.checkpoints",
    "load_checkpoint": "imcsim.zoo.checkpoints",
    "model_inputs": "imcsim.zoo.checkpoints",
    "load_data": "imcsim.zoo.checkpoints",
    "load_dataset": "imcsim.zoo.data",
    "resolve_model": "imcsim.zoo.user_models",
}

__all__ = sorted(_LAZY)
__getattr__ = lazy_getattr(__name__, _LAZY)
