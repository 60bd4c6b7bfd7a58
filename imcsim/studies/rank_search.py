"""Rank search on a built-in model with real data: search, fine-tune, evaluate, resumably.

``run_rank_search(spec)`` loads the trained model (the shipped checkpoint or
``spec.checkpoint``) and the offline data, optionally trains the dense model a few epochs
with the stable-rank regulariser (BSR's compression-friendly training), runs
``imcsim.nn.compress.search.search_ranks`` (calibration images from the training split,
held-out images — disjoint, also from the training split — for the per-layer output
errors), measures top-1 accuracy before and after fine-tuning on test images, and returns
one JSON-able record: ``{"spec", "layers": [...], "total": {...}}``.

With ``state_dir`` every finished stage is saved there (the selection, BO's trial journal,
the fine-tuning state, the final record); a rerun of the same spec continues where it
stopped, and a different spec is refused.
"""

from __future__ import annotations

import contextlib
import copy
import json
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from pydantic import Field
from torch import nn

from imcsim._config import StrictModel
from imcsim.conventions import Conventions
from imcsim.errors import ConfigError, ImcsimWarning
from imcsim.hardware import ChipConfig
from imcsim.nn.compress.calibration import capture_input_stats
from imcsim.nn.compress.exclusions import dense_layer_names
from imcsim.nn.compress.hwcost import Budget
from imcsim.nn.compress.lowrank import targets
from imcsim.nn.compress.modules import Split
from imcsim.nn.compress.search import SearchResult, search_ranks
from imcsim.nn.compress.selectors import SearchConfig
from imcsim.nn.compress.space import Option
from imcsim.nn.compress.stable_rank import stable_rank_penalty
from imcsim.nn.devices import module_device
from imcsim.studies.outputs import check_output_dir, exclusive
from imcsim.studies.results import DIGEST_FIELD, check_seal, code_version, record_digest
from imcsim.train.loop import TrainConfig, TrainProgress, evaluate, finetune
from imcsim.zoo.checkpoints import Dataset, checkpoint_path, load_checkpoint, load_data
from imcsim.zoo.workload import Workload, load_workload

if TYPE_CHECKING:
    from imcsim.train.distributed import DistributedConfig

__all__ = ["RankSearchResult", "RankSearchSpec", "factorization_errors", "run_rank_search"]

Progress = Callable[[str, int, int], None]


class RankSearchSpec(StrictModel):
    """One rank search: model, data, chip, factorisation, selector, budget, fine-tuning."""

    model: str = "resnet20"
    """Built-in 32×32 model."""
    chip: ChipConfig
    """Array geometry (and cost model for energy budgets)."""
    mapper: str = "sdk"
    """Mapper of R and of dense layers (factor pairs go through its low-rank pair mapper)."""
    factorization: str = "svd"
    selector: str = "uniform"
    budget: Budget | None = None
    keep: float | None = Field(default=None, gt=0, le=1)
    """Budget of this fraction of the model's weights (instead of ``budget``)."""
    search: SearchConfig = SearchConfig()
    groups: tuple[int, ...] = (1,)
    """Allowed group counts (ALDS chooses among them; other selectors take one)."""
    split: Split = "input"
    snap: bool = False
    """Restrict ranks to tile boundaries of the mapping."""
    exclude: tuple[str, ...] = ()
    """Layers left dense (module names)."""
    calibration_images: int = Field(default=128, ge=1)
    heldout_images: int = Field(default=128, ge=1)
    images: int = Field(default=1000, ge=0)
    """Test images for accuracy (0: no accuracy)."""
    finetune_epochs: int = Field(default=0, ge=0)
    stable_rank_epochs: int = Field(default=0, ge=0)
    """Epochs of dense training with the stable-rank regulariser before the search."""
    stable_rank_weight: float = Field(default=0.1, ge=0)
    seed: int = 0
    """Seed of the image subsets, fine-tuning and the selectors."""
    checkpoint: Path | None = None
    dataset: str = "mnist5k"
    data_dir: Path | None = None
    workload: Workload | None = None
    """A user's model, weights and data (``imcsim.zoo.workload``); replaces ``model``,
    ``checkpoint``, ``dataset`` and ``data_dir`` when set."""
    conventions: Conventions | None = None
    """Counting conventions (``imcsim.conventions``): R's mapper and L's schedule replace
    ``mapper``, their cycle count is the budget's, their snapping and dense layers add to
    ``snap`` and ``exclude``."""

    def settings(self, model: nn.Module) -> dict[str, Any]:
        """``search_ranks`` keywords: mapper, snap, excluded layers, cycle count."""
        conv = self.conventions
        if conv is None:
            return {"mapper": self.mapper, "snap": self.snap, "exclude": self.exclude}
        dense = tuple(n for n in dense_layer_names(model, conv.dense_layers) if n not in self.exclude)
        return {"mapper": conv.mapper(), "snap": self.snap or conv.snap,
                "exclude": self.exclude + dense, "cycle_count": conv.cycles}


