"""imcsim: map PyTorch models onto in-memory-computing crossbar arrays.

The analytic core imports no torch; ``imcsim.nn`` holds the torch side.
"""

from imcsim.compare import Comparison, MethodResult, compare_methods
from imcsim.cost import LayerCost, estimate, estimate_network
from imcsim.cyclesim import simulate_network
from imcsim.errors import ConfigError, ImcsimError, MappingError, UnsupportedLayerError
from imcsim.hardware import ArrayConfig, ChipConfig, PrecisionConfig, load_chip, parse_array
from imcsim.layers import LayerShape
from imcsim.mappers import LayerMapping, get_mapper, mapper_names, register_mapper
from imcsim.network import compare_mappers, map_network
from imcsim.periphery import CostConfig
from imcsim.report import NetworkReport
from imcsim.tables import load_layer_table

__version__ = "0.1.0"

__all__ = [
    "ArrayConfig", "ChipConfig", "ConfigError", "ImcsimError", "LayerMapping", "LayerShape",
    "MappingError", "NetworkReport", "PrecisionConfig", "UnsupportedLayerError",
    "compare_mappers", "get_mapper", "load_chip", "load_layer_table", "map_network",
    "mapper_names", "parse_array", "register_mapper",
    "CostConfig", "LayerCost", "estimate", "estimate_network", "simulate_network",
    "Comparison", "MethodResult", "compare_methods",
]
