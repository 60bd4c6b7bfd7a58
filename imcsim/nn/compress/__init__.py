"""Model compression for crossbars: low-rank, group low-rank and pruning (torch side), and
the hardware-aware rank search (factorisation and rank-selector registries, ``search_ranks``)."""

from imcsim.nn.compress.exclusions import dense_layer_names
from imcsim.nn.compress.factorizations import (
    factorization_names,
    get_factorization,
    register_factorization,
)
from imcsim.nn.compress.hwcost import Budget, CostTable
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
from imcsim.nn.compress.search import SearchResult, search_ranks
from imcsim.nn.compress.selectors import (
    SearchConfig,
    get_selector,
    register_selector,
    selector_names,
)
from imcsim.nn.compress.svd import (
    LayerFactor,
    RankRule,
    balanced_factors,
    factorize_conv,
    factorize_linear,
)

__all__ = [
    "FACTORIZED", "Budget", "CostTable", "Factorization", "LayerFactor", "LayerPruning",
    "LowRankConv2d", "LowRankLinear", "Pruning", "RankRule", "SearchConfig", "SearchResult",
    "assign_patterns", "balanced_factors", "default_patterns", "dense_layer_names",
    "edge_patterns", "factorization_names", "factorize_conv", "factorize_linear",
    "get_factorization", "get_selector", "kernel_pattern_prune", "layer_mask", "load_pruned",
    "low_rank", "low_rank_queries", "pattern_library", "prune", "register_factorization",
    "register_selector", "search_ranks", "selector_names",
]
