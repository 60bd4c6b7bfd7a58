"""Where sweep points run: in this process, in local worker processes, or on Ray.

No scheduler of our own: ``concurrent.futures`` locally, Ray's tasks on a cluster.
Every executor yields records as points finish, in completion order.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any, Protocol

from imcsim.errors import ConfigError

Record = dict[str, Any]
BACKENDS = ("local", "ray")


class Executor(Protocol):
    def run(self, points: list[Record]) -> Iterator[Record]: ...


def _evaluate(point: Record) -> Record:
    from imcsim.studies.evaluate import evaluate_point

    return evaluate_point(point)


@dataclass(frozen=True)
class SerialExecutor:
    """Points one after another in this process."""

    def run(self, points: list[Record]) -> Iterator[Record]:
        for point in points:
            yield _evaluate(point)


@dataclass(frozen=True)
class ProcessExecutor:
    """Points on ``workers`` local processes (spawned: safe beside torch's threads)."""

    workers: int

    def run(self, points: list[Record]) -> Iterator[Record]:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(self.workers, mp_context=context) as pool:
            futures = [pool.submit(_evaluate, p) for p in points]
            for future in as_completed(futures):
                yield future.result()


@dataclass(frozen=True)
class RayExecutor:
    """Points as Ray tasks: on the cluster at ``address``, or on a local Ray started here."""

    workers: int | None
    address: str | None

    def run(self, points: list[Record]) -> Iterator[Record]:
        try:
            import ray
        except ImportError:
            raise ConfigError("backend 'ray' needs Ray: pip install 'imcsim[ray]'") from None
        started = not ray.is_initialized()
        if started:
            ray.init(address=self.address, num_cpus=None if self.address else self.workers,
                     include_dashboard=False, log_to_driver=False, configure_logging=False)
        try:
            task = ray.remote(_evaluate)
            pending = [task.remote(p) for p in points]
            while pending:
                ready, pending = ray.wait(pending, num_returns=1)
                yield ray.get(ready[0])
        finally:
            if started:
                ray.shutdown()


def make_executor(backend: str, *, workers: int | None = None, address: str | None = None) -> Executor:
    """``local`` (processes; ``workers=1`` runs in this process) or ``ray``."""
    if workers is not None and workers < 1:
        raise ConfigError(f"workers={workers} must be >= 1")
    if backend == "ray":
        return RayExecutor(workers=workers, address=address)
    if backend != "local":
        raise ConfigError(f"backend {backend!r} unknown (known: {', '.join(BACKENDS)})")
    if address is not None:
        raise ConfigError("--address needs --backend ray")
    count = workers or os.cpu_count() or 1
    return SerialExecutor() if count == 1 else ProcessExecutor(count)