@dataclass(frozen=True)
class RankSearchResult:
    """The record of one run, and the compressed model (``None`` if read back from state)."""

    record: dict[str, Any]
    model: nn.Module | None

    def to_records(self) -> list[dict[str, Any]]:
        """One flat record: what was searched (selector, factorisation, budget…) and totals."""
        spec = self.record["spec"]
        budget = spec["budget"] or {"kind": "params", "value": None}
        return [{**self.record["total"], "model": spec["model"], "mapper": spec["mapper"],
                 "selector": spec["selector"], "factorization": spec["factorization"],
                 "snap": spec["snap"], "budget_kind": budget["kind"], "budget": budget["value"]}]


def _load(spec: RankSearchSpec) -> tuple[nn.Module, Dataset]:
    if spec.workload is not None:
        loaded = load_workload(spec.workload)
        if not loaded.metric.labels:
            raise ConfigError(f"rank-search measures top-1 accuracy on class labels; metric "
                              f"{loaded.metric.name} has none")
        return loaded.model, loaded.require_data("rank-search")
    path = spec.checkpoint or checkpoint_path(spec.model)
    if spec.checkpoint is None and not path.exists():
        raise ConfigError(f"model {spec.model!r} has no shipped weights; pass --checkpoint")
    model, _ = load_checkpoint(spec.model, path)
    return model, load_data(spec.model, spec.dataset, spec.data_dir)


def _split_images(spec: RankSearchSpec, data: Dataset) -> dict[str, torch.Tensor]:
    need = spec.calibration_images + spec.heldout_images
    if need > len(data.train_images):
        raise ConfigError(f"calibration + held-out images ({need}) exceed the "
                          f"{len(data.train_images)} training images")
    order = torch.randperm(len(data.train_images), generator=torch.Generator().manual_seed(spec.seed))
    cal, held = order[:spec.calibration_images], order[spec.calibration_images:need]
    test = torch.randperm(len(data.test_images), generator=torch.Generator().manual_seed(spec.seed))
    test = test[:min(spec.images, len(test))]
    return {"cal": data.train_images[cal], "cal_labels": data.train_labels[cal],
            "held": data.train_images[held], "test": data.test_images[test],
            "test_labels": data.test_labels[test]}


class _State:
    """Files of a resumable run under ``root`` (or nothing when ``root`` is None)."""

    def __init__(self, root: Path | None, spec: RankSearchSpec) -> None:
        self.root = root
        if root is None:
            return
        content = None if spec.workload is None else spec.workload.content()
        mine = json.dumps({"spec": json.loads(spec.model_dump_json()), "code": code_version(),
                           "workload": content})
        saved = root / "spec.json"
        if saved.exists() and saved.read_text() != mine:
            raise ConfigError(f"state dir {str(root)!r} holds another rank search (other spec "
                              "or another imcsim version); use a new one")
        saved.write_text(mine)

    def path(self, name: str) -> Path | None:
        return None if self.root is None else self.root / name

    def read(self, name: str) -> Any:
        """A stage's saved data, or None (not saved, or changed since it was written:
        its digest does not match — then a warning, and the stage is recomputed)."""
        path = self.path(name)
        if path is None or not path.exists():
            return None
        try:
            saved = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"state file {str(path)!r} is unreadable ({exc}); "
                              "delete it to recompute that stage") from None
        if not isinstance(saved, dict) or "data" not in saved or check_seal(saved):
            warnings.warn(f"state file {str(path)!r} does not match its digest (edited or "
                          "corrupted); recomputing that stage", ImcsimWarning, stacklevel=2)
            return None
        return saved["data"]

    def write(self, name: str, data: Any) -> None:
        path = self.path(name)
        if path is not None:
            tmp = path.with_name(path.name + ".tmp")
            sealed = {"data": json.loads(json.dumps(data))}
            tmp.write_text(json.dumps({**sealed, DIGEST_FIELD: record_digest(sealed)}, indent=1))
            tmp.replace(path)


