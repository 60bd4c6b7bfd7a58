"""Model compression for crossbars: low-rank, group low-rank and pruning (torch side)."""

from imcsim.nn.compress.exclusions import dense_layer_names
from imcsim.nn.compress.kernel_patterns import (
    assign_patterns,
    kernel_pattern_prune,
    pattern_library,
)
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
    "LowRankLinear", "Pruning", "RankRule", "assign_patterns", "balanced_factors",
    "default_patterns", "dense_layer_names", "edge_patterns", "factorize_conv",
    "factorize_linear", "kernel_pattern_prune", "layer_mask", "load_pruned", "low_rank",
    "low_rank_queries", "pattern_library", "prune",
]
