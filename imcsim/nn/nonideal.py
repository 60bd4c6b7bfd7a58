"""Device non-idealities of the crossbar simulation: one protocol, one registry, applied in
one place of the tiled MVM.

A non-ideality acts at any of four points of a crossbar layer (``imcsim.nn.crossbar``):

* ``program(cells, ctx)`` — once, when the weights are written: the conductances the
  arrays really hold (programming noise, stuck-at faults, drift after a time, IR drop).
  ``ctx`` says which cells exist, the highest conductance level, and every cell's tile,
  physical word line and bit line (``CellContext.tile``/``row``/``col``, from the
  mapping's placement).  An effect with ``time_dependent = True`` (drift) is left out
  while the ADC ranges are calibrated: calibration happens at programming time, t₀.
* ``gain(before, after, ctx)`` — right after its ``program``: a digital gain on the
  layer's column sums (after the ADC, before the offset correction), e.g. global drift
  compensation; the gains of all effects multiply.
* ``read(sums, ctx)`` — at every MVM, on the analog column sums before the ADC (read
  noise, …).  ``ctx.spread_sq()`` gives Σ_j G_j² x_j² of every sum (one extra MVM of the
  squares, computed only when asked for).
* ``converter(ctx)`` — once per layer: the ADC transfer function, a callable
  ``(sums in LSB units, copy) → integer codes`` replacing rounding (per-ADC offset and
  non-linearity); ``ctx`` gives each column's ADC.  At most one effect may provide one.

Every random draw comes from ``ctx.generator``, seeded from (seed, layer, read), so a
simulation is reproducible.  The generators are CPU generators and :func:`draw` moves each
draw to the tensor's device once: the random numbers are the same on every device.  ``build_nonidealities(settings)`` turns a layer's settings
into the ordered tuple of active non-idealities; to add one, write a class with the
hooks it needs (subclass :class:`NonIdeality`) and register a builder with
``register_nonideality`` — see ``imcsim/nn/README.md``.

The models shipped:

* programming noise: ``G·(1 + σ_p·ε)`` drawn once per device (a static error, as in
  aihwkit's programming-noise model; Joshi et al., Nat. Commun. 2020);
* stuck-at faults: a fraction of cells stuck at the highest conductance (on) or at zero
  (off) whatever was programmed (Chen et al., "RRAM defect modeling", DATE 2014);
* read noise: each read sees ``G·(1 + σ_r·ε)`` with fresh ε; a column sum
  ``Σ_j G_j x_j (1 + σ_r ε_j)`` is exactly ``Σ_j G_j x_j + σ_r·sqrt(Σ_j G_j² x_j²)·ε``;
* conductance drift, IR drop and ADC deviations: ``imcsim.nn.device_models``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

__all__ = [
    "AdcContext", "CellContext", "Converter", "NonIdeality", "ProgrammingNoise", "ReadContext",
    "ReadNoise", "StuckAt", "build_nonidealities", "draw", "mixed_seed", "nonideality_names",
    "register_nonideality",
]


def mixed_seed(*parts: int) -> int:
    """A 32-bit seed mixing ``parts`` (numpy ``SeedSequence``), e.g. (seed, layer, read)."""
    return int(np.random.SeedSequence([abs(int(p)) for p in parts]).generate_state(1)[0])


def draw(kind: str, shape: tuple[int, ...], generator: torch.Generator, dtype: torch.dtype,
         device: torch.device) -> torch.Tensor:
    """``torch.randn`` (``kind="normal"``) or ``torch.rand`` (``"uniform"``) of ``shape``
    from ``generator``, on the generator's device, then moved to ``device`` in one copy."""
    sample = torch.randn if kind == "normal" else torch.rand
    return sample(shape, generator=generator, dtype=dtype, device=generator.device).to(device)


@dataclass(frozen=True)
class CellContext:
    """What a non-ideality may read when the cells are programmed."""

    real: torch.Tensor
    """1 where a cell holds a weight, 0 for an empty cell (broadcastable to the cells)."""
    top: float
    """Highest conductance level: ``2^cell_bits − 1`` (the largest weight if not sliced)."""
    row: torch.Tensor
    """Word line of every cell in its tile (−1 for an empty cell)."""
    col: torch.Tensor
    """Weight column of every cell in its tile (bit lines ``col·cpw + slice``; −1 empty)."""
    generator: torch.Generator
    tile: torch.Tensor | None = None
    """Tile (index into the layer's placement) of every cell (−1 for an empty cell)."""
    coef: torch.Tensor | None = None
    """Shift-and-add coefficient of each weight slice (first axis of the cells)."""


