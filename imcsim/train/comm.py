"""What every gradient compressor shares: its config, the byte counter, the hook protocol.

The compressors (``imcsim.train.grad_compression`` for the dispatch and the PyTorch hooks,
``imcsim.train.greedylore``) import this module; it imports none of them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal, Protocol

import torch
import torch.distributed as dist
from pydantic import Field, model_validator
from torch import nn

from imcsim._config import StrictModel

__all__ = ["METHODS", "CommCounter", "CommHook", "GradCompression", "classifier_params",
           "completed_future"]

METHODS = ("none", "powersgd", "greedylore")


class GradCompression(StrictModel):
    """How workers exchange gradients."""

    method: Literal["none", "powersgd", "greedylore"] = "none"
    """none (dense all-reduce), powersgd (PyTorch's hook) or greedylore."""
    rank: int = Field(default=4, ge=1)
    """Directions (greedylore) or factor columns (powersgd) sent per matrix."""
    warmup_steps: int = Field(default=10, ge=0)
    """First optimizer steps sent dense (powersgd needs >= 2: DDP rebuilds buckets at step 1)."""
    refresh_every_steps: int = Field(default=200, ge=1)
    """GreedyLore: steps between basis refreshes (each refresh step is sent dense)."""
    min_compression: float = Field(default=2.0, ge=1)
    """A matrix is compressed only if its dense size is at least this many times the payload."""
    side: Literal["short", "long"] = "short"
    """GreedyLore: basis of the shorter side of each matrix (the paper's) or of the longer one."""

    @model_validator(mode="after")
    def _powersgd_warmup(self) -> GradCompression:
        if self.method == "powersgd" and self.warmup_steps < 2:
            raise ValueError(f"powersgd needs warmup_steps >= 2 (got {self.warmup_steps})")
        return self


@dataclass
class CommCounter:
    """Bytes one worker handed to collectives, and what uncompressed DDP would have sent."""

    bytes_communicated: int = 0
    bytes_uncompressed: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class CommHook(Protocol):
    """What :func:`attach` returns: the DDP hook state of one worker."""

    counter: CommCounter

    def communicate(self, bucket: dist.GradBucket) -> torch.futures.Future[torch.Tensor]: ...
    def state_dict(self) -> dict: ...
    def load_state_dict(self, state: dict) -> None: ...


def classifier_params(model: nn.Module) -> frozenset[str]:
    """Names of the parameters of the last ``nn.Linear`` (the classifier), sent dense."""
    last = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not last:
        return frozenset()
    prefix, module = last[-1]
    return frozenset(f"{prefix}.{n}" if prefix else n for n, _ in module.named_parameters())


def completed_future(value: torch.Tensor) -> torch.futures.Future[torch.Tensor]:
    """A future already holding ``value`` (the hooks here finish their collectives inline)."""
    future: torch.futures.Future[torch.Tensor] = torch.futures.Future()
    future.set_result(value)
    return future
