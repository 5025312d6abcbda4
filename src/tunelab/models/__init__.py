"""Models: where a model comes from and how it is loaded, safely (safetensors only).

Owns: resolving `model.name` (a local directory or `package:NAME`) to a directory, loading
weights and tokenizers, GGUF conversion, and numeric precision (bf16/fp16/fp32, autocast).
May import: `tunelab.config` and the base modules (errors, io, console, suggest, files).
"""

from tunelab.models.sources import (
    DROPOUT_ATTRIBUTES,
    PACKAGE_PREFIX,
    load_pretrained,
    load_tokenizer,
    new_modules,
    resolve_model_dir,
)

__all__ = [
    "DROPOUT_ATTRIBUTES",
    "PACKAGE_PREFIX",
    "load_pretrained",
    "load_tokenizer",
    "new_modules",
    "resolve_model_dir",
]