@dataclass
class ReadContext:
    """What a non-ideality may read at one MVM."""

    spread: Callable[[], torch.Tensor]
    generator: torch.Generator
    _cache: list = field(default_factory=list)

    def spread_sq(self) -> torch.Tensor:
        """Σ_j G_j² x_j² of every column sum (computed once, on first use)."""
        if not self._cache:
            self._cache.append(self.spread())
        return self._cache[0]


@dataclass(frozen=True)
class AdcContext:
    """What an ADC transfer function may read (built once per layer)."""

    adc: tuple[torch.Tensor, ...]
    """Per window copy: the ADC (0 … ``adcs`` − 1) converting each output column of the
    copy's grouped convolution (padding columns: ADC 0)."""
    adcs: int
    """ADCs of the layer: tiles × ⌈array columns / columns per ADC⌉."""
    low: int
    """Lowest code (0, or −top for a signed ADC)."""
    top: int
    """Highest code."""
    generator: torch.Generator


Converter = Callable[[torch.Tensor, int], torch.Tensor]
"""(column sums in LSB units, window copy) → integer codes, before clipping."""


class NonIdeality:
    """Base: every hook is the identity; override the ones a model needs."""

    name = "ideal"
    may_exceed_range = False
    """Can the analog sums leave the ADC's worst-case range (so the ADC must clip)?"""
    time_dependent = False
    """Does it act after programming (left out while the ADC ranges are calibrated)?"""

    def program(self, cells: torch.Tensor, ctx: CellContext) -> torch.Tensor:
        return cells

    def gain(self, before: torch.Tensor, after: torch.Tensor, ctx: CellContext) -> float:
        return 1.0

    def read(self, sums: torch.Tensor, ctx: ReadContext) -> torch.Tensor:
        return sums

    def converter(self, ctx: AdcContext) -> Converter | None:
        return None

    @property
    def reads(self) -> bool:
        return type(self).read is not NonIdeality.read


@dataclass(frozen=True)
class ProgrammingNoise(NonIdeality):
    sigma: float
    name = "programming_noise"
    may_exceed_range = True

    def program(self, cells: torch.Tensor, ctx: CellContext) -> torch.Tensor:
        eps = draw("normal", cells.shape, ctx.generator, cells.dtype, cells.device)
        return cells * (1 + self.sigma * eps)


@dataclass(frozen=True)
class StuckAt(NonIdeality):
    on_rate: float
    off_rate: float
    name = "stuck_at"

    def program(self, cells: torch.Tensor, ctx: CellContext) -> torch.Tensor:
        u = draw("uniform", cells.shape, ctx.generator, cells.dtype, cells.device)
        real = ctx.real.expand_as(cells) > 0
        on = (u < self.on_rate) & real
        off = (u >= self.on_rate) & (u < self.on_rate + self.off_rate) & real
        cells = torch.where(on, torch.full_like(cells, ctx.top), cells)
        return torch.where(off, torch.zeros_like(cells), cells)


@dataclass(frozen=True)
class ReadNoise(NonIdeality):
    sigma: float
    name = "read_noise"
    may_exceed_range = True

    def read(self, sums: torch.Tensor, ctx: ReadContext) -> torch.Tensor:
        eps = draw("normal", sums.shape, ctx.generator, sums.dtype, sums.device)
        return sums + self.sigma * ctx.spread_sq().clamp(min=0).sqrt() * eps


Builder = Callable[[object], NonIdeality | None]
"""Settings (``crossbar_config.LayerSettings``) → the non-ideality, or None when off."""
_REGISTRY: dict[str, Builder] = {}


def register_nonideality(name: str, builder: Builder) -> None:
    """Add a non-ideality; they apply in registration order.  A duplicate is refused."""
    if name in _REGISTRY:
        raise ValueError(f"non-ideality {name!r} is already registered")
    _REGISTRY[name] = builder


def nonideality_names() -> list[str]:
    return list(_REGISTRY)


def build_nonidealities(settings) -> tuple[NonIdeality, ...]:
    """The active non-idealities of a layer, in application order (none when ideal)."""
    if settings.ideal:
        return ()
    built = (builder(settings) for builder in _REGISTRY.values())
    return tuple(n for n in built if n is not None)


register_nonideality("programming_noise", lambda s: ProgrammingNoise(s.programming_noise)
                     if s.programming_noise > 0 else None)
register_nonideality("stuck_at", lambda s: StuckAt(s.stuck_on_rate, s.stuck_off_rate)
                     if s.stuck_on_rate > 0 or s.stuck_off_rate > 0 else None)
register_nonideality("read_noise", lambda s: ReadNoise(s.read_noise) if s.read_noise > 0 else None)
