"""Operator-level capture: every multiply-accumulate a forward pass executes, with its owner.

One forward pass runs under a ``TorchDispatchMode`` that sees every ATen operator the
model executes — module calls, ``F.linear``/``F.conv*`` calls, ``nn.MultiheadAttention``'s
functional path, ``torch.addmm`` inside transformers' ``Conv1D``, LSTM gate matmuls —
with the real tensors.  Multiply-accumulates all pass through five operators
(``mm``, ``addmm``, ``bmm``, ``baddbmm``, ``convolution``) once PyTorch's fused fast paths
are off (``reference_kernels``: the MHA/Transformer fast path, oneDNN and the fused
attention kernels compute the same function, but hide their matmuls inside one opaque
kernel that neither this capture nor ``torch.utils.flop_counter`` can see).

Which operand is a *weight* is decided by data flow, not by module classes: every tensor
computed from the example input is an activation (taint tracking through every operator);
anything else — parameters, buffers, weights rebuilt in the forward pass (pruning masks,
parametrizations, ``W.t()``) — is a weight and keeps the qualified name of the parameter
it came from.  A product with one weight operand is a weight layer; a product of two
activations (QKᵀ, A·V, ``bmm``/``matmul``/``scaled_dot_product_attention`` between
activations) is a ``matmul`` layer; a product of two weights is listed as unmapped (it
is a constant that belongs offline).

Routed experts (``_grouped_mm``: transformers' grouped-matmul experts, e.g. Mixtral) are
one product per call: the routed rows (tokens × top-k) against one (in, out) expert
slice, with ``experts`` stored; ``FlopCounterMode`` gets a formula for it (it has none).
Digital work is recorded beside the products (``Capture.digital``): embedding lookups
(with the table read), softmax, rotary cos/sin tables, and the outputs of norm modules.
Everything runs on fake tensors as well (``imcsim.nn.fake.shape_only``): no operator
here reads a value, except ``_shared``, which on a fake tensor trusts strides only.

Names: a weight layer is named after the module owning the weight (``layer1.0.conv1``;
``attn.in_proj`` for ``in_proj_weight``), an activation product after the innermost
running module (``blocks.0.attn.matmul``, or the module itself when it is an
``imcsim.nn.ops.MatMul``); the k-th use of one name is ``name#k``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.utils._pytree as pytree
from torch import nn
from torch._subclasses.fake_tensor import is_fake
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.weak import WeakIdKeyDictionary

from imcsim.nn.devices import module_device, to_device
from imcsim.nn.dynamo_free import dynamo_free

__all__ = ["Product", "Recorder", "reference_kernels", "run_capture"]

aten = torch.ops.aten
PRODUCTS = {
    aten.mm.default: (0, 1), aten.addmm.default: (1, 2), aten.bmm.default: (0, 1),
    aten.baddbmm.default: (1, 2),
}
"""Matrix products and the argument positions of their two factors."""
GROUPED_MM = getattr(aten, "_grouped_mm", None) and aten._grouped_mm.default
"""Routed expert products (transformers' ``grouped_mm`` experts, e.g. Mixtral)."""
DIGITAL_OPS = {
    aten.embedding.default: "embedding", aten._softmax.default: "softmax",
    aten.cos.default: "rotary", aten.sin.default: "rotary",
    **({aten._safe_softmax.default: "softmax"} if hasattr(aten, "_safe_softmax") else {}),
}
"""Operations that are digital work, not products: table lookups, softmax, and the
cos/sin tables of rotary position embeddings.  Normalisations are counted per module
(``_Scope``: the output elements of every module whose class name holds ``Norm``)."""


@contextlib.contextmanager
def reference_kernels() -> Iterator[None]:
    """PyTorch's reference (math) kernels: no MHA/Transformer fast path, no oneDNN, SDPA
    through its math decomposition.  Restored on exit."""
    fast, onednn = torch.backends.mha.get_fastpath_enabled(), torch._C._get_mkldnn_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    torch._C._set_mkldnn_enabled(False)
    try:
        with sdpa_kernel(SDPBackend.MATH):
            yield
    finally:
        torch.backends.mha.set_fastpath_enabled(fast)
        torch._C._set_mkldnn_enabled(onednn)


@dataclass
class Product:
    """One captured multiply-accumulate operator, before it becomes a ``LayerShape``."""

    op: str
    """``mm``, ``bmm`` (addmm/baddbmm fold into these) or ``convolution``."""
    owner: str
    """Qualified name of the innermost module running (``""``: the model itself)."""
    owner_module: nn.Module | None
    weight: str | None
    """Qualified name of the weight's source tensor; ``None`` for two activations."""
    macs: int
    """Multiply-accumulates of the whole call (every example of the batch)."""
    args: dict[str, Any] = field(default_factory=dict)
    """Operator geometry: shapes, strides, convolution parameters, which factor is the weight."""
    activation: torch.Tensor | None = None
    """The activation operand (kept only when the capture records inputs)."""
    weight_tensor: torch.Tensor | None = None
    """The weight operand: (out, in) for a product, the conv weight for a convolution."""


def _tensors(tree: Any) -> list[torch.Tensor]:
    return [t for t in pytree.tree_leaves(tree) if isinstance(t, torch.Tensor)]


class Recorder(TorchDispatchMode):
    """Dispatch mode that tracks activations and weight provenance and records products."""

    def __init__(self, sources: dict[int, tuple[torch.Tensor, str]], owner: Callable[[], tuple[str, nn.Module | None]],
                 keep_activations: bool = False) -> None:
        super().__init__()
        self.tainted: WeakIdKeyDictionary = WeakIdKeyDictionary()
        self.source: WeakIdKeyDictionary = WeakIdKeyDictionary()
        self.params: set[str] = set()
        for tensor, name in sources.values():
            self.source[tensor] = name
            if isinstance(tensor, nn.Parameter):
                self.params.add(name)
        self.owner = owner
        self.keep = keep_activations
        self.products: list[Product] = []
        self.digital: list[tuple[str, str, int, str | None]] = []
        """``(kind, owner, elements, table)`` of every digital operation seen."""

    def mark_inputs(self, inputs: Any) -> None:
        for t in _tensors(inputs):
            self.tainted[t] = True

    def is_activation(self, t: torch.Tensor) -> bool:
        return t in self.tainted

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        inputs = _tensors((args, kwargs))
        live = any(t in self.tainted for t in inputs)
        origin = self._origin(inputs)
        for t in _tensors(out):
            if live:
                self.tainted[t] = True
            elif origin is not None:
                self.source[t] = origin
        if func in PRODUCTS:
            self._product(func, args)
        elif func is aten.convolution.default:
            self._convolution(args)
        elif func is GROUPED_MM:
            self._grouped(args)
        elif func in DIGITAL_OPS:
            self._digital(func, args, out)
        return out

    def _origin(self, inputs: list[torch.Tensor]) -> str | None:
        """Source name of an output computed from weights: a parameter's name wins over a
        buffer's (``weight_orig * weight_mask`` belongs to ``weight_orig``)."""
        named = [self.source[t] for t in inputs if t in self.source]
        return next((n for n in named if n in self.params), named[0] if named else None)

    def _role(self, t: torch.Tensor) -> str | None:
        """``None`` for an activation, else the weight's source name (``"?"`` if unnamed)."""
        return None if t in self.tainted else self.source.get(t, "?")

    def _product(self, func, args: tuple) -> None:  # noqa: ANN001
        i, j = PRODUCTS[func]
        a, b = args[i], args[j]
        batched = a.dim() == 3
        g, (n, k), m = (a.shape[0] if batched else 1), a.shape[-2:], b.shape[-1]
        roles = (self._role(a), self._role(b))
        side = _weight_side(roles)
        geometry = {"groups": g, "rows": n, "reduction": k, "cols": m, "side": side}
        weight = None
        if side in (0, 1):
            matrix = b.transpose(-2, -1) if side == 1 else a  # (out, in) as nn.Linear holds it
            geometry["shared"] = not batched or _shared(matrix)
            weight = matrix[0] if batched else matrix
        act = None
        if self.keep:  # the streamed operand (for two weights, e.g. a zero initial state: a)
            act = b.transpose(-2, -1) if side == 0 else a
        name = roles[side] if side in (0, 1) else (roles[1] if side == 2 else None)
        owner, module = self.owner()
        self.products.append(Product("bmm" if batched else "mm", owner, module, name,
                                     g * n * k * m, geometry, act, weight))

    def _grouped(self, args: tuple) -> None:
        """``_grouped_mm(x, w, offs)``: the routed rows of ``x`` (tokens × top-k) each meet
        one expert's (in, out) slice of ``w`` (experts, in, out) — a mixture of experts."""
        x, w = args[0], args[1]
        n, k, m = x.shape[0], w.shape[-2], w.shape[-1]
        owner, module = self.owner()
        # another layout (batched x, 2-d w) or an activation as w: listed as unmapped
        routed = w.dim() == 3 and x.dim() == 2 and w not in self.tainted
        geometry = {"groups": 1, "rows": n, "reduction": k, "cols": m, "side": 1,
                    "shared": routed, "experts": w.shape[0]}
        self.products.append(Product("mm", owner, module, self._role(w), n * k * m, geometry,
                                     x if self.keep else None,
                                     w[0].transpose(0, 1) if routed else None))

    def _digital(self, func, args: tuple, out: Any) -> None:  # noqa: ANN001
        """Element counts of the operations a digital unit does (embedding lookups, norms,
        softmax), keyed by kind."""
        kind = DIGITAL_OPS[func]
        if kind == "embedding":
            if args[0] in self.tainted:  # a table computed from the input is no lookup
                return
            self.digital.append(("embedding", self.owner()[0], _tensors(out)[0].numel(),
                                 self.source.get(args[0], "?")))
            return
        self.digital.append((kind, self.owner()[0], _tensors(out)[0].numel(), None))

    def _convolution(self, args: tuple) -> None:
        x, w = args[0], args[1]
        stride, padding, dilation, transposed, output_padding, groups = args[3:9]
        owner, module = self.owner()
        geometry = {"input": tuple(x.shape), "weight": tuple(w.shape), "stride": tuple(stride),
                    "padding": tuple(padding), "dilation": tuple(dilation),
                    "transposed": bool(transposed), "output_padding": tuple(output_padding),
                    "groups": int(groups), "dynamic": w in self.tainted}
        spatial = x.shape[2:] if transposed else _conv_out(x.shape[2:], w.shape[2:], stride,
                                                            padding, dilation)
        macs = x.shape[0] * _prod(w.shape) * _prod(spatial)
        self.products.append(Product("convolution", owner, module, self._role(w), macs,
                                     geometry, x if self.keep else None, w))


def _weight_side(roles: tuple[str | None, str | None]) -> int | None:
    """Which factor is the weight: 1 (the second), 0 (the first), None (both activations),
    2 (both weights: a constant product)."""
    if roles[0] is None:
        return None if roles[1] is None else 1
    return 0 if roles[1] is None else 2


def _prod(values) -> int:  # noqa: ANN001
    out = 1
    for v in values:
        out *= int(v)
    return out


def _conv_out(size, kernel, stride, padding, dilation) -> tuple[int, ...]:  # noqa: ANN001
    return tuple((i + 2 * p - d * (k - 1) - 1) // s + 1
                 for i, k, s, p, d in zip(size, kernel, stride, padding, dilation))


def _shared(t: torch.Tensor) -> bool:
    """One matrix broadcast over the batch of a ``bmm`` (expanded, or identical copies;
    a fake tensor has no values to compare, so only an expanded one counts)."""
    if t.shape[0] == 1 or t.stride(0) == 0:
        return True
    return not is_fake(t) and bool((t == t[:1]).all())


class _Scope:
    """Which module is running: forward pre/post hooks on every module keep a stack."""

    def __init__(self, model: nn.Module) -> None:
        self.stack: list[tuple[str, nn.Module]] = []
        self.handles = []
        self.norms: list[tuple[str, str, int, None]] = []
        for name, module in model.named_modules():
            self.handles.append(module.register_forward_pre_hook(self._enter(name)))
            self.handles.append(module.register_forward_hook(self._leave, always_call=True))
        self.ran: dict[str, nn.Module] = {}

    def _enter(self, name: str):  # noqa: ANN202
        def hook(module: nn.Module, _args: object) -> None:
            self.stack.append((name, module))
            self.ran.setdefault(name, module)
        return hook

    def _leave(self, module: nn.Module, _args: object, out: object) -> None:
        if self.stack:
            name = self.stack.pop()[0]
            outputs = _tensors(out)
            if "Norm" in type(module).__name__ and outputs:
                self.norms.append(("norm", name, outputs[0].numel(), None))

    def current(self) -> tuple[str, nn.Module | None]:
        return self.stack[-1] if self.stack else ("", None)

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


def weight_sources(model: nn.Module) -> dict[int, tuple[torch.Tensor, str]]:
    """``id → (tensor, qualified name)`` of every parameter and buffer (first name wins)."""
    found: dict[int, tuple[torch.Tensor, str]] = {}
    for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        found.setdefault(id(tensor), (tensor, name))
    return found


@dataclass(frozen=True)
class Capture:
    """Products of one forward pass, the modules that ran, and the flop counter's count."""

    products: tuple[Product, ...]
    ran: dict[str, nn.Module]
    reference_macs: int
    """MACs of the same pass counted by ``torch.utils.flop_counter.FlopCounterMode`` (flops / 2)."""
    digital: tuple[tuple[str, str, int, str | None], ...] = ()
    """``(kind, owner, elements, table)`` of the digital operations (``Recorder.digital``)."""


def run_capture(model: nn.Module, inputs: Any, *, keep_activations: bool = False) -> Capture:
    """Run ``inputs`` once through ``model`` (eval mode, no grad, reference kernels) and
    capture every product.  ``inputs``: a tensor, a tuple of positional tensors or a dict
    of keyword tensors, moved to the model's device first.  Hooks are removed and the
    training mode restored in ``finally``."""
    from torch.utils.flop_counter import FlopCounterMode

    inputs = to_device(inputs, module_device(model))

    scope = _Scope(model)
    recorder = Recorder(weight_sources(model), scope.current, keep_activations)
    was_training = model.training
    try:
        model.eval()
        recorder.mark_inputs(inputs)
        counter = FlopCounterMode(display=False, custom_mapping=_EXTRA_FLOPS)
        with torch.no_grad(), reference_kernels(), dynamo_free(), counter, recorder:
            _call(model, inputs)
    finally:
        model.train(was_training)
        scope.remove()
    return Capture(tuple(recorder.products), dict(scope.ran), counter.get_total_flops() // 2,
                   tuple(recorder.digital + scope.norms))


def _grouped_mm_flops(x_shape, w_shape, *args, out_shape=None, **kwargs) -> int:  # noqa: ANN001, ANN003
    """Flops of ``_grouped_mm`` for the flop counter, which has no formula for it: every
    routed row meets one (in, out) expert slice, 2·rows·in·out."""
    return 2 * x_shape[0] * w_shape[-2] * w_shape[-1]


_EXTRA_FLOPS = {aten._grouped_mm: _grouped_mm_flops} if GROUPED_MM is not None else {}


def _call(model: nn.Module, inputs: Any) -> Any:
    if isinstance(inputs, dict):
        return model(**inputs)
    if isinstance(inputs, (tuple, list)):
        return model(*inputs)
    return model(inputs)
