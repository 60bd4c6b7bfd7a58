"""``--weights FILE``: a state dict in ``.pt`` (``torch.load(weights_only=True)``, never
unpickling code) or ``.safetensors`` (the ``safetensors`` package), checked against the
model before loading: the first missing, unexpected or mis-shaped key is a one-line error.

An imcsim checkpoint (``{"format": "imcsim-checkpoint", "state_dict": …}``) and a dict with
a ``state_dict`` or ``model`` entry of tensors are accepted too.  Tied parameters (a
language model's output head sharing the embedding) may be absent from the file.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from imcsim.errors import ConfigError

__all__ = ["load_weights", "read_state_dict"]


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a ``.pt`` or ``.safetensors`` file (no code is unpickled)."""
    if not path.is_file():
        raise ConfigError(f"--weights {str(path)!r} does not exist" if not path.exists()
                          else f"--weights {str(path)!r} is not a file")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is one line
        raise ConfigError(f"--weights {path.name}: not a readable state dict "
                          f"({type(exc).__name__}: {' '.join(str(exc).split())[:160]})") from None
    if isinstance(state, dict):
        for key in ("state_dict", "model"):
            if isinstance(state.get(key), dict):
                state = state[key]
                break
    if not isinstance(state, dict) or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise ConfigError(f"--weights {path.name}: expected a dict of name → tensor")
    return state


def _tied(model: nn.Module) -> set[str]:
    """Names of parameters that share storage with an earlier parameter."""
    seen: dict[int, str] = {}
    tied = set()
    for name, tensor in model.state_dict(keep_vars=True).items():
        ptr = tensor.data_ptr()
        if ptr in seen and tensor.numel():
            tied.add(name)
        seen.setdefault(ptr, name)
    return tied


def load_weights(model: nn.Module, path: str | Path) -> str:
    """Load ``path`` into ``model`` (strict); returns the file's description."""
    path = Path(path)
    state = read_state_dict(path)
    own = model.state_dict()
    missing = [k for k in own if k not in state and k not in _tied(model)]
    if missing:
        raise ConfigError(f"--weights {path.name}: missing key {missing[0]!r} "
                          f"({len(missing)} missing)")
    unexpected = [k for k in state if k not in own]
    if unexpected:
        raise ConfigError(f"--weights {path.name}: unexpected key {unexpected[0]!r} "
                          f"({len(unexpected)} unexpected)")
    for key, tensor in state.items():
        if tuple(tensor.shape) != tuple(own[key].shape):
            raise ConfigError(f"--weights {path.name}: {key!r} has shape {tuple(tensor.shape)}, "
                              f"the model's is {tuple(own[key].shape)}")
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise ConfigError(f"--weights {path.name}: {key!r} holds inf or nan")
    converted = {k: v.to(own[k].dtype) for k, v in state.items()}
    model.load_state_dict(converted, strict=False)
    return f"{path.name} ({len(state)} tensors)"
