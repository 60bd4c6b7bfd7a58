"""GreedyLore: greedy low-rank gradient compression with error feedback, as a DDP hook.

Chen, He, Li, Jia, Yuan, "Greedy Low-Rank Gradient Compression for Distributed Learning with
Convergence Guarantees" (arXiv 2507.08784, 2025).  Per compressed gradient G (conv weights are
flattened to ``out × in·kh·kw``) every worker keeps

* a complete orthonormal basis Q (a×a) of one side of G, taken from the SVD of the *averaged*
  gradient and refreshed every ``refresh_every_steps`` steps (the semi-lazy subspace update:
  the refresh step itself sends the dense gradient, so the compressor stays contractive);
* an error-feedback residual E (what it did not send so far).

At every other step a worker forms A = G + E, estimates the energy of each basis direction of
the *averaged* A (one shared Gaussian probe per direction, the signed estimates all-reduced
before squaring — the paper's approximate global top-r), keeps the r directions of largest
energy (the same on every worker), all-reduces only their coefficients Q_rᵀA (r×b numbers),
applies Q_r·mean(Q_rᵀA) and keeps E = A − Q_rQ_rᵀA.  Tensors that are not matrices (biases,
norms), the classifier and matrices too small to gain ``min_compression`` go dense; the first
``warmup_steps`` steps are dense.

Conventions (from the authors' public code, switchable where marked): the basis spans the
shorter side of G (``side="short"``: coefficients are r × the longer side, the basis is
square and complete, contraction factor r/min(n, m)); ``side="long"`` uses the completed basis
of the longer side instead (coefficients r × the shorter side, contraction factor r/max(n, m)).
A refresh step sends G + E densely and resets E to zero (nothing accumulated is dropped).
Every worker computes the SVD of the bitwise-identical averaged gradient itself; an 8-byte
checksum per basis, broadcast from rank 0, proves the bases agree.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from imcsim.train.comm import CommCounter, GradCompression, completed_future

__all__ = ["GreedyLore", "complete_basis", "greedy_select", "orient", "project", "reconstruct",
           "sketch_scores"]


def orient(grad: torch.Tensor, side: str) -> tuple[torch.Tensor, bool]:
    """``(A, transposed)``: ``grad`` as ``out × rest`` (transposed so its basis side is first)."""
    matrix = grad.reshape(grad.shape[0], -1)
    rows, cols = matrix.shape
    transposed = rows > cols if side == "short" else rows < cols
    return (matrix.T if transposed else matrix), transposed


def complete_basis(a: torch.Tensor) -> torch.Tensor:
    """Orthonormal basis (a×a) of the row space side of ``a`` (a×b), by decreasing singular
    value; completed to the whole space when a > b (SVD with full matrices)."""
    rows, cols = a.shape
    return torch.linalg.svd(a, full_matrices=rows > cols)[0].contiguous()


def sketch_scores(basis: torch.Tensor, a: torch.Tensor, probes: torch.Tensor) -> torch.Tensor:
    """Signed one-probe estimate per direction: ⟨q_iᵀA, z_i⟩.  Averaged over workers and
    squared it is an unbiased estimate of the energy ‖q_iᵀ mean(A)‖² (GreedyLore, Alg. 2)."""
    return ((basis.T @ a) * probes).sum(1)


def greedy_select(scores: torch.Tensor, rank: int) -> torch.Tensor:
    """Indices of the ``rank`` largest scores, largest first (ties: lower index first)."""
    order = torch.sort(scores, descending=True, stable=True).indices
    return order[:rank]


def project(basis: torch.Tensor, index: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """Coefficients Q_rᵀA (r×b) of ``a`` on the selected basis directions."""
    return basis[:, index].T @ a


def reconstruct(basis: torch.Tensor, index: torch.Tensor, coeffs: torch.Tensor) -> torch.Tensor:
    """Q_r·C: the matrix that the coefficients stand for."""
    return basis[:, index] @ coeffs


@dataclass(frozen=True)
class _Plan:
    """How one parameter's gradient travels: ``rank == 0`` means dense."""

    name: str
    index: int
    rank: int
    side: str


def _unorient(m: torch.Tensor, transposed: bool, shape: torch.Size) -> torch.Tensor:
    return (m.T if transposed else m).reshape(shape)


def _checksum(t: torch.Tensor) -> int:
    digest = hashlib.blake2b(t.detach().numpy().tobytes(), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)


