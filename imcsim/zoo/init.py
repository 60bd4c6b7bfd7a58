"""Weight initialisation shared by the built-in CNNs."""

from __future__ import annotations

from torch import nn

__all__ = ["init_weights"]


def init_weights(model: nn.Module) -> None:
    """Kaiming-normal convs (He et al., ICCV 2015; fan-out, ReLU gain), BN to (1, 0).

    Linear layers keep PyTorch's default initialisation.
    """
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
