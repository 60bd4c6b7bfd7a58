"""Every path of the crossbar MVM on one tiny layer, for the device tests: the CPU-side
proof that no hidden CPU tensor remains (``test_devices``) and the CPU-vs-CUDA equality
(``test_cuda``).  Each case says whether CPU and CUDA must agree bit for bit (integer
partial sums through the ADC) or within a float tolerance (see docs/guide/gpu.md)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from imcsim.device import DeviceConfig
from imcsim.hardware import ArrayConfig, ChipConfig, PrecisionConfig
from imcsim.layers import LayerShape
from imcsim.network import map_network
from imcsim.nn.crossbar import CrossbarConfig, to_crossbar
from imcsim.report import NetworkReport

__all__ = ["CASES", "Case", "build", "images", "setup"]


@dataclass(frozen=True)
class Case:
    """One MVM path: crossbar options, the layer (conv or linear), how CPU and CUDA agree."""

    name: str
    config: dict = field(default_factory=dict)
    sign: str = "offset"
    layer: str = "conv"  # conv (window copies, gathers, two row tiles), grouped, linear
    exact: bool = True  # bit-identical CPU vs CUDA, else within a float tolerance
    int8: bool = True  # the CPU's oneDNN path allowed (False: the float path on the CPU too)
    int8_cells: bool = True  # programmed cells are int8 levels on the CPU (int8 path taken)
    group_elements: int | None = None  # mvm.GROUP_ELEMENTS override (streaming)


CASES = [
    Case("int8-offset"),
    Case("float-offset", int8=False, int8_cells=False),
    Case("int8-streamed", group_elements=1),
    Case("differential", sign="differential"),
    Case("unsliced", {"slicing": "none"}),
    Case("grouped-sdk", layer="grouped"),
    Case("linear", layer="linear"),
    Case("ideal", {"ideal": True}, exact=False, int8_cells=False),
    Case("stuck-at", {"stuck_on_rate": 0.05, "stuck_off_rate": 0.05, "seed": 3}),
    Case("programming-noise", {"programming_noise": 0.05, "seed": 3}, exact=False,
         int8_cells=False),
    Case("read-noise", {"read_noise": 0.05, "seed": 3}, exact=False),
    Case("drift-compensated", {"drift_time_s": 3600.0, "drift_compensation": True, "seed": 3},
         exact=False, int8_cells=False),
    Case("ir-drop", {"wire_resistance_ohm": 2.0, "ir_drop_compensation": True}, exact=False,
         int8_cells=False),
    Case("adc-deviation", {"adc_offset_lsb": 0.3, "adc_dnl_lsb": 0.2, "seed": 3}),
    Case("calibrated-percentile", {"adc_range": "calibrated", "adc_calibration": "percentile:99",
                                   "calibration_images": 4, "batch_size": 2}),
    Case("calibrated-analytic", {"adc_range": "calibrated", "adc_calibration": "analytic:3",
                                 "input_range": "calibrated", "calibration_images": 4,
                                 "batch_size": 2}, exact=False),
]


def _chip(sign: str, rows: int, cols: int) -> ChipConfig:
    return ChipConfig(
        array=ArrayConfig(rows=rows, cols=cols, cell_bits=2, weight_bits=5, sign=sign),
        precision=PrecisionConfig(input_bits=5, dac_bits=2, adc_bits=4),
        device=DeviceConfig(cell_on_resistance_ohm=40e3, cell_off_resistance_ohm=6e6,
                            drift_nu_mean=0.05, drift_nu_std=0.01, drift_t0_s=20.0),
    )


def _layer(kind: str) -> tuple[nn.Module, LayerShape, str, int, int, tuple[int, ...]]:
    torch.manual_seed(3)
    if kind == "linear":
        return (nn.Linear(40, 6), LayerShape.linear(40, 6, name="0"), "im2col", 32, 32, (3, 40))
    if kind == "grouped":
        return (nn.Conv2d(6, 6, 3, padding=1, groups=3),
                LayerShape.conv2d(6, 6, 3, 6, padding=1, groups=3, name="0"), "sdk", 24, 48,
                (2, 6, 6, 6))
    return (nn.Conv2d(5, 4, 3, padding=1), LayerShape.conv2d(5, 4, 3, 7, padding=1, name="0"),
            "vw-sdk", 48, 64, (2, 5, 7, 7))


def images(case: Case, n: int | None = None) -> torch.Tensor:
    """Seeded inputs of the case's layer (``n`` of them; default: the layer's batch)."""
    shape = _layer(case.layer)[-1]
    shape = shape if n is None else (n, *shape[1:])
    return torch.rand(shape, generator=torch.Generator().manual_seed(7)) * 2 - 0.5


def setup(case: Case) -> tuple[nn.Module, NetworkReport, ChipConfig, CrossbarConfig]:
    """(float layer, its report, chip, crossbar config) of the case."""
    layer, shape, mapper, rows, cols, _ = _layer(case.layer)
    chip = _chip(case.sign, rows, cols)
    return layer, map_network([shape], mapper, chip), chip, CrossbarConfig(**case.config)


def build(case: Case, device: str | torch.device = "cpu") -> nn.Module:
    """The case's layer converted for crossbars on ``device`` (calibrated there if asked)."""
    layer, report, _, config = setup(case)
    calibration = images(case, 6) if config.needs_calibration else None
    return to_crossbar(nn.Sequential(layer), report, config, calibration=calibration,
                       device=device)
