"""Torch side of imcsim: models, data, extraction, compression, crossbar simulation, training."""

from imcsim.nn.compress import RankRule, low_rank, prune
from imcsim.nn.crossbar import (
    CrossbarConfig,
    CrossbarConv2d,
    CrossbarLinear,
    calibrate,
    to_crossbar,
)
from imcsim.nn.extract import Extraction, extract_layers
from imcsim.nn.models import MODELS, build_model, example_input
from imcsim.nn.train import TrainConfig, evaluate, finetune, train
from imcsim.nn.zoo import load_model, model_inputs

__all__ = [
    "MODELS", "CrossbarConfig", "CrossbarConv2d", "CrossbarLinear", "Extraction", "RankRule",
    "TrainConfig", "build_model", "calibrate", "evaluate", "example_input", "extract_layers",
    "finetune", "load_model", "low_rank", "model_inputs", "prune", "to_crossbar", "train",
]
