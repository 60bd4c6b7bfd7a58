"""Run one function on N CPU processes: progress relayed, errors and interrupts handled.

:func:`run_workers` starts ``target(rank, world, init_method, report, *args)`` on N processes
(``torch.multiprocessing`` with the ``forkserver`` start method: the server imports torch, DDP's
torch._dynamo and imcsim once, so every later run of the same program forks ready workers in a
fraction of a second instead of re-importing for seconds) that meet on a file store in a
private temporary directory,
relays rank 0's ``report(event)`` calls to the caller's ``progress`` (synchronously: rank 0
waits for the callback, so a callback that raises stops the run right there) and returns rank
0's return value (tensors, dicts, numbers: saved with ``torch.save``).

Stopping is the parent's business: the workers ignore SIGINT (a terminal's Ctrl-C is handled
by the parent alone), the parent terminates and joins every worker in ``finally`` on
``KeyboardInterrupt``, SIGTERM or any error, and on Linux a worker gets SIGTERM when the fork
server dies (``PR_SET_PDEATHSIG``), which it does when the parent dies outright.  An :class:`~imcsim.errors.ImcsimError` in a worker comes
back as a one-line :class:`~imcsim.errors.ConfigError`.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Callable
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

import torch
import torch.multiprocessing as mp

from imcsim.errors import ConfigError, ImcsimError

__all__ = ["run_workers"]

_PRELOAD = ["torch", "torch._dynamo", "torch.distributed", "imcsim.train.distributed"]


def run_workers(target: Callable[..., Any], args: tuple, n: int,
                progress: Callable[[Any], None] | None = None) -> Any:
    """Run ``target`` on ``n`` processes; rank 0's return value."""
    here, there = mp.get_context("spawn").Pipe() if progress is not None else (None, None)
    with tempfile.TemporaryDirectory(prefix="imcsim-workers-") as out:
        entry = (target, n, f"file://{out}/store", there, out, args)
        procs = _start(entry, n)
        term = _on_sigterm()
        try:
            _supervise(procs, here, progress)
        except (mp.ProcessExitedException, mp.ProcessRaisedException):
            errors = sorted(Path(out).glob("error-*"))
            if errors:
                raise ConfigError(errors[0].read_text()) from None
            raise
        finally:
            _stop(procs.processes)
            if term is not None:
                signal.signal(signal.SIGTERM, term)
        return torch.load(Path(out, "result.pt"), map_location="cpu", weights_only=True)


def _entry(rank, target, world, init, conn, out, args) -> None:
    """A worker: run ``target``, leave rank 0's value (or a one-line error) in ``out``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent()
    report = _Report(conn) if rank == 0 and conn is not None else None
    try:
        value = target(rank, world, init, report, *args)
    except ImcsimError as exc:
        Path(out, f"error-{rank}").write_text(str(exc))
        _exit(3)
    if rank == 0:
        torch.save(value, Path(out, "result.pt"))
    _exit(0)


class _Report:
    """Rank 0's side of the progress relay: send the event, wait until the parent handled it."""

    def __init__(self, conn) -> None:
        self.conn = conn

    def __call__(self, event: Any) -> None:
        self.conn.send(event)
        self.conn.recv()


def _die_with_parent() -> None:
    """Linux: get SIGTERM when the parent (the fork server) dies, even by SIGKILL."""
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        return
    if os.getppid() != parent:  # the parent died before prctl
        _exit(1)


def _exit(code: int) -> None:
    """Leave without interpreter teardown (freeing what DDP's import of torch._dynamo loaded
    takes seconds); everything the parent needs is written and closed by now."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _supervise(procs: mp.ProcessContext, conn, progress: Callable[[Any], None] | None) -> None:
    """Relay rank 0's progress events until every worker has exited (raises if one failed)."""
    while not procs.join(timeout=0):
        # the sentinels of the workers not joined yet: a worker that exits right now still
        # wakes this wait up (the timeout is only a safety net)
        ready = wait([*([conn] if conn is not None else []), *procs.sentinels], timeout=1.0)
        if conn is not None and conn in ready:
            progress(conn.recv())
            conn.send(True)


def _start(entry: tuple, n: int) -> mp.ProcessContext:
    """Start the workers (and the fork server, the first time) with SIGINT ignored."""
    multiprocessing.set_forkserver_preload(_PRELOAD)
    main = threading.current_thread() is threading.main_thread()
    old = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
    try:
        return mp.start_processes(_entry, args=entry, nprocs=n, join=False,
                                  start_method="forkserver")
    finally:
        if main:
            signal.signal(signal.SIGINT, old)


def _on_sigterm():
    """While workers run, SIGTERM unwinds like Ctrl-C (exit 143) so ``finally`` stops them."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def _raise(signum, frame):
        raise SystemExit(128 + signum)

    return signal.signal(signal.SIGTERM, _raise)


def _stop(processes: list) -> None:
    """Terminate (then kill) and join every worker still running."""
    for p in processes:
        if p.is_alive():
            p.terminate()
    for p in processes:
        p.join(timeout=10)
        if p.is_alive():
            p.kill()
            p.join()