def _train(model: nn.Module, data: Dataset, epochs: int, spec: RankSearchSpec, state: _State,
           name: str, progress: Progress | None, penalty=None, parallel=None) -> None:
    config = TrainConfig(epochs=epochs, lr=0.01, warmup_steps=0, seed=spec.seed)

    def report(event: TrainProgress) -> None:
        if progress is not None:
            progress(name, event.step, event.total_steps)

    finetune(model, data.train_images, data.train_labels, config, progress=report,
             state_path=state.path(f"{name}.state"), penalty=penalty, parallel=parallel)


def _regularised(model: nn.Module, data: Dataset, spec: RankSearchSpec, state: _State,
                 progress: Progress | None) -> nn.Module:
    """The dense model after ``stable_rank_epochs`` of stable-rank-regularised training."""
    if spec.stable_rank_epochs == 0:
        return model
    saved = state.path("regularised.pt")
    if saved is not None and saved.exists():
        model.load_state_dict(torch.load(saved, weights_only=True))
        return model.eval()
    names = [n for n, _ in targets(model, spec.exclude)]
    _train(model, data, spec.stable_rank_epochs, spec, state, "stable-rank", progress,
           stable_rank_penalty(names, spec.stable_rank_weight))
    if saved is not None:
        torch.save(model.state_dict(), saved)
    return model.eval()


def _statistics(model: nn.Module, images: dict[str, torch.Tensor], spec: RankSearchSpec,
                cache: dict | None) -> tuple[dict, dict] | None:
    """Calibration and held-out statistics, from ``cache`` when another run of the same
    model, images and excluded layers filled it (regularised models are never cached)."""
    if cache is None or spec.stable_rank_epochs:
        return None
    key = (spec.model, spec.workload and spec.workload.key(), str(spec.checkpoint), spec.dataset,
           spec.seed, spec.calibration_images,
           spec.heldout_images, spec.exclude)
    if key not in cache:
        names = [n for n, _ in targets(model, spec.exclude)]
        cache[key] = (capture_input_stats(model, names, images["cal"]),
                      capture_input_stats(model, names, images["held"]))
    return cache[key]


def _search(model: nn.Module, images: dict[str, torch.Tensor], spec: RankSearchSpec,
            state: _State, progress: Progress | None, cache: dict | None) -> SearchResult:
    saved = state.read("selection.json")
    search = spec.search.model_copy(update={"seed": spec.seed, "state_dir": state.root})
    stats = _statistics(model, images, spec, cache)
    result = search_ranks(
        model, images["cal"], spec.chip, labels=images["cal_labels"], heldout=images["held"],
        factorization=spec.factorization, selector=spec.selector,
        budget=spec.budget, keep=spec.keep, groups=spec.groups, split=spec.split,
        config=search, progress=progress, **spec.settings(model),
        selection=None if saved is None else [Option(**o) for o in saved],
        stats=None if stats is None else stats[0], heldout_stats=None if stats is None else stats[1],
    )
    state.write("selection.json", [vars(o) for o in result.selection])
    return result


def _accuracy(model: nn.Module, images: dict[str, torch.Tensor]) -> float | None:
    if len(images["test"]) == 0:
        return None
    return evaluate(model, images["test"], images["test_labels"])


def run_rank_search(spec: RankSearchSpec, state_dir: str | Path | None = None,
                    progress: Progress | None = None, cache: dict | None = None,
                    parallel: DistributedConfig | None = None) -> RankSearchResult:
    """Search, fine-tune and evaluate (see the module docstring).  ``cache``: a dict the
    caller owns, shared by runs that may reuse each other's activation statistics;
    ``parallel`` runs the fine-tuning data-parallel (the stable-rank training stays on one
    process)."""
    root = None if state_dir is None else check_output_dir(state_dir, "state dir")
    with contextlib.nullcontext() if root is None else exclusive(root, "state dir"):
        return _run(spec, _State(root, spec), progress, cache, parallel)


