"""Model compression for crossbars: low-rank, group low-rank and pruning (torch side)."""

from imcsim.nn.compress.lowrank import Factorization, low_rank, low_rank_queries
from imcsim.nn.compress.modules import FACTORIZED, LowRankConv2d, LowRankLinear
from imcsim.nn.compress.patterns import default_patterns, edge_patterns
from imcsim.nn.compress.prune import (
    LayerPruning,
    Pruning,
    layer_mask,
    load_pruned,
    prune,
)
from imcsim.nn.compress.svd import (
    LayerFactor,
    RankRule,
    balanced_factors,
    factorize_conv,
    factorize_linear,
)

__all__ = [
    "FACTORIZED", "Factorization", "LayerFactor", "LayerPruning", "LowRankConv2d",
    "LowRankLinear", "Pruning", "RankRule", "balanced_factors", "default_patterns", "edge_patterns",
    "factorize_conv", "factorize_linear", "layer_mask", "load_pruned", "low_rank",
    "low_rank_queries", "prune",
]
