"""The slow accuracy of ``imcsim explore``: fine-tune and evaluate k points of the front,
next to their proxy, and how well the proxy ranks them.

The k points are spread evenly along the front (sorted by its first objective).  Each is
rebuilt from its spec, fine-tuned with the project's resumable training
(``studies.train.finetune``, state in ``DIR/measured/<trial>.state``) on ``train_images``
seeded random training images, and its top-1 accuracy measured on ``test_images`` seeded test images
(float weights: the crossbar evaluation of ``imcsim accuracy`` replays the exported spec).
Finished points are kept in ``DIR/measured.json`` (rerun to continue).  The agreement of
proxy and measurement is Spearman's rank correlation (ties share their mean rank).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from imcsim.errors import ConfigError
from imcsim.studies.explore import front, open_study
from imcsim.studies.explore_point import Workbench
from imcsim.studies.explore_space import ExploreSpec, Point
from imcsim.train.loop import TrainConfig, evaluate, finetune

__all__ = ["MEASURED", "measure_front", "spearman"]

MEASURED = "measured.json"


def _ranks(values: list[float]) -> list[float]:
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2
        i = j + 1
    return ranks


def spearman(a: list[float], b: list[float]) -> float | None:
    """Spearman's rank correlation of two equal-length lists (None: fewer than 3 or constant)."""
    if len(a) != len(b) or len(a) < 3:
        return None
    ra, rb = _ranks(a), _ranks(b)
    ma, mb = sum(ra) / len(ra), sum(rb) / len(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    va, vb = sum((x - ma) ** 2 for x in ra), sum((y - mb) ** 2 for y in rb)
    return None if va == 0 or vb == 0 else cov / (va * vb) ** 0.5


def _picked(rows: list[dict[str, Any]], k: int) -> list[dict[str, Any]]:
    if k >= len(rows):
        return rows
    step = (len(rows) - 1) / max(1, k - 1)
    return [rows[round(i * step)] for i in range(k)]


def _measure_one(bench: Workbench, point: Point, root: Path, trial: int, epochs: int,
                 train_images: int, test: tuple[torch.Tensor, torch.Tensor]) -> float:
    model = bench.compress(point)
    if epochs:
        data = bench.data  # a seeded random subset: the splits are sorted by class
        pick = torch.randperm(len(data.train_images),
                              generator=torch.Generator().manual_seed(point.seed))[:train_images]
        (root / "measured").mkdir(exist_ok=True)
        finetune(model, data.train_images[pick], data.train_labels[pick],
                 TrainConfig(epochs=epochs, lr=0.01, warmup_steps=0, seed=point.seed),
                 state_path=root / "measured" / f"{trial}.state")
    return evaluate(model, *test)


def measure_front(spec: ExploreSpec, out: str | Path, k: int, epochs: int = 1,
                  train_images: int = 1000, test_images: int = 1000) -> dict[str, Any]:
    """Fine-tune and evaluate ``k`` front points; ``{"points": [...], "spearman": ρ}``."""
    if k < 1:
        raise ConfigError(f"--measure must be at least 1 (got {k})")
    root = Path(out)
    rows = _picked(front(open_study(root), spec), k)
    path = root / MEASURED
    done: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    bench = Workbench.build(spec, spec.proxy_images, spec.conventions.dense_layers)
    order = torch.randperm(len(bench.data.test_images),
                           generator=torch.Generator().manual_seed(spec.seed))[:test_images]
    test = (bench.data.test_images[order], bench.data.test_labels[order])
    for row in rows:
        key = f"{row['trial']}:{epochs}:{train_images}:{test_images}"
        if key not in done:
            point = Point.parse(row["spec"])
            done[key] = _measure_one(bench, point, root, row["trial"], epochs, train_images, test)
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(json.dumps(done, indent=1))
            tmp.replace(path)
    points = [{"trial": r["trial"], "cycles": r["cycles"], "energy_pj": r["energy_pj"],
               "accuracy_proxy": r["accuracy_proxy"],
               "accuracy": done[f"{r['trial']}:{epochs}:{train_images}:{test_images}"],
               "families": r["families"]} for r in rows]
    rho = spearman([p["accuracy_proxy"] for p in points], [p["accuracy"] for p in points])
    return {"points": points, "spearman": rho, "finetune_epochs": epochs,
            "train_images": train_images, "test_images": test_images}
