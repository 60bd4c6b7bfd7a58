"""Factorisation methods, one module each, in an explicit registry.

* ``svd`` — truncated SVD of the weights (``svd.py``);
* ``drone`` — data-aware, from the layer's input activations (``drone.py``, NeurIPS 2021);
* ``feature`` — output-covariance projection with bias compensation (``feature.py``,
  Bolaco, EMNLP 2024).

Each works on one weight block, so plain and group low-rank (input or output split) use
the same code.  Add one: write a class with ``name``, ``needs_data`` and
``nested(weight, stats) -> Nested`` (see ``base.py``) and ``register_factorization`` it.
"""

from __future__ import annotations

from imcsim.errors import ConfigError
from imcsim.nn.compress.factorizations.base import Factorizer, Nested, balance
from imcsim.nn.compress.factorizations.drone import Drone
from imcsim.nn.compress.factorizations.feature import Feature
from imcsim.nn.compress.factorizations.svd import Svd

__all__ = [
    "FACTORIZATIONS", "Drone", "Factorizer", "Feature", "Nested", "Svd", "balance",
    "factorization_names", "get_factorization", "register_factorization",
]

FACTORIZATIONS: dict[str, Factorizer] = {}


def register_factorization(name: str, factorizer: Factorizer) -> None:
    """Add ``factorizer`` under ``name``; a name already taken is refused."""
    if name in FACTORIZATIONS:
        raise ConfigError(f"factorization {name!r} is already registered")
    FACTORIZATIONS[name] = factorizer


def get_factorization(name: str) -> Factorizer:
    if name not in FACTORIZATIONS:
        raise ConfigError(
            f"unknown factorization {name!r} (known: {', '.join(factorization_names())})"
        )
    return FACTORIZATIONS[name]


def factorization_names() -> list[str]:
    return list(FACTORIZATIONS)


register_factorization("svd", Svd())
register_factorization("drone", Drone())
register_factorization("feature", Feature())
