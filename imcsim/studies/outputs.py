"""Where studies write: output paths checked before any work, exclusive locks.

A run must not compute for an hour and then fail to write, nor write over another
run that is still going.  ``check_output_dir``/``check_output_file`` prove a path is
writable by creating (and removing) a probe file next to where the output goes;
``exclusive`` holds an OS lock (``flock``) that the kernel releases when the process
ends, however it ends (Ctrl-C, a crash, SIGKILL).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from imcsim.errors import ConfigError

__all__ = ["LOCK_NAME", "check_output_dir", "check_output_file", "exclusive", "lock_path"]

LOCK_NAME = ".imcsim.lock"


def _as_path(path: str | Path, what: str) -> Path:
    text = str(path)
    if not text.strip():
        raise ConfigError(f"{what}: empty path")
    if "\0" in text:
        raise ConfigError(f"{what}: path {text!r} holds a NUL character")
    return Path(text)


def _existing_ancestor(path: Path, what: str) -> Path:
    """The nearest ancestor of ``path`` that exists; it must be a folder."""
    for parent in path.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"{what} {str(path)!r}: {str(parent)!r} is a file, not a folder")
            return parent
    raise ConfigError(f"{what} {str(path)!r}: no existing parent folder")  # pragma: no cover


def _probe(folder: Path, what: str, path: Path) -> None:
    """Create and remove a file in ``folder``: the only reliable writability test."""
    try:
        fd, name = tempfile.mkstemp(prefix=".imcsim-probe-", dir=folder)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigError(f"{what} {str(path)!r}: cannot write in {str(folder)!r} ({reason})") from None
    os.close(fd)
    os.unlink(name)


def check_output_dir(path: str | Path, what: str = "output folder") -> Path:
    """``path`` as a folder that exists (created if needed) and can be written."""
    path = _as_path(path, what)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{what} {str(path)!r} is a file, not a folder")
    if not path.exists():
        _existing_ancestor(path, what)
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"{what} {str(path)!r}: {exc.strerror or exc}") from None
    _probe(path, what, path)
    return path


def check_output_file(path: str | Path, what: str = "output file") -> Path:
    """``path`` as a file that can be (re)written: not a folder, its folder writable.

    Missing parent folders are fine (they are created on write) when their nearest
    existing ancestor is a writable folder.
    """
    path = _as_path(path, what)
    if path.is_dir():
        raise ConfigError(f"{what} {str(path)!r} is a folder; give a file name")
    if path.exists() and not os.access(path, os.W_OK):
        raise ConfigError(f"{what} {str(path)!r} is read-only")
    folder = path.parent if path.parent.exists() else _existing_ancestor(path, what)
    if not folder.is_dir():
        raise ConfigError(f"{what} {str(path)!r}: {str(folder)!r} is a file, not a folder")
    _probe(folder, what, path)
    return path


def lock_path(target: Path) -> Path:
    """The lock file of an output folder (inside it) or output file (a hidden sibling)."""
    return target / LOCK_NAME if target.is_dir() else target.with_name(f".{target.name}.lock")


@contextlib.contextmanager
def exclusive(target: Path, what: str = "output folder") -> Iterator[None]:
    """Hold an exclusive lock on an output folder or file: a second run that wants it
    fails at once with a clear error.  The lock file is removed on release."""
    path = lock_path(target)
    handle = _acquire(path, target, what)
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield
    finally:
        with contextlib.suppress(OSError):
            path.unlink()  # before closing: a waiter that opened it re-checks the inode
        handle.close()  # closing the descriptor releases the lock


def _acquire(path: Path, target: Path, what: str):
    """Open and lock ``path``; retry if the file was replaced while we waited for it."""
    while True:
        try:
            handle = open(path, "a+")  # noqa: SIM115 - held by the caller
        except OSError as exc:
            raise ConfigError(f"{what} {str(target)!r}: cannot create its lock file "
                              f"({exc.strerror or exc})") from None
        if not _try_lock(handle):
            handle.seek(0)
            owner = handle.read().strip() or "unknown"
            handle.close()
            raise ConfigError(
                f"{what} {str(target)!r} is in use by another imcsim run (pid {owner}); "
                "wait for it to finish or choose another one"
            )
        try:
            same = os.fstat(handle.fileno()).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return handle
        handle.close()  # we locked a file its last owner had just removed: try again


def _try_lock(handle) -> bool:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        import msvcrt

        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True
