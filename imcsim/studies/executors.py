"""Where sweep points run: in this process, in local worker processes, or on Ray.

No scheduler of our own: ``concurrent.futures`` locally, Ray's tasks on a cluster.
Every executor yields records as points finish, in completion order.

Stopping is part of the contract.  When the consumer stops early (Ctrl-C, an error,
``close()`` on the iterator) pending points are cancelled and local workers are
terminated and reaped before the exception travels on; points that had already
finished are still yielded first, so they get saved.  Local workers ignore SIGINT (the
parent decides) and die with the parent even if it is killed with SIGKILL (Linux
``PR_SET_PDEATHSIG``, plus a watchdog thread that polls the parent on any system).
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any, Protocol

from imcsim.errors import ConfigError

__all__ = ["BACKENDS", "MAX_WORKERS", "Executor", "ProcessExecutor", "RayExecutor",
           "SerialExecutor", "closing_iterator", "make_executor"]

Record = dict[str, Any]
BACKENDS = ("local", "ray")
MAX_WORKERS = 256
"""Most worker processes (or Ray CPUs) one sweep may ask for."""
_PR_SET_PDEATHSIG = 1
_WATCH_SECONDS = 0.5


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


def _die_with_parent(parent: int) -> None:
    """End this process when ``parent`` ends, however it ends."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(_WATCH_SECONDS)
        os._exit(1)

    if os.getppid() != parent:  # the parent died before we got here
        os._exit(1)
    threading.Thread(target=watch, name="imcsim-parent-watch", daemon=True).start()


def _worker_init(parent: int) -> None:
    """Local worker set-up: Ctrl-C is the parent's to handle; die with the parent."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent(parent)


@contextlib.contextmanager
def _workers_ignore_sigint() -> Iterator[None]:
    """Ignore SIGINT while workers are started, so that they are born ignoring it (an
    ignored signal stays ignored across exec): Ctrl-C at a terminal, sent to the whole
    process group, then reaches only the parent, even during a worker's imports."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _terminate(pool: ProcessPoolExecutor) -> None:
    """Cancel what has not started, terminate the workers and reap them."""
    workers = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in workers:
        process.terminate()
    for process in workers:
        process.join(timeout=5)
        if process.is_alive():  # pragma: no cover - SIGTERM ignored
            process.kill()
            process.join()


def _finished(futures: list[Future], yielded: set[Future]) -> list[Record]:
    return [f.result() for f in futures if f not in yielded and f.done()
            and not f.cancelled() and f.exception() is None]


@dataclass(frozen=True)
class ProcessExecutor:
    """Points on ``workers`` local processes (spawned: safe beside torch's threads)."""

    workers: int

    def run(self, points: list[Record]) -> Iterator[Record]:
        if not points:
            return
        context = multiprocessing.get_context("spawn")
        pool = ProcessPoolExecutor(min(self.workers, len(points)), mp_context=context,
                                   initializer=_worker_init, initargs=(os.getpid(),))
        with _workers_ignore_sigint():  # the workers are started by the first submits
            futures = [pool.submit(_evaluate, p) for p in points]
        yielded: set[Future] = set()
        try:
            for future in as_completed(futures):
                yielded.add(future)
                yield future.result()
        except KeyboardInterrupt:
            _terminate(pool)
            yield from _finished(futures, yielded)  # saved before the interrupt goes on
            raise
        except BaseException:  # an error, or the consumer closed the iterator
            _terminate(pool)
            raise
        pool.shutdown(wait=True)


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
        pending: list = []
        try:
            task = ray.remote(_evaluate)
            pending = [task.remote(p) for p in points]
            while pending:
                ready, pending = ray.wait(pending, num_returns=1)
                yield ray.get(ready[0])
        except KeyboardInterrupt:
            ready: list = []
            if pending:
                ready, pending = ray.wait(pending, num_returns=len(pending), timeout=0)
            _cancel(ray, pending)
            yield from ray.get(ready)  # finished points are saved before the interrupt
            raise
        except BaseException:
            _cancel(ray, pending)
            raise
        finally:
            if started:
                ray.shutdown()


def _cancel(ray: Any, refs: list) -> None:
    for ref in refs:
        with contextlib.suppress(Exception):
            ray.cancel(ref, force=True)


@contextlib.contextmanager
def closing_iterator(records: Iterable[Record]) -> Iterator[None]:
    """Close the executor's iterator however the loop ends: workers stop at once."""
    try:
        yield
    finally:
        close = getattr(records, "close", None)
        if close is not None:
            close()


def make_executor(backend: str, *, workers: int | None = None, address: str | None = None) -> Executor:
    """``local`` (processes; ``workers=1`` runs in this process) or ``ray``."""
    if workers is not None and not 1 <= workers <= MAX_WORKERS:
        raise ConfigError(f"workers={workers} must be in 1..{MAX_WORKERS}")
    if backend == "ray":
        return RayExecutor(workers=workers, address=address)
    if backend != "local":
        raise ConfigError(f"backend {backend!r} unknown (known: {', '.join(BACKENDS)})")
    if address is not None:
        raise ConfigError("--address needs --backend ray")
    count = workers or os.cpu_count() or 1
    return SerialExecutor() if count == 1 else ProcessExecutor(count)
