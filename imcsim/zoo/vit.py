"""Tiny ViT: a small vision transformer for 32×32 images, with optional low-rank queries.

After Gent Wu, "Powerful Design of Small Vision Transformer on CIFAR10" (arXiv 2501.06220,
2025; REFERENCES.md, Tiny ViT entry): 4×4 patches on a 32×32 image (64 tokens), width 192, multi-head self-attention
(12 heads of 16), MLP ratio 2, pre-norm blocks, learned position embeddings and
``cls_tokens`` class tokens whose outputs are averaged before the classifier.  The
depth is smaller than the paper's so that the model trains on two CPU cores in minutes
(``depth=4`` by default; the paper's setting is a constructor argument).

Every weight matmul is an ``nn.Linear`` (``q``, ``k``, ``v``, ``proj``, ``fc1``, ``fc2``,
``head``) or the patch ``nn.Conv2d``; the two activation products of each attention,
QKᵀ and A·V, run through ``imcsim.nn.ops.MatMul`` modules (``qk``, ``av``) so that the
chip can place them (digital unit or crossbars written per input) and ``to_crossbar``
can simulate them there.

**Low-rank queries** (the paper's Multi-Head Latent Attention for the query):
q = W_up·W_down·x with a latent of ``latent_q`` (64) — ``latent_q`` builds the model
with factorised queries from scratch, and ``imcsim.nn.compress.low_rank_queries`` turns a
trained dense model's ``q`` projections into the same form by truncated SVD.
"""

from __future__ import annotations

import torch
from torch import nn

from imcsim.nn.compress.modules import LowRankLinear
from imcsim.nn.ops import MatMul

__all__ = ["Attention", "Block", "TinyViT", "tiny_vit"]


class Attention(nn.Module):
    """Multi-head self-attention with separate q, k, v projections and explicit products."""

    def __init__(self, dim: int, heads: int, latent_q: int | None = None) -> None:
        super().__init__()
        self.heads, self.scale = heads, (dim // heads) ** -0.5
        dense = nn.Linear(dim, dim)
        self.q = dense if latent_q is None else LowRankLinear(dense, latent_q)
        self.k, self.v, self.proj = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.qk, self.av = MatMul(), MatMul()

    def _split(self, t: torch.Tensor) -> torch.Tensor:
        b, n, c = t.shape
        return t.view(b, n, self.heads, c // self.heads).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self._split(self.q(x) * self.scale), self._split(self.k(x)), self._split(self.v(x))
        attn = self.qk(q, k.transpose(-2, -1)).softmax(dim=-1)
        out = self.av(attn, v).transpose(1, 2).flatten(2)
        return self.proj(out)


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(LN(x)), then x + MLP(LN(x)) with GELU."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, latent_q: int | None) -> None:
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.norm1, self.attn = nn.LayerNorm(dim), Attention(dim, heads, latent_q)
        self.norm2 = nn.LayerNorm(dim)
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.fc2(self.act(self.fc1(self.norm2(x))))


class TinyViT(nn.Module):
    """Patch embedding, class tokens, ``depth`` blocks, final norm, linear head."""

    def __init__(
        self, num_classes: int = 10, in_channels: int = 3, *, image: int = 32, patch: int = 4,
        dim: int = 192, depth: int = 4, heads: int = 12, mlp_ratio: float = 2.0,
        cls_tokens: int = 2, latent_q: int | None = None,
    ) -> None:
        super().__init__()
        tokens = (image // patch) ** 2 + cls_tokens
        self.patch = nn.Conv2d(in_channels, dim, patch, stride=patch)
        self.cls = nn.Parameter(torch.zeros(1, cls_tokens, dim))
        self.pos = nn.Parameter(torch.zeros(1, tokens, dim))
        self.blocks = nn.Sequential(*[Block(dim, heads, mlp_ratio, latent_q) for _ in range(depth)])
        self.norm, self.head = nn.LayerNorm(dim), nn.Linear(dim, num_classes)
        self.cls_tokens = cls_tokens
        self._init()

    def _init(self) -> None:
        nn.init.trunc_normal_(self.pos, std=0.02)
        nn.init.trunc_normal_(self.cls, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(len(x), -1, -1), x], dim=1) + self.pos
        x = self.norm(self.blocks(x))
        return self.head(x[:, : self.cls_tokens].mean(dim=1))


def tiny_vit(num_classes: int = 10, in_channels: int = 3, **options: object) -> nn.Module:
    """Tiny ViT (see the module docstring); ``options`` go to ``TinyViT``."""
    return TinyViT(num_classes, in_channels, **options)  # type: ignore[arg-type]
