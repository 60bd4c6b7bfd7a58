"""``--metric``: what "accuracy on the chip" means for a workload.

* ``top1`` / ``top5``: fraction of test examples whose label is among the 1 / 5 largest
  outputs (classifiers);
* ``perplexity``: ``exp`` of the mean next-token cross-entropy of a causal language model
  on token sequences (position t predicts token t+1; Jelinek et al. 1977, the usual LM
  figure of merit) — lower is better;
* ``mse``: mean squared error of the outputs against ``y`` (regression) — lower is better;
* ``FILE.py:FUNCTION``: ``FUNCTION(outputs, targets) -> float`` on the whole test split's
  outputs (concatenated over batches) and targets.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from imcsim.errors import ConfigError
from imcsim.zoo.inputs import logits_of

__all__ = ["BUILTIN_METRICS", "Metric", "evaluate_metric", "resolve_metric"]

Batch = tuple[float, int]


def _topk(k: int) -> Callable[[torch.Tensor, torch.Tensor], Batch]:
    def score(logits: torch.Tensor, y: torch.Tensor) -> Batch:
        if logits.dim() != 2:
            raise ConfigError(f"--metric top{k}: the model outputs {tuple(logits.shape)}, not "
                              "(N, classes) scores")
        top = logits.topk(min(k, logits.shape[1]), dim=1).indices
        return float((top == y[:, None]).any(1).sum()), len(y)
    return score


def _perplexity(logits: torch.Tensor, tokens: torch.Tensor) -> Batch:
    if logits.dim() != 3:
        raise ConfigError(f"--metric perplexity: the model outputs {tuple(logits.shape)}, not "
                          "(N, T, vocabulary) next-token scores (a causal LM head)")
    pred, target = logits[:, :-1].float(), tokens[:, 1:]
    loss = nn.functional.cross_entropy(pred.reshape(-1, pred.shape[-1]), target.reshape(-1),
                                       reduction="sum")
    return float(loss), target.numel()


def _mse(out: torch.Tensor, y: torch.Tensor) -> Batch:
    if out.shape != y.shape:
        raise ConfigError(f"--metric mse: outputs {tuple(out.shape)} and targets "
                          f"{tuple(y.shape)} differ in shape")
    return float(((out.float() - y.float()) ** 2).sum()), out.numel()


BUILTIN_METRICS: dict[str, Callable[[torch.Tensor, torch.Tensor], Batch]] = {
    "top1": _topk(1), "top5": _topk(5), "perplexity": _perplexity, "mse": _mse,
}


@dataclass(frozen=True)
class Metric:
    """A named metric: per-batch (sum, count) for the built-ins, or a user function."""

    name: str
    batch: Callable[[torch.Tensor, torch.Tensor], Batch] | None = None
    whole: Callable[[Any, Any], float] | None = None

    @property
    def labels(self) -> bool:
        """Whether the targets are class labels (checked against the outputs)."""
        return self.name in ("top1", "top5")

    @property
    def higher_is_better(self) -> bool:
        return self.name in ("top1", "top5") or self.whole is not None


def resolve_metric(spec: str) -> Metric:
    """A built-in metric name or ``FILE.py:FUNCTION``."""
    if spec in BUILTIN_METRICS:
        return Metric(spec, batch=BUILTIN_METRICS[spec])
    if ":" not in spec:
        raise ConfigError(f"--metric {spec!r}: expected {', '.join(BUILTIN_METRICS)} or "
                          "FILE.py:FUNCTION")
    from imcsim.zoo.user_models import _load_module

    target, _, func = spec.rpartition(":")
    try:
        fn = getattr(_load_module(target), func)
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure of user code is one line
        raise ConfigError(f"--metric {spec}: {type(exc).__name__}: {exc}") from None
    if not callable(fn):
        raise ConfigError(f"--metric {spec}: {func} is not a function")
    return Metric(spec, whole=fn)


@torch.no_grad()
def evaluate_metric(model: nn.Module, metric: Metric, x: torch.Tensor, y: torch.Tensor,
                    batch_size: int = 100) -> float:
    """``metric`` of ``model`` (eval mode, restored after) on ``x`` with targets ``y``."""
    if len(x) == 0:
        raise ConfigError("evaluate: no test examples")
    was_training = model.training
    model.eval()
    total, count, outputs = 0.0, 0, []
    try:
        for start in range(0, len(x), batch_size):
            out = logits_of(model(x[start:start + batch_size]))
            if metric.batch is not None:
                s, n = metric.batch(out, y[start:start + batch_size])
                total, count = total + s, count + n
            else:
                outputs.append(out)
    finally:
        model.train(was_training)
    if metric.whole is not None:
        value = metric.whole(torch.cat(outputs), y)
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"--metric {metric.name}: returned {type(value).__name__}, "
                              "not a number") from None
    mean = total / count
    return float(torch.exp(torch.tensor(mean, dtype=torch.float64))) if metric.name == "perplexity" else mean
