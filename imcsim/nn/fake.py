"""Shape-only execution: build a model and run it on fake tensors (no weights allocated).

Mapping needs shapes, never values.  Inside ``shape_only()`` every tensor a model
creates — parameters, buffers, inputs, activations, a KV cache — is a
``torch._subclasses.fake_tensor.FakeTensor``: it has a shape, a dtype and strides, and
no storage, so a 70B-parameter model is built and run in seconds and a few hundred MB.
The capture (``imcsim.nn.capture``) then sees the same ATen operators with the same
shapes as a real run; what needs values is skipped or refused: pruning masks (a fake
weight has no zeros to find), finiteness checks, and data-dependent control flow
(``nonzero``, ``.item()``: the model fails with ``DataDependentOutputException``).

Floating tensors default to bfloat16 inside: the shapes are the same in any dtype, and
transformers' grouped-matmul experts (Mixtral) only run in bfloat16 on CPU.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch._subclasses.fake_tensor import FakeTensorMode, is_fake

__all__ = ["is_fake", "shape_only"]


@contextlib.contextmanager
def shape_only() -> Iterator[FakeTensorMode]:
    """Fake-tensor mode with bfloat16 as the default floating dtype (both restored on exit)."""
    dtype = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with FakeTensorMode() as mode:
            yield mode
    finally:
        torch.set_default_dtype(dtype)
