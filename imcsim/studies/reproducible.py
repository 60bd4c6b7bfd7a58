"""The same accuracy on every x86 machine: pinned CPU kernels for a study's short
fine-tune and evaluation.

Two CPUs give the same float result only if they run the same instructions in the same
order.  PyTorch picks its kernels by the CPU it finds — ATen's vectorised ops by
instruction set (``ATEN_CPU_CAPABILITY``), oneDNN's convolutions by ISA
(``ONEDNN_MAX_CPU_ISA``), MKL's GEMMs by code branch (``MKL_CBWR``, Intel's "conditional
numerical reproducibility") — and splits reductions across as many threads as there are
cores.  A seeded one-epoch fine-tune turns the last-bit differences into a different
model, and 100 test images show it as one image (issue 29: 87.0 % on an AVX-512 EPYC,
86.0 % elsewhere).

``pin_kernel_env`` (run in a worker before it imports torch) caps all three at AVX2 —
the level every x86-64 server CPU since 2013 has — where the CPU has AVX2;
``deterministic_kernels`` runs a block on one thread with deterministic algorithms.
Neither changes what other code in the process computes.  Not covered: CPUs without AVX2
and other architectures (ARM), whose kernels differ; a user's own environment variables
win over these defaults.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

__all__ = ["PINNED_ENV", "deterministic_kernels", "has_avx2", "kernel_choice", "pin_kernel_env"]

PINNED_ENV = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "AVX2"}
"""Kernel choices read when torch (and its MKL and oneDNN) load; documented in PyTorch's
``torch.backends.cpu``, oneDNN's "CPU dispatcher control" and MKL's CNR guide."""


def has_avx2() -> bool:
    """Whether this CPU reports AVX2 (Linux ``/proc/cpuinfo``; False elsewhere)."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return False
    return any(line.startswith("flags") and " avx2" in line for line in text.splitlines())


def pin_kernel_env() -> None:
    """Set ``PINNED_ENV`` (unless already set) on an AVX2 CPU; call before torch loads."""
    if has_avx2():
        for name, value in PINNED_ENV.items():
            os.environ.setdefault(name, value)


@contextlib.contextmanager
def deterministic_kernels(threads: int = 1) -> Iterator[None]:
    """Run the block on ``threads`` torch threads with deterministic algorithms; the
    process's settings are restored afterwards."""
    import torch

    saved = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled())
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.set_num_threads(saved[0])
        torch.use_deterministic_algorithms(saved[1])


def kernel_choice() -> str:
    """The instruction set torch's ATen kernels run with in this process (e.g. ``AVX2``;
    imports torch): what a pinned worker reports."""
    import torch

    return torch.backends.cpu.get_cpu_capability()
