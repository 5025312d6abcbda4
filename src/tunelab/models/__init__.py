"""Models: where a model comes from and how it is loaded, safely (safetensors only).

Owns: resolving `model.name` (a local directory, `package:NAME` or a hub id through the HF cache) to a directory, loading
weights and tokenizers, GGUF conversion, and numeric precision (bf16/fp16/fp32, autocast).
May import: `tunelab.config` and the base modules (errors, io, console, suggest, files).
"""

from tunelab.models.sources import (
    DROPOUT_ATTRIBUTES,
    PACKAGE_PREFIX,
    hub_commit,
    load_pretrained,
    load_tokenizer,
    model_dir_for,
    new_modules,
    resolve_model_dir,
)

__all__ = [
    "DROPOUT_ATTRIBUTES",
    "PACKAGE_PREFIX",
    "hub_commit",
    "load_pretrained",
    "load_tokenizer",
    "model_dir_for",
    "new_modules",
    "resolve_model_dir",
]
