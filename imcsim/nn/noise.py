"""Device non-idealities of the crossbar simulation, all drawn from explicit seeded generators.

* Programming noise: each cell's conductance is ``G·(1 + σ_p·ε)``, drawn once per device
  (a static error, as in aihwkit's programming-noise model; Joshi et al., Nat. Commun. 2020).
* Stuck-at faults: a fraction of cells is stuck at the highest conductance (on) or at zero
  (off) whatever was programmed (Chen et al., "RRAM defect modeling", DATE 2014).
* Read noise: each read sees ``G·(1 + σ_r·ε)`` with fresh ε; a column sum
  ``Σ_j G_j x_j (1 + σ_r ε_j)`` is exactly ``Σ_j G_j x_j + σ_r·sqrt(Σ_j G_j² x_j²)·ε``, so
  one extra batched matmul of the squares draws it without a per-cell tensor.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["apply_cell_faults", "mixed_seed", "read_noise"]


def mixed_seed(*parts: int) -> int:
    """A 32-bit seed mixing ``parts`` (numpy ``SeedSequence``), e.g. (seed, layer, read)."""
    return int(np.random.SeedSequence([abs(int(p)) for p in parts]).generate_state(1)[0])


def apply_cell_faults(
    cells: torch.Tensor, real: torch.Tensor, top: float, settings, gen: torch.Generator
) -> torch.Tensor:
    """Programming noise and stuck-at faults on the cells that exist (``real`` = 1).

    ``top`` is the highest conductance level (``2^cell_bits − 1``; the largest weight
    when weights are not sliced).
    """
    s = settings
    if s.programming_noise > 0:
        eps = torch.randn(cells.shape, generator=gen, dtype=cells.dtype)
        cells = cells * (1 + s.programming_noise * eps)
    if s.stuck_on_rate > 0 or s.stuck_off_rate > 0:
        u = torch.rand(cells.shape, generator=gen, dtype=cells.dtype)
        on = (u < s.stuck_on_rate) & (real > 0)
        off = (u >= s.stuck_on_rate) & (u < s.stuck_on_rate + s.stuck_off_rate) & (real > 0)
        cells = torch.where(on, torch.full_like(cells, top), cells)
        cells = torch.where(off, torch.zeros_like(cells), cells)
    return cells


def read_noise(
    v: torch.Tensor, spread_sq: torch.Tensor, settings, gen: torch.Generator
) -> torch.Tensor:
    """Column sums ``v`` with per-read relative conductance noise σ_r.

    ``spread_sq`` is ``Σ_j G_j² x_j²`` of every column sum (the same MVM with squares).
    """
    eps = torch.randn(v.shape, generator=gen, dtype=v.dtype)
    return v + settings.read_noise * spread_sq.clamp(min=0).sqrt() * eps
