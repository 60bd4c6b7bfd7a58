"""The resumable state of a training run: saved atomically, checked on read, and saved
once more when Ctrl-C stops the run between two optimizer steps.

The state file holds ``{"model", "optimizer", "step", "loss", "config"}`` (plain
``torch.save`` of tensors and builtins, read back with ``weights_only=True``).  A file
that cannot be read, has the wrong fields, or was written with other settings is a
one-line ``ConfigError`` that says to delete it; it is never half trusted.
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from typing import Any

import torch
from torch import nn

from imcsim._config import StrictModel
from imcsim.errors import ConfigError
from imcsim.nn.extract import check_finite

__all__ = ["DeferInterrupt", "TrainInterrupted", "load_state", "read_state", "save_state"]


class TrainInterrupted(KeyboardInterrupt):
    """Ctrl-C during ``train``: the state at ``step`` was saved to ``state_path``."""

    def __init__(self, state_path: Path, step: int, total: int) -> None:
        super().__init__(f"training state saved to {state_path} (step {step} of {total})")
        self.state_path, self.step, self.total = state_path, step, total


class DeferInterrupt:
    """Hold Ctrl-C until the current optimizer step ends (main thread, default handler
    only); a second Ctrl-C interrupts at once."""

    def __init__(self) -> None:
        self.hit = False
        self._old: Any = None

    def __enter__(self) -> DeferInterrupt:
        main = threading.current_thread() is threading.main_thread()
        if main and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            self._old = signal.signal(signal.SIGINT, self._handler)
        return self

    def _handler(self, _signum: int, _frame: object) -> None:
        self.hit = True
        signal.signal(signal.SIGINT, self._old)

    def __exit__(self, *exc: object) -> None:
        if self._old is not None and signal.getsignal(signal.SIGINT) == self._handler:
            signal.signal(signal.SIGINT, self._old)


def save_state(path: Path, model: nn.Module, opt: torch.optim.Optimizer, step: int,
               config: StrictModel, loss: float) -> None:
    """Write the state next to ``path`` and move it into place (a kill never tears it)."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step,
                "loss": loss, "config": config.model_dump()}, tmp)
    os.replace(tmp, path)


def read_state(path: Path, total: int) -> dict[str, Any]:
    """The saved training state at ``path``, checked field by field (``config`` a dict)."""
    broken = f"training state {str(path)!r} is unreadable or corrupt"
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is a corrupt file
        raise ConfigError(f"{broken} ({type(exc).__name__}); delete it to restart") from None
    shape_ok = (isinstance(state, dict) and isinstance(state.get("model"), dict)
                and isinstance(state.get("optimizer"), dict)
                and isinstance(state.get("config"), dict)
                and type(state.get("step")) is int and 0 <= state["step"] <= total)
    if not shape_ok:
        raise ConfigError(f"{broken} (missing or mistyped fields); delete it to restart")
    return state


def load_state(path: Path, model: nn.Module, opt: torch.optim.Optimizer,
               config: StrictModel, total: int) -> tuple[int, float]:
    """Restore model and optimizer from ``path``; return (steps done, last loss)."""
    state = read_state(path, total)
    if state["config"] != config.model_dump():
        raise ConfigError(
            f"training state {path} was written with other settings; delete it to restart"
        )
    for name, tensor in state["model"].items():
        if isinstance(tensor, torch.Tensor):
            check_finite(tensor, f"training state {path.name}: {name}")
    try:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
    except (RuntimeError, ValueError, KeyError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"training state {path} does not fit the model: {first}; "
                          "delete it to restart") from None
    loss = state.get("loss", float("nan"))
    return state["step"], float(loss) if isinstance(loss, (int, float)) else float("nan")
