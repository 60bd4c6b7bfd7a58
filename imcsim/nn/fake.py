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
import functools
from collections.abc import Callable, Iterator

import torch
from torch._subclasses.fake_tensor import FakeTensorMode, is_fake

__all__ = ["INIT_FUNCTIONS", "is_fake", "shape_only"]


INIT_FUNCTIONS = (
    "uniform_", "normal_", "trunc_normal_", "constant_", "ones_", "zeros_", "eye_", "dirac_",
    "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_",
    "orthogonal_", "sparse_",
)
"""``torch.nn.init`` functions that skip fake tensors inside ``shape_only``: a fake
tensor has no values to initialise, and some (``trunc_normal_``) read values."""


def _skipping_fakes(function: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    """``function`` for a real tensor, nothing for a fake one (a library that keeps a
    reference to the patched function — transformers does — stays correct)."""
    @functools.wraps(function)
    def init(tensor: torch.Tensor, *args: object, **kwargs: object) -> torch.Tensor:
        return tensor if is_fake(tensor) else function(tensor, *args, **kwargs)
    return init


_SKIPPING = {name: _skipping_fakes(getattr(torch.nn.init, name)) for name in INIT_FUNCTIONS}


@contextlib.contextmanager
def shape_only() -> Iterator[FakeTensorMode]:
    """Fake-tensor mode with bfloat16 as the default floating dtype and weight
    initialisation off (all restored on exit)."""
    dtype = torch.get_default_dtype()
    saved = {name: getattr(torch.nn.init, name) for name in INIT_FUNCTIONS}
    torch.set_default_dtype(torch.bfloat16)
    for name in INIT_FUNCTIONS:
        setattr(torch.nn.init, name, _SKIPPING[name])
    try:
        with FakeTensorMode() as mode:
            yield mode
    finally:
        torch.set_default_dtype(dtype)
        for name, function in saved.items():
            setattr(torch.nn.init, name, function)
