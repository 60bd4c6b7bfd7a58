"""Neural-network side of imcsim: reference models and offline datasets."""

from imcsim.nn.crossbar import (  # noqa: E402
    CrossbarConfig,
    CrossbarConv2d,
    CrossbarLinear,
    calibrate,
    to_crossbar,
)
from imcsim.nn.train import TrainConfig, evaluate, finetune, train  # noqa: E402

__all__ = ["CrossbarConfig", "CrossbarConv2d", "CrossbarLinear", "TrainConfig", "calibrate",
           "evaluate", "finetune", "to_crossbar", "train"]