class GreedyLore:
    """The hook state: bases, residuals and byte counts of one worker (see the module doc)."""

    def __init__(self, model: nn.Module, config: GradCompression, *, seed: int,
                 dense: frozenset[str] = frozenset()) -> None:
        self.config, self.seed, self.dense = config, seed, dense
        self.names = {p: n for n, p in model.named_parameters()}
        self.order = {n: i for i, n in enumerate(self.names.values())}
        self.counter = CommCounter()
        self.step = 0
        self.basis: dict[str, torch.Tensor] = {}
        self.residual: dict[str, torch.Tensor] = {}

    # -- planning -------------------------------------------------------------------------
    def plan(self, name: str, shape: torch.Size) -> _Plan:
        """Dense unless a matrix outside ``dense`` whose payload gains ``min_compression``."""
        if len(shape) < 2 or name in self.dense:
            return _Plan(name, self.order[name], 0, self.config.side)
        rows, cols = shape[0], int(np.prod(shape[1:]))
        a, b = (min(rows, cols), max(rows, cols))
        a, b = (a, b) if self.config.side == "short" else (b, a)
        rank = min(self.config.rank, a)
        payload = rank * b + a  # coefficients + one energy score per direction
        if payload * self.config.min_compression >= rows * cols:
            rank = 0
        return _Plan(name, self.order[name], rank, self.config.side)

    # -- one bucket -----------------------------------------------------------------------
    def communicate(self, bucket: dist.GradBucket) -> torch.futures.Future[torch.Tensor]:
        """Average ``bucket``'s gradients across workers (compressed where planned)."""
        buffer = bucket.buffer()
        self.counter.bytes_uncompressed += buffer.numel() * buffer.element_size()
        grads = bucket.gradients()
        plans = [self.plan(self.names[p], g.shape) for p, g in zip(bucket.parameters(), grads)]
        warm = self.step < self.config.warmup_steps
        if warm or not any(p.rank for p in plans):
            self._mean_(buffer)
        elif (self.step - self.config.warmup_steps) % self.config.refresh_every_steps == 0:
            self._refresh(buffer, grads, plans)
        else:
            self._compressed(grads, plans)
        if bucket.is_last():
            self.step += 1
        return completed_future(buffer)

    def _all_reduce(self, t: torch.Tensor) -> None:
        self.counter.bytes_communicated += t.numel() * t.element_size()
        dist.all_reduce(t)

    def _mean_(self, t: torch.Tensor) -> None:
        self._all_reduce(t)
        t.div_(dist.get_world_size())

    def _refresh(self, buffer: torch.Tensor, grads: list[torch.Tensor], plans: list[_Plan]) -> None:
        """Send G + E densely, reset E, and take new bases from the averaged gradient."""
        for g, plan in zip(grads, plans):
            if plan.rank and plan.name in self.residual:
                g.add_(self.residual.pop(plan.name))
        self._mean_(buffer)
        compressed = [(g, p) for g, p in zip(grads, plans) if p.rank]
        for g, plan in compressed:
            self.basis[plan.name] = complete_basis(orient(g, plan.side)[0])
        self._check_bases([p.name for _, p in compressed])

    def _check_bases(self, names: list[str]) -> None:
        if dist.get_world_size() == 1:
            return
        sums = torch.tensor([_checksum(self.basis[n]) for n in names], dtype=torch.int64)
        mine = sums.clone()
        self.counter.bytes_communicated += sums.numel() * sums.element_size()
        dist.broadcast(sums, src=0)
        if not torch.equal(sums, mine):
            raise RuntimeError(
                f"GreedyLore: rank {dist.get_rank()} computed other bases than rank 0 from the "
                "same averaged gradient (different BLAS/CPU per worker?)"
            )

    def _probes(self, plan: _Plan, shape: torch.Size) -> torch.Tensor:
        seed = np.random.SeedSequence([self.seed, self.step, plan.index]).generate_state(1)[0]
        return torch.randn(shape, generator=torch.Generator().manual_seed(int(seed)))

    def _compressed(self, grads: list[torch.Tensor], plans: list[_Plan]) -> None:
        """Error feedback, greedy top-r selection, all-reduce of coefficients, reconstruction."""
        items = []  # (gradient, plan, A = G + E oriented, transposed)
        for g, plan in zip(grads, plans):
            if plan.rank:
                if plan.name in self.residual:
                    g.add_(self.residual[plan.name])
                items.append((g, plan, *orient(g, plan.side)))
        chosen = self._select(items)
        coeffs = []
        for (g, plan, a, transposed), index in zip(items, chosen):
            basis = self.basis[plan.name]
            coeffs.append(project(basis, index, a))
            left = a - reconstruct(basis, index, coeffs[-1])
            self.residual[plan.name] = _unorient(left, transposed, g.shape)
        dense = [g for g, p in zip(grads, plans) if not p.rank]
        payload = torch.cat([*(g.reshape(-1) for g in dense), *(c.reshape(-1) for c in coeffs)])
        self._mean_(payload)
        parts = payload.split([*(g.numel() for g in dense), *(c.numel() for c in coeffs)])
        for g, part in zip(dense, parts):
            g.copy_(part.view_as(g))
        for (g, plan, _, transposed), index, c, part in zip(items, chosen, coeffs,
                                                            parts[len(dense):]):
            update = reconstruct(self.basis[plan.name], index, part.view_as(c))
            g.copy_(_unorient(update, transposed, g.shape))

    def _select(self, items: list) -> list[torch.Tensor]:
        """The ``rank`` directions of each matrix with the largest estimated global energy:
        one all-reduce of the signed sketches (one number per basis direction)."""
        scores = torch.cat([sketch_scores(self.basis[p.name], a, self._probes(p, a.shape))
                            for _, p, a, _ in items])
        self._all_reduce(scores)
        energy = (scores / dist.get_world_size()).square()
        parts = energy.split([a.shape[0] for _, _, a, _ in items])
        return [greedy_select(e, plan.rank) for (_, plan, _, _), e in zip(items, parts)]

    # -- checkpoints ----------------------------------------------------------------------
    def state_dict(self) -> dict:
        """This worker's state (bases are the same on every worker, residuals are not)."""
        return {"step": self.step, "counter": self.counter.as_dict(),
                "basis": dict(self.basis), "residual": dict(self.residual)}

    def load_state_dict(self, state: dict) -> None:
        self.step = int(state["step"])
        self.counter = CommCounter(**state["counter"])
        self.basis = dict(state["basis"])
        self.residual = dict(state["residual"])
