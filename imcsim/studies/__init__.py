"""Studies: the only layer that uses both the core and the torch adapter.

Built-in models, offline data and training (the workbench), compression comparisons,
sweeps and their executors, recipes, accuracy studies.
"""

from imcsim.studies.compare import Comparison, MethodResult, compare_methods
from imcsim.studies.models import MODELS, build_model, example_input
from imcsim.studies.train import TrainConfig, evaluate, finetune, train
from imcsim.studies.zoo import load_model, model_inputs

__all__ = [
    "MODELS", "Comparison", "MethodResult", "TrainConfig", "build_model", "compare_methods",
    "evaluate", "example_input", "finetune", "load_model", "model_inputs", "train",
]
