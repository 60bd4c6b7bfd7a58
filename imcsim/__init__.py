"""imcsim: map PyTorch models onto in-memory-computing crossbar arrays.

``import imcsim`` loads only the torch-free core.  Three names reach into the torch
side and are resolved on first use (PEP 562): ``simulate_network`` (``imcsim.nn``),
``compare_methods``, ``Comparison`` and ``MethodResult`` (``imcsim.studies``).
"""

from importlib import import_module
from typing import Any

from imcsim.cost import LayerCost, estimate, estimate_network
from imcsim.device import DeviceConfig
from imcsim.errors import ConfigError, ImcsimError, MappingError, UnsupportedLayerError
from imcsim.hardware import ArrayConfig, ChipConfig, PrecisionConfig, load_chip, parse_array
from imcsim.layers import LayerShape
from imcsim.mappers import LayerMapping, get_mapper, mapper_names, register_mapper
from imcsim.network import compare_mappers, map_network
from imcsim.periphery import CostConfig
from imcsim.report import NetworkReport
from imcsim.tables import load_layer_table

__version__ = "0.1.0"

_LAZY = {
    "simulate_network": "imcsim.nn.simulate",
    "compare_methods": "imcsim.studies.compare",
    "Comparison": "imcsim.studies.compare",
    "MethodResult": "imcsim.studies.compare",
}

__all__ = [
    "ArrayConfig", "ChipConfig", "ConfigError", "CostConfig", "DeviceConfig", "ImcsimError",
    "LayerCost",
    "LayerMapping", "LayerShape", "MappingError", "NetworkReport", "PrecisionConfig",
    "UnsupportedLayerError", "compare_mappers", "estimate", "estimate_network", "get_mapper",
    "load_chip", "load_layer_table", "map_network", "mapper_names", "parse_array",
    "register_mapper", *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'imcsim' has no attribute {name!r}")
