"""Which torch device runs a model, and the switches that keep a CUDA run exact.

``resolve_device("cpu" | "cuda" | "cuda:N" | "auto" | None)`` turns the ``--device``
option (or the Python API's ``device=``) into a ``torch.device``: ``auto`` (and ``None``)
picks ``cuda`` when CUDA is present, else the CPU.  Asking for a CUDA device that does not
exist raises :class:`imcsim.errors.ConfigError` (the CLI prints it as one line, exit 2).

The device a run computes on is the process's *run device*: :func:`use_device` (what the
CLI's ``--device`` does) sets it in the environment variable :data:`DEVICE_ENV`, so worker
processes (data-parallel training, sweeps) inherit it; :func:`current_device` reads it (the
CPU when unset).  Studies place the models they load there; everything downstream follows
the model's device (``to_crossbar``, calibration, training and evaluation batches).

Integer partial sums are exact in float32 only while every one stays below 2^24
(:data:`EXACT_FLOAT32`).  cuDNN convolutions and cuBLAS matmuls may use TF32 (10-bit
mantissa) on Ampere and later cards, which would round such sums; :func:`exact_float32`
turns TF32 off for the duration of a simulated MVM (PyTorch, "TensorFloat-32 (TF32) on
Ampere (and later) devices", ``torch.backends`` documentation).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from typing import Any

import torch

from imcsim.errors import ConfigError

__all__ = ["DEVICE_CHOICES", "DEVICE_ENV", "EXACT_FLOAT32", "current_device", "exact_float32",
           "module_device", "resolve_device", "to_device", "use_device"]

DEVICE_CHOICES = "cpu, cuda, cuda:N or auto"
DEVICE_ENV = "IMCSIM_DEVICE"
"""Environment variable holding the run device (inherited by worker processes)."""
EXACT_FLOAT32 = 2**24
"""Every integer of magnitude below this is a float32: sums of such integers whose partial
results stay below it are exact in any order (IEEE 754 binary32, 24-bit significand)."""

_SPEC = re.compile(r"(cpu|cuda|auto)(?::([0-9]{1,3}))?", re.ASCII)


def resolve_device(spec: str | torch.device | None = "auto") -> torch.device:
    """The torch device ``spec`` names (``None`` or ``auto``: CUDA when present)."""
    if isinstance(spec, torch.device):
        spec = str(spec)
    text = "auto" if spec is None else str(spec).strip().lower()
    match = _SPEC.fullmatch(text)
    if match is None or (match[2] is not None and match[1] != "cuda"):
        raise ConfigError(f"--device must be {DEVICE_CHOICES} (got {spec!r})")
    kind, index = match[1], match[2]
    if kind == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if kind == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        why = ("this torch build has no CUDA" if torch.version.cuda is None
               else "no CUDA device is visible")
        raise ConfigError(f"--device {text}: CUDA is not available here ({why}; torch "
                          f"{torch.__version__})")
    if index is not None and int(index) >= torch.cuda.device_count():
        raise ConfigError(f"--device {text}: only {torch.cuda.device_count()} CUDA device(s)")
    return torch.device(text)


def current_device() -> torch.device:
    """The run device (:data:`DEVICE_ENV`; the CPU when unset)."""
    return resolve_device(os.environ.get(DEVICE_ENV) or "cpu")


@contextlib.contextmanager
def use_device(spec: str | torch.device | None) -> Iterator[torch.device]:
    """Make ``spec`` (resolved, see :func:`resolve_device`) the run device inside the block,
    for this process and the workers it starts; the previous value is restored on exit.
    On CUDA, TF32 is off inside the block (:func:`exact_float32`), so the float layers
    around the crossbars compute in float32 as on the CPU."""
    device = resolve_device(spec)
    before = os.environ.get(DEVICE_ENV)
    os.environ[DEVICE_ENV] = str(device)
    try:
        with exact_float32(device):
            yield device
    finally:
        if before is None:
            os.environ.pop(DEVICE_ENV, None)
        else:
            os.environ[DEVICE_ENV] = before


def module_device(module: torch.nn.Module) -> torch.device:
    """The device of ``module``'s first parameter or buffer (the CPU when it has none)."""
    for tensor in (*module.parameters(), *module.buffers()):
        return tensor.device
    return torch.device("cpu")


def to_device(inputs: Any, device: torch.device) -> Any:
    """``inputs`` (a tensor, or a tuple/list/dict of them and other values) with every
    tensor on ``device`` (one copy each; tensors already there are returned as they are)."""
    if isinstance(inputs, torch.Tensor):
        return inputs.to(device)
    if isinstance(inputs, dict):
        return {k: to_device(v, device) for k, v in inputs.items()}
    if isinstance(inputs, (tuple, list)):
        return type(inputs)(to_device(v, device) for v in inputs)
    return inputs


@contextlib.contextmanager
def exact_float32(device: torch.device) -> Iterator[None]:
    """TF32 off for cuDNN convolutions and cuBLAS matmuls inside the block (on CUDA; a
    no-op elsewhere), restored on exit."""
    if device.type != "cuda":
        yield
        return
    cublas, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    saved = (cublas.allow_tf32, cudnn.allow_tf32)
    cublas.allow_tf32 = cudnn.allow_tf32 = False
    try:
        yield
    finally:
        cublas.allow_tf32, cudnn.allow_tf32 = saved
