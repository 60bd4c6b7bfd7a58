"""On-disk cache of calibration statistics (``imcsim.nn.calibration``), keyed by content.

The key hashes everything a calibration pass depends on: the sources of the simulation,
every parameter and buffer of the converted model, every layer's cell positions and
settings (without those calibration does not see), the passes and the calibration
images.  Writes are atomic (temporary file in the same directory + ``os.replace``); an
unreadable or foreign entry reads as a miss and is rewritten.  Nothing here is global:
the directory is the caller's (``default_cache_dir()`` for the command line).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict
from functools import lru_cache
from pathlib import Path

import torch
from torch import nn

from imcsim.nn.devices import module_device

__all__ = ["cache_key", "default_cache_dir", "load_stats", "save_stats"]

_FORMAT = 1
_NOT_SEEN = ("adc_bits", "adc_calibration", "adc_parameter", "adc_scope", "adc_step",
             "adc_range", "drift_time_s", "drift_compensation", "drift_nu_mean",
             "drift_nu_std", "drift_t0_s", "adc_offset_lsb", "adc_dnl_lsb")
"""Settings calibration does not see: the ADC is bypassed, and it runs at t₀ (no drift, so
no drift gain; an IR-drop compensation gain *is* seen: it scales what later layers get)."""


def default_cache_dir() -> Path:
    """``$IMCSIM_CACHE_DIR``, else ``$XDG_CACHE_HOME/imcsim``, else ``~/.cache/imcsim``."""
    if os.environ.get("IMCSIM_CACHE_DIR"):
        return Path(os.environ["IMCSIM_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "imcsim"


_SOURCES = ("__init__.py", "_irdrop.py", "nn/adc.py", "nn/crossbar.py", "nn/crossbar_config.py",
            "nn/crossbar_conv.py", "nn/device_models.py", "nn/functional.py", "nn/mvm.py",
            "nn/mvm_convs.py", "nn/mvm_data.py", "nn/nonideal.py", "nn/tileplan.py", "nn/calibration.py",
            "nn/calibration_cache.py")
"""The sources that decide what a calibration pass computes, relative to the package (read
as files: importing them here would make the cache depend on the layers it serves)."""


@lru_cache(maxsize=1)
def _code_version() -> str:
    """Hash of the sources that decide what a calibration pass computes."""
    root = Path(__file__).resolve().parent.parent
    h = hashlib.sha256(str(_FORMAT).encode())
    for rel in _SOURCES:
        h.update((root / rel).read_bytes())
    return h.hexdigest()


def _tensor_bytes(h, t: torch.Tensor) -> None:
    t = t.detach().contiguous().cpu()  # cpu-only: hashed on the host, once per calibration
    h.update(f"{t.dtype}{tuple(t.shape)}".encode())
    h.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")  # cpu-only


def cache_key(model: nn.Module, layers: list, images: torch.Tensor,
              passes: tuple[str, ...]) -> str:
    """SHA-256 of what the ``passes`` over ``images`` depend on (see the module docstring)."""
    h = hashlib.sha256(_code_version().encode())
    h.update(json.dumps(passes).encode())
    device = module_device(model)
    if device.type != "cpu":  # float statistics may differ in the last bits across devices
        h.update(device.type.encode())
    skip = {"input_max", "input_signed", "adc_full_scale"}
    for name, value in model.state_dict().items():
        if name.rsplit(".", 1)[-1] not in skip:
            h.update(name.encode())
            _tensor_bytes(h, value)
    for layer in layers:
        settings = {k: v for k, v in asdict(layer.settings).items() if k not in _NOT_SEEN}
        h.update(json.dumps([layer.name, settings], sort_keys=True, default=str).encode())
        for t in (layer.row_position, layer.col_position, layer.tile_position, layer.channels):
            _tensor_bytes(h, t)
    _tensor_bytes(h, images)
    return h.hexdigest()


def _path(cache_dir: Path, key: str) -> Path:
    return Path(cache_dir) / "calibration" / f"{key}.pt"


def load_stats(cache_dir: Path, key: str) -> dict | None:
    """The statistics stored under ``key``, or None (absent, torn, or another format)."""
    path = _path(cache_dir, key)
    if not path.exists():
        return None
    try:
        data = torch.load(path, weights_only=True)
    except Exception:  # a torn or foreign file: recompute and overwrite
        return None
    return data.get("stats") if isinstance(data, dict) and data.get("format") == _FORMAT else None


def save_stats(cache_dir: Path, key: str, stats: dict) -> None:
    """Store ``stats`` under ``key`` atomically (readers see the old file or the new one)."""
    path = _path(cache_dir, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{key[:16]}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save({"format": _FORMAT, "stats": stats}, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
