"""Training: the fine-tuning loop, its resumable state, data-parallel workers and the gradient
compressors they communicate through.

The names below are resolved on first use (PEP 562), so ``import imcsim.train`` imports no
torch.  See ``imcsim/train/README.md`` for what lives here and how to add a compressor.
"""

from imcsim._lazy import lazy_getattr

_LAZY = {
    "TrainConfig": "imcsim.train.loop",
    "TrainResult": "imcsim.train.loop",
    "finetune": "imcsim.train.loop",
    "train": "imcsim.train.loop",
    "DistributedConfig": "imcsim.train.distributed",
    "GradCompression": "imcsim.train.grad_compression",
}

__all__ = sorted(_LAZY)
__getattr__ = lazy_getattr(__name__, _LAZY)
