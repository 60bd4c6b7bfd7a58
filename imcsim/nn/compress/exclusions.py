"""Which layers a compression leaves dense (``imcsim.compression.DenseLayers``).

``stem-1x1-fc`` is the convention of the low-rank paper's group (Jeon, Rhe, Ko, DATE 2025,
and the GAROS / KERNTROL scripts): the first convolution (3 input channels: nothing to
gain), every 1×1 convolution (projection shortcuts) and every Linear layer stay dense.
``none`` compresses every Conv2d and Linear layer (imcsim's default).
"""

from __future__ import annotations

from torch import nn

from imcsim.compression import DENSE_LAYERS
from imcsim.errors import ConfigError

__all__ = ["dense_layer_names"]


def dense_layer_names(model: nn.Module, policy: str = "none") -> list[str]:
    """Qualified names of the Conv2d/Linear modules ``policy`` leaves dense; the stem is
    the first Conv2d in registration order (``conv1`` of the built-in models)."""
    if policy not in DENSE_LAYERS:
        raise ConfigError(f"dense_layers={policy!r} (known: {', '.join(DENSE_LAYERS)})")
    if policy == "none":
        return []
    convs = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    names = [convs[0][0]] if convs else []
    names += [n for n, m in convs[1:] if tuple(m.kernel_size) == (1, 1)]
    names += [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    return names
