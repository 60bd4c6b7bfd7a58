"""Run dispatch modes without importing ``torch._dynamo`` (1.4 s of a small ``map``).

Every ``TorchDispatchMode`` subclass has its ``__torch_dispatch__`` wrapped by
``torch._compile._disable_dynamo``; the wrapper imports ``torch._dynamo`` on its first
call to build a "not traced by torch.compile" version of the function, and caches it on
the function as ``__dynamo_disable`` (torch/_compile.py).  A capture never runs under
``torch.compile``, so inside ``dynamo_free()`` each mode's own function is cached there
instead: the same code runs, nothing is imported.  On exit the cache entries set here are
removed again, so a later ``torch.compile`` in the same process sees torch's behaviour.
When ``torch._dynamo`` is already imported, nothing is changed.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

from torch.utils._python_dispatch import TorchDispatchMode

__all__ = ["dynamo_free"]

_CACHE = "__dynamo_disable"


def _subclasses(cls: type) -> Iterator[type]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


@contextlib.contextmanager
def dynamo_free() -> Iterator[None]:
    """Dispatch modes inside the block call their own ``__torch_dispatch__`` directly."""
    marked = []
    if "torch._dynamo" not in sys.modules:
        for cls in _subclasses(TorchDispatchMode):
            raw = getattr(cls.__dict__.get("__torch_dispatch__"), "__wrapped__", None)
            if raw is not None and getattr(raw, _CACHE, None) is None:
                setattr(raw, _CACHE, raw)
                marked.append(raw)
    try:
        yield
    finally:
        for raw in marked:
            if getattr(raw, _CACHE, None) is raw:
                delattr(raw, _CACHE)