def _run(spec: RankSearchSpec, state: _State, progress: Progress | None,
         cache: dict | None, parallel: DistributedConfig | None = None) -> RankSearchResult:
    done = state.read("result.json")
    if done is not None:
        return RankSearchResult(record=done, model=None)
    model, data = _load(spec)
    images = _split_images(spec, data)
    dense = _regularised(copy.deepcopy(model), data, spec, state, progress)
    start = time.perf_counter()
    result = _search(dense.cpu(), images, spec, state, progress, cache)  # CPU code
    seconds = time.perf_counter() - start
    float_accuracy = _accuracy(model, images)
    compressed = result.model.to(module_device(model))  # trained on the run device
    before = _accuracy(compressed, images)
    if spec.finetune_epochs:
        _train(compressed, data, spec.finetune_epochs, spec, state, "finetune", progress,
               parallel=parallel)
    record = _record(spec, result, seconds, float_accuracy, before, _accuracy(compressed, images),
                     len(images["test"]))
    state.write("result.json", record)
    return RankSearchResult(record=record, model=compressed.eval())


def _record(spec: RankSearchSpec, result: SearchResult, seconds: float, float_accuracy: float | None,
            before: float | None, after: float | None, images: int) -> dict[str, Any]:
    total, dense = result.total, result.dense
    summary: dict[str, Any] = {
        "params": total.params, "macs": total.macs, "cycles": total.cycles,
        "energy_pj": total.energy_pj, "dense_params": dense.params, "dense_cycles": dense.cycles,
        "dense_energy_pj": dense.energy_pj,
        "budget": None if result.budget is None else result.budget.model_dump(),
        "factorized_layers": sum(c.factorized for c in result.layers),
        "search_seconds": round(seconds, 2),
        "networks_scored": result.problem.scorer.evaluations if result.problem.scorer else 0,
        "finetune_epochs": spec.finetune_epochs,
    }
    if float_accuracy is not None:
        summary.update(float_accuracy=float_accuracy, accuracy_before_finetune=before,
                       accuracy=after, images=images)
    return {"spec": json.loads(spec.model_dump_json()),
            "layers": [c.to_dict() for c in result.layers], "total": summary}


def factorization_errors(
    model_name: str = "resnet20", rank_fraction: float = 0.25, calibration_images: int = 128,
    heldout_images: int = 128, seed: int = 0, factorizations: tuple[str, ...] = ("svd", "drone", "feature"),
) -> list[dict[str, Any]]:
    """Per layer of the shipped model: each factorisation's output error on held-out
    activations at rank ``round(rank_fraction · full rank)``, next to how low-rank the
    layer's inputs are (inputs' 90 %-energy rank of X Xᵀ over their dimension)."""
    from imcsim.nn.compress.bank import FactorBank
    from imcsim.nn.compress.factorizations import get_factorization
    from imcsim.nn.compress.rankrules import energy_fractions, ratio_rank

    if not 0 < rank_fraction <= 1:
        raise ConfigError(f"rank fraction must be in (0, 1] (got {rank_fraction})")
    spec = RankSearchSpec(model=model_name, chip=ChipConfig.parse({"array": {"rows": 1, "cols": 1}}),
                          calibration_images=calibration_images, heldout_images=heldout_images,
                          seed=seed)
    model, data = _load(spec)
    images = _split_images(spec, data)
    names = [n for n, _ in targets(model)]
    cal, held = (capture_input_stats(model, names, images[k]) for k in ("cal", "held"))
    banks = {f: FactorBank(model, names, get_factorization(f), cal) for f in factorizations}
    rows = []
    for name in names:
        full = banks[factorizations[0]].nested(name, 1)[0].full_rank
        rank = ratio_rank(full, rank_fraction)
        spectrum = torch.linalg.eigvalsh(cal[name].second).flip(0).clamp_min(0).sqrt()
        inputs = cal[name].second.shape[0]
        r90 = int((energy_fractions(spectrum) < 0.9).sum()) + 1
        row: dict[str, Any] = {"layer": name, "inputs": inputs, "input_rank90": r90,
                               "input_rank90_fraction": r90 / inputs, "rank": rank, "full_rank": full}
        for f, bank in banks.items():
            row[f] = bank.output_error(name, Option(1, rank), held[name])
        rows.append(row)
    return rows
