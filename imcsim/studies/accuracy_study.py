"""Accuracy studies: one prepared model under many chips, and many compressions side by side.

* :func:`sweep` — accuracy as the ADC resolution drops (one series per ADC calibration
  method), as noise grows, as wire resistance grows (IR drop) and as the chip ages (drift),
  everything else fixed (one mapped model, one set of test images).
* :func:`compression_study` — dense, pruned, low-rank and group low-rank models at the same
  parameter budget, fine-tuned, each on its own mapper: parameters, computing cycles, float
  accuracy, ideal-chip accuracy and accuracy under low-precision ADCs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from imcsim.compression import transform_of
from imcsim.nn.crossbar import CrossbarConfig
from imcsim.studies.accuracy import AccuracySpec, Prepared, evaluate_on_chip, prepare

if TYPE_CHECKING:
    from imcsim.train.distributed import DistributedConfig

__all__ = ["STUDY_METHODS", "StudyRow", "compression_study", "markdown_table", "remap", "sweep"]

STUDY_METHODS: tuple[tuple[str, str], ...] = (
    ("dense", "im2col"),
    ("dense", "vw-sdk"),
    ("pruned-pattern", "pruned-sdk"),
    ("pruned-unstructured", "pruned-sdk"),
    ("low-rank", "low-rank-sdk"),
    ("group-low-rank", "low-rank-sdk"),
)
"""(method, mapper) pairs of the compression study."""

_DEVICE_OVERRIDES = ("wire_resistance_ohm", "drift_time_s", "adc_offset_lsb", "adc_dnl_lsb")
"""Device effects a sweep's base may ask for; its ``ideal`` row clears them."""


def sweep(
    prepared: Prepared, base: CrossbarConfig, adc_bits: Sequence[int], noise: Sequence[float],
    *, calibrations: Sequence[str] = (), wire_resistances: Sequence[float] = (),
    drift_times: Sequence[float] = (),
) -> list[dict[str, Any]]:
    """Rows of accuracy vs ADC bits (noise 0; one series per ADC calibration method), vs
    programming+read noise, vs wire resistance (IR drop) and vs read time (drift, without
    then with global compensation); every row but the ADC series at the base ADC bits."""
    ideal = base.replace(ideal=True, **{f: None for f in _DEVICE_OVERRIDES})
    rows = [_row(prepared, ideal, "ideal", "-")]
    for method in calibrations or (base.adc_calibration,):
        for bits in adc_bits:
            config = base.replace(adc_bits=bits, adc_calibration=method)
            rows.append(_row(prepared, config, "adc_bits", bits))
    for sigma in noise:
        config = base.replace(programming_noise=sigma, read_noise=sigma)
        rows.append(_row(prepared, config, "noise_sigma", sigma))
    for ohm in wire_resistances:
        rows.append(_row(prepared, base.replace(wire_resistance_ohm=ohm), "wire_resistance_ohm",
                         ohm))
    for seconds in drift_times:
        for compensate in (False, True):
            config = base.replace(drift_time_s=seconds, drift_compensation=compensate)
            rows.append(_row(prepared, config, "drift_time_s", seconds))
    return rows


def _row(prepared: Prepared, config: CrossbarConfig, varied: str, value: Any) -> dict[str, Any]:
    result = evaluate_on_chip(prepared, config)
    data = result.to_dict()
    return {"varied": varied, "value": value, "adc_bits": data["adc_bits"],
            "adc_calibration": data["adc_calibration"], "noise_sigma": data["programming_noise"],
            "wire_resistance_ohm": data["wire_resistance_ohm"],
            "ir_drop_compensation": data["ir_drop_compensation"],
            "drift_time_s": data["drift_time_s"], "drift_compensation": data["drift_compensation"],
            "accuracy": data["accuracy"], "float_accuracy": prepared.float_accuracy,
            **({} if prepared.metric.name == "top1" else
               {data["metric_name"]: data["metric"], f"float_{data['metric_name']}":
                data["float_metric"]}),
            "calibration_images": data["calibration_images"], "adc_clipped": data["adc_clipped"]}


@dataclass(frozen=True)
class StudyRow:
    """One compressed model on one mapper: its cost and its accuracy on each chip."""

    model: str
    array: str
    method: str
    mapper: str
    keep: float
    params: int
    cycles: int
    float_accuracy: float
    chip_accuracy: dict[str, float]
    """Accuracy per chip condition: ``ideal chip``, ``adc 6b``…"""

    def row(self) -> dict[str, Any]:
        """The table row: method, mapper, params, cycles, float and per-chip accuracy."""
        return {"method": self.method, "mapper": self.mapper, "params": self.params,
                "cycles": self.cycles, "float": self.float_accuracy, **self.chip_accuracy}

    def to_records(self) -> list[dict[str, Any]]:
        """One network-level record per chip condition (what ``plot_pareto`` reads)."""
        transform = transform_of(self.method)
        return [{"model": self.model, "array": self.array, "compression": transform,
                 "keep": 1.0 if transform == "dense" else self.keep, "mapper": self.mapper,
                 "chip": chip, "adc_bits": None, "params": self.params,
                 "latency_cycles": self.cycles, "accuracy": accuracy}
                for chip, accuracy in self.chip_accuracy.items()]


def compression_study(
    spec: AccuracySpec, base: CrossbarConfig, adc_bits: Sequence[int],
    methods: Sequence[tuple[str, str]] = STUDY_METHODS, parallel: DistributedConfig | None = None,
) -> list[StudyRow]:
    """One row per (method, mapper): params, cycles, float / ideal-chip / low-ADC accuracy;
    ``parallel`` runs each fine-tuning data-parallel."""
    rows, cache = [], {}
    for method, mapper in methods:
        mspec = spec.replace(method=method, mapper=mapper)
        key = method
        if key in cache:  # same compressed, fine-tuned weights, another mapping
            prepared = remap(cache[key], mspec)
        else:
            prepared = cache[key] = prepare(mspec, parallel)
        chips = {"ideal chip": evaluate_on_chip(prepared, base.replace(ideal=True)).accuracy}
        for bits in adc_bits:
            chips[f"adc {bits}b"] = evaluate_on_chip(prepared, base.replace(adc_bits=bits)).accuracy
        rows.append(StudyRow(
            model=spec.model, array=spec.chip.array.label, method=method, mapper=mapper,
            keep=spec.keep, params=prepared.report.total()["params"],
            cycles=prepared.report.cycles, float_accuracy=prepared.float_accuracy,
            chip_accuracy=chips))
    return rows


def remap(prepared: Prepared, spec: AccuracySpec) -> Prepared:
    """The same trained model mapped again with ``spec``'s mapper and chip."""
    from dataclasses import replace

    from imcsim.network import map_network
    from imcsim.nn.extract import extract_layers

    layers = extract_layers(prepared.model, prepared.images[:1])
    report = map_network(layers.layers, spec.mapper, spec.chip, model=spec.model,
                         unmapped=layers.unmapped)
    return replace(prepared, spec=spec, report=report)


PERCENT_COLUMNS = ("accuracy", "float_accuracy", "float", "ideal chip")


def _cell(column: str, value: Any) -> str:
    if isinstance(value, float) and (column in PERCENT_COLUMNS or column.startswith("adc ")):
        return f"{100 * value:.1f} %"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """A GitHub markdown table; accuracies print as percentages."""
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |",
             "|" + "|".join("---" if i < 2 else "---:" for i in range(len(cols))) + "|"]
    lines += ["| " + " | ".join(_cell(c, r[c]) for c in cols) + " |" for r in rows]
    return "\n".join(lines)
