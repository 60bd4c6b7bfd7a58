"""The torch adapter: capture a model's layers, compress them, convert them to crossbar
layers and simulate their MVMs.  Imports the core (``imcsim``), never ``imcsim.studies``."""

from imcsim.nn.calibration import calibrate
from imcsim.nn.compress import RankRule, low_rank, prune
from imcsim.nn.crossbar import (
    CrossbarConfig,
    CrossbarConv2d,
    CrossbarLinear,
    adc_clipping,
    to_crossbar,
)
from imcsim.nn.extract import Extraction, extract_layers
from imcsim.nn.simulate import simulate_network

__all__ = [
    "CrossbarConfig", "CrossbarConv2d", "CrossbarLinear", "Extraction", "RankRule",
    "adc_clipping", "calibrate", "extract_layers", "low_rank", "prune", "simulate_network", "to_crossbar",
]
