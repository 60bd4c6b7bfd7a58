"""One point of ``imcsim explore``: build the compressed model, map and cost it, and score
its accuracy proxy (torch side of ``explore_space``).

A point compresses each searched layer by its own family: low-rank and group low-rank
through the factor bank (``nn.compress.bank``: the chosen factorisation fitted on the
calibration images), pruning families through per-layer masks (``nn.compress.prune``).
The compressed model is captured again and mapped under the point's conventions
(``Conventions.mapper``) on an ISAAC-costed chip with the conventions' precisions, which
gives cycles (as the conventions count them), latency, energy, area and arrays held.  The
accuracy proxy is top-1 on held-out training images after batch-norm re-estimation on the
calibration images (no fine-tuning).  ``load_workload`` is the one place that reads the
model and its data (it becomes the Workload of ``imcsim.zoo`` at merge).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn.utils import prune as torch_prune

from imcsim.cost import estimate_network
from imcsim.errors import ConfigError
from imcsim.network import map_network
from imcsim.nn.compress.bank import FactorBank
from imcsim.nn.compress.calibration import InputStats, capture_input_stats
from imcsim.nn.compress.exclusions import dense_layer_names
from imcsim.nn.compress.factorizations import get_factorization
from imcsim.nn.compress.group import full_rank
from imcsim.nn.compress.lowrank import targets
from imcsim.nn.compress.prune import layer_mask
from imcsim.nn.compress.space import Option
from imcsim.nn.extract import extract_layers
from imcsim.studies.date2025 import recalibrate_batchnorm, study_chip
from imcsim.studies.explore_space import LayerPlan, Point
from imcsim.zoo.checkpoints import Dataset, checkpoint_path, load_checkpoint, load_data

__all__ = ["Workbench", "load_workload", "rank_for_keep", "replay", "weight_shape"]


def load_workload(model_name: str, checkpoint: Any, dataset: str, data_dir: Any
                  ) -> tuple[nn.Module, Dataset]:
    """The trained model (shipped weights or ``checkpoint``) and its data: the one place
    explore reads them (the Workload of ``imcsim.zoo`` replaces it)."""
    path = checkpoint or checkpoint_path(model_name)
    if checkpoint is None and not path.exists():
        raise ConfigError(f"model {model_name!r} has no shipped weights; pass --checkpoint")
    model, _ = load_checkpoint(model_name, path)
    return model.eval(), load_data(model_name, dataset, data_dir)


def weight_shape(module: nn.Module) -> tuple[int, int, int, int]:
    """(C_out, C_in, K_h, K_w) of a Conv2d or Linear (a Linear is 1×1)."""
    w = module.weight
    return (w.shape[0], w.shape[1], *(tuple(w.shape[2:]) or (1, 1)))


def rank_for_keep(shape: tuple[int, int, int, int], groups: int, keep: float) -> int:
    """The largest rank per group whose factors keep at most ``keep`` of the weights
    (at least 1): R holds C_in·K²·k, L holds g·k·C_out."""
    c_out, c_in, kh, kw = shape
    per_rank = c_in * kh * kw + groups * c_out
    top = full_rank(shape, groups, "input")
    return max(1, min(top, int(keep * c_out * c_in * kh * kw / per_rank + 1e-9)))


@dataclass
class Workbench:
    """What every point of one exploration shares: model, images, statistics, banks."""

    model: nn.Module
    data: Dataset
    names: list[str]
    """Searched layers (the conventions' dense layers left out)."""
    calibration: torch.Tensor
    proxy_images: torch.Tensor
    proxy_labels: torch.Tensor
    stats: dict[str, InputStats]
    banks: dict[str, FactorBank] = field(default_factory=dict)

    @classmethod
    def build(cls, point_like: Any, proxy_images: int, keep_dense: str) -> Workbench:
        """From anything with ``model``, ``checkpoint``, ``dataset``, ``data_dir``,
        ``calibration_images`` and ``seed`` (an ``ExploreSpec`` or a ``Point``)."""
        s = point_like
        model, data = load_workload(s.model, s.checkpoint, s.dataset, s.data_dir)
        need = s.calibration_images + proxy_images
        if need > len(data.train_images):
            raise ConfigError(f"calibration + proxy images ({need}) exceed the "
                              f"{len(data.train_images)} training images")
        order = torch.randperm(len(data.train_images),
                               generator=torch.Generator().manual_seed(s.seed))
        cal, held = order[:s.calibration_images], order[s.calibration_images:need]
        names = [n for n, _ in targets(model, dense_layer_names(model, keep_dense))]
        calibration = data.train_images[cal]
        return cls(model, data, names, calibration, data.train_images[held],
                   data.train_labels[held], capture_input_stats(model, names, calibration))

    def bank(self, factorization: str) -> FactorBank:
        if factorization not in self.banks:
            self.banks[factorization] = FactorBank(self.model, self.names,
                                                   get_factorization(factorization), self.stats)
        return self.banks[factorization]

    def shape(self, name: str) -> tuple[int, int, int, int]:
        return weight_shape(self.model.get_submodule(name))

    def groupable(self, name: str, groups: int) -> bool:
        """Whether layer ``name`` splits into ``groups`` input groups (a Conv2d only)."""
        module = self.model.get_submodule(name)
        return isinstance(module, nn.Conv2d) and module.in_channels % groups == 0

    def compress(self, point: Point) -> nn.Module:
        """The point's compressed copy of the model (batch norm re-estimated)."""
        unknown = sorted(set(point.layers) - set(self.names))
        if unknown:
            raise ConfigError(f"point: layer {unknown[0]!r} is not a searched layer of "
                              f"{point.model!r}")
        factored = {n: Option(p.groups, p.rank or 1) for n, p in point.layers.items()
                    if p.family in ("low-rank", "group-low-rank")}
        model = (self.bank(point.factorization).apply(factored) if factored
                 else copy.deepcopy(self.model))
        for name, plan in point.layers.items():
            _prune_layer(model.get_submodule(name), plan)
        recalibrate_batchnorm(model, self.calibration)
        return model.eval()

    def report(self, point: Point) -> tuple[nn.Module, list, Any]:
        """The compressed model, its layers and its costed report under the point's
        conventions, on an ISAAC-costed chip with the conventions' precisions."""
        model = self.compress(point)
        conv = point.conventions
        chip = study_chip(conv.precision_of(point.model), point.array)
        layers = extract_layers(model, self.calibration[:1]).layers
        return model, layers, estimate_network(
            map_network(layers, conv.mapper(), chip, model=point.model), chip)

    def measure(self, point: Point) -> tuple[nn.Module, dict[str, float]]:
        """The compressed model and every objective of the point."""
        from imcsim.studies.compare import active_arrays
        from imcsim.train.loop import evaluate

        model, layers, report = self.report(point)
        conv = point.conventions
        total = report.total()
        return model, {
            "cycles": float(conv.count(report.cycles, report.latency_cycles)),
            "latency_ns": float(total["latency_ns"]), "energy_pj": float(total["energy_pj"]),
            "area_um2": float(total["area_um2"]), "arrays": float(total["tiles"]),
            "active_arrays": float(active_arrays(report.mappings)),
            "params": float(sum(x.nonzero_params for x in layers)),
            "accuracy_proxy": evaluate(model, self.proxy_images, self.proxy_labels),
        }


def _prune_layer(module: nn.Module, plan: LayerPlan) -> None:
    if plan.family in ("dense", "low-rank", "group-low-rank") or plan.keep >= 1:
        return
    mask = layer_mask(module.weight, plan.family, 1 - plan.keep)
    torch_prune.custom_from_mask(module, "weight", mask)


def replay(point: Point) -> Any:
    """The costed report of an exported point, rebuilt from its spec alone (``map --spec``)."""
    bench = Workbench.build(point, 1, point.conventions.dense_layers)
    return bench.report(point)[2]
