"""tunelab: fine-tune pre-trained language models end to end, offline, with honest reports.

The public API is what `__all__` lists; everything else may change.
"""

from __future__ import annotations

import os

# No model hub at run time: huggingface_hub reads this once, when transformers is first imported.
# Set HF_HUB_OFFLINE=0 yourself to allow downloads.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from tunelab.config import RunConfig, load_config
from tunelab.errors import ConfigError, DataError, ModelError, RunDirError, TunelabError
from tunelab.pipeline import TrainResult, evaluate, predict, train

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "DataError",
    "ModelError",
    "RunConfig",
    "RunDirError",
    "TrainResult",
    "TunelabError",
    "__version__",
    "evaluate",
    "load_config",
    "predict",
    "train",
]
