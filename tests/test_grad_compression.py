"""GreedyLore and PowerSGD hooks: exactness, error feedback, greedy selection, byte counts,
resumable state — on a process group of one (the multi-process path: test_distributed.py)."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from toydata import toy_data

from imcsim.errors import ConfigError
from imcsim.train.distributed import DistributedConfig
from imcsim.train.grad_compression import GradCompression, attach, classifier_params
from imcsim.train.greedylore import (
    complete_basis,
    greedy_select,
    orient,
    project,
    reconstruct,
    sketch_scores,
)
from imcsim.train.loop import TrainConfig, train


def net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(),
                         nn.Conv2d(6, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
                         nn.Flatten(), nn.Linear(32, 2))


IMAGES = 48
"""Toy images per training test (``toydata.toy_data``)."""


@contextlib.contextmanager
def group_of_one(tmp_path: Path) -> Iterator[None]:
    """A one-rank gloo group.  Every DDP model must be deleted inside the block: a reducer
    that outlives its group blocks forever in the gloo destructor when it is freed."""
    dist.init_process_group("gloo", init_method=f"file://{tmp_path}/store", rank=0,
                            world_size=1)
    try:
        yield
    finally:
        gc.collect()
        dist.destroy_process_group()


def orthogonal(n: int, seed: int) -> torch.Tensor:
    return torch.linalg.qr(torch.randn(n, n, generator=torch.Generator().manual_seed(seed)))[0]


@pytest.mark.parametrize("shape", [(6, 20), (20, 6)])
@pytest.mark.parametrize("side", ["short", "long"])
def test_compressor_is_exact_at_full_rank(shape: tuple[int, int], side: str) -> None:
    gen = torch.Generator().manual_seed(1)
    grad = torch.randn(*shape, generator=gen)
    a, transposed = orient(grad, side)
    assert a.shape[0] == (min(shape) if side == "short" else max(shape))
    assert torch.equal((a.T if transposed else a), grad)
    # a basis taken from another gradient (a stale one) is still complete: exact at full rank
    basis = complete_basis(orient(torch.randn(*shape, generator=gen), side)[0])
    assert torch.allclose(basis.T @ basis, torch.eye(len(basis)), atol=1e-5)
    every = torch.arange(len(basis))
    assert torch.allclose(reconstruct(basis, every, project(basis, every, a)), a, atol=1e-5)
    partial = every[:2]  # below full rank something is left over, orthogonal to what is sent
    sent = reconstruct(basis, partial, project(basis, partial, a))
    assert not torch.allclose(sent, a, atol=1e-3)
    assert torch.allclose(basis[:, partial].T @ (a - sent), torch.zeros(2, a.shape[1]), atol=1e-5)


def test_greedy_selection_picks_the_known_top_directions() -> None:
    basis, rows = orthogonal(8, 2), orthogonal(12, 3)[:8]
    energy = torch.tensor([3.0, 50.0, 0.5, 9.0, 120.0, 1.0, 0.1, 20.0])
    a = basis @ torch.diag(energy.sqrt()) @ rows  # ‖q_iᵀA‖² = energy[i] by construction
    exact = (basis.T @ a).square().sum(1)
    assert torch.allclose(exact, energy, rtol=1e-4)
    assert greedy_select(exact, 3).tolist() == [4, 1, 7]
    best = reconstruct(basis, greedy_select(exact, 3), project(basis, greedy_select(exact, 3), a))
    for other in ([4, 1, 3], [0, 2, 5], [4, 7, 3]):  # any other choice leaves more behind
        idx = torch.tensor(other)
        worse = reconstruct(basis, idx, project(basis, idx, a))
        assert (a - worse).norm() > (a - best).norm()
    # the shared-probe sketch squared is an unbiased estimate of each direction's energy
    gen = torch.Generator().manual_seed(4)
    draws = torch.stack([sketch_scores(basis, a, torch.randn(a.shape, generator=gen)).square()
                         for _ in range(4000)])
    assert torch.allclose(draws.mean(0), energy, rtol=0.1)


def test_config_validation() -> None:
    with pytest.raises(ConfigError, match="powersgd needs warmup_steps >= 2"):
        GradCompression(method="powersgd", warmup_steps=1)
    with pytest.raises(ConfigError, match="GradCompression.method"):
        GradCompression(method="topk")
    assert classifier_params(net()) == {"7.weight", "7.bias"}


def _step_grads(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    """Gradients of one batch by parameter name (of the wrapped module for DDP)."""
    model.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()
    inner = getattr(model, "module", model)
    return {n: p.grad.clone() for n, p in inner.named_parameters()}


def test_one_worker_update_is_sgd_on_the_reconstructed_gradient(tmp_path: Path) -> None:
    """Warm-up, refresh and compressed steps: the residual is exactly what was not sent, the
    classifier and norms go dense, and the weights follow plain SGD on what the hook sent."""
    x, y = toy_data(IMAGES)
    config = GradCompression(method="greedylore", rank=2, warmup_steps=1, refresh_every_steps=3)
    model, shadow = net(), net()
    with group_of_one(tmp_path):
        ddp = nn.parallel.DistributedDataParallel(model)
        hook = attach(ddp, config, seed=0)
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        shadow_opt = torch.optim.SGD(shadow.parameters(), lr=0.1, momentum=0.9)
        compressed = {"0.weight", "3.weight"}
        for step in range(7):
            xb, yb = x[8 * step % 48 :][:8], y[8 * step % 48 :][:8]
            local = _step_grads(shadow, xb, yb)
            before = {n: r.clone() for n, r in hook.residual.items()}
            sent = _step_grads(ddp, xb, yb)
            kind = "warm" if step < 1 else "refresh" if (step - 1) % 3 == 0 else "compressed"
            for name, g in local.items():
                owed = g + before.get(name, torch.zeros_like(g))
                left = hook.residual.get(name, torch.zeros_like(g))
                assert torch.allclose(sent[name] + left, owed, atol=1e-6), (step, name)
                if name not in compressed or kind != "compressed":
                    assert torch.allclose(sent[name], owed, atol=1e-6) and not left.any()
                else:  # sent = projection of what is owed on 2 directions of the basis
                    a, _ = orient(owed, "short")
                    coeff = hook.basis[name].T @ orient(sent[name], "short")[0]
                    kept = coeff.norm(dim=1) > 1e-6
                    assert int(kept.sum()) == 2
                    assert torch.allclose(coeff[kept], (hook.basis[name].T @ a)[kept], atol=1e-5)
            opt.step()
            for name, p in shadow.named_parameters():
                p.grad = sent[name]
            shadow_opt.step()
            for p, q in zip(model.parameters(), shadow.parameters()):
                assert torch.allclose(p, q, atol=1e-6)
        assert hook.step == 7 and set(hook.basis) == compressed
        del ddp  # before the group goes (see group_of_one)


@pytest.mark.parametrize("method", ["none", "powersgd", "greedylore"])
def test_counted_bytes_are_the_bytes_handed_to_collectives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, method: str
) -> None:
    seen = [0]
    real = dist.all_reduce

    def counting(tensor, *args, **kwargs):
        seen[0] += tensor.numel() * tensor.element_size()
        return real(tensor, *args, **kwargs)

    monkeypatch.setattr(dist, "all_reduce", counting)
    x, y = toy_data(IMAGES)
    model = net()
    config = GradCompression(method=method, rank=1, warmup_steps=2, refresh_every_steps=4,
                             min_compression=1.0)
    with group_of_one(tmp_path):
        ddp = nn.parallel.DistributedDataParallel(model)
        hook = attach(ddp, config, seed=0)
        for step in range(9):
            _step_grads(ddp, x[step:][:8], y[step:][:8])
        del ddp  # before the group goes (see group_of_one)
    dense = sum(p.numel() * 4 for p in model.parameters())
    assert hook.counter.bytes_uncompressed == 9 * dense
    assert hook.counter.bytes_communicated == seen[0]
    if method == "none":
        assert seen[0] == 9 * dense
    else:
        assert seen[0] < 0.8 * 9 * dense


@pytest.mark.parametrize("method", ["powersgd", "greedylore"])
@pytest.mark.parametrize("bucket_cap_mb", [None, 1e-4])
def test_interrupted_run_resumes_to_the_same_weights_and_counts(
    tmp_path: Path, method: str, bucket_cap_mb: float | None
) -> None:
    """One worker through the hook path (DDP re-lays its buckets out after the first step of
    every run, renumbering them when there are several: PowerSGD's memories must follow).
    One plain worker is plain ``train``."""
    x, y = toy_data(IMAGES)
    config = TrainConfig(epochs=3, batch_size=8, lr=0.05, warmup_steps=2, shift_px=1,
                         checkpoint_every_steps=4)
    parallel = DistributedConfig(bucket_cap_mb=bucket_cap_mb, compression=GradCompression(
        method=method, rank=1, warmup_steps=3, refresh_every_steps=5, min_compression=1.0))
    whole = net()
    expected = train(whole, x, y, config, parallel=parallel)
    state = tmp_path / "run.state"

    def kill(event) -> None:
        if event.step == 10:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(net(), x, y, config, state_path=state, progress=kill, parallel=parallel)
    assert state.exists() and not dist.is_initialized()
    resumed = net(seed=5)
    result = train(resumed, x, y, config, state_path=state, parallel=parallel)
    assert result.resumed_from_step == 8 and not state.exists()
    assert result.bytes_communicated == expected.bytes_communicated
    assert result.bytes_uncompressed == expected.bytes_uncompressed == 18 * sum(
        p.numel() * 4 for p in whole.parameters())
    for p, q in zip(whole.state_dict().values(), resumed.state_dict().values()):
        assert torch.allclose(p.float(), q.float(), atol=1e-6)
    other = parallel.model_copy(update={"compression": GradCompression(
        method=method, rank=2, warmup_steps=3)})
    with pytest.raises(KeyboardInterrupt):
        train(net(), x, y, config, state_path=state, progress=kill, parallel=parallel)
    with pytest.raises(ConfigError, match="other settings"):
        train(net(), x, y, config, state_path=state, parallel=other)
