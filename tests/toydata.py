"""A two-class toy image set shared by the training tests (seeded, tiny, learnable)."""

from __future__ import annotations

import torch


def toy_data(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` 1×8×8 images told apart by where the bright square is (left or right half)."""
    gen = torch.Generator().manual_seed(7)
    labels = torch.randint(0, 2, (n,), generator=gen)
    images = 0.1 * torch.randn(n, 1, 8, 8, generator=gen)
    for i, label in enumerate(labels.tolist()):
        images[i, 0, 2:6, 4 * label : 4 * label + 4] += 1.0
    return images, labels
