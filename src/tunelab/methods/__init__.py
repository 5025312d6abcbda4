"""Adaptation methods, one file each, registered in METHODS as a `MethodSpec` bundle.

Owns: which weights train (full, freeze, gradual_unfreeze; lora, qlora, ia3, prefix, prompt via
peft), each method's default learning rate, load arguments, callbacks and config checks, and
the helpers they share (layer maps, 4-bit loading, vocabulary extension).
May import: `tunelab.config` and the base modules (errors, registry, suggest). Adding a method is
one file here plus its import below (see CONTRIBUTING.md).
"""

from tunelab.methods import (  # noqa: F401  (each module registers its spec)
    freeze,
    full,
    gradual,
    ia3,
    lora,
    prefix,
    prompt,
    qlora,
)
from tunelab.methods.base import (
    METHODS,
    MethodSpec,
    adapter_only_methods,
    count_parameters,
    learning_rate,
    method_for,
)

__all__ = [
    "METHODS",
    "MethodSpec",
    "adapter_only_methods",
    "count_parameters",
    "learning_rate",
    "method_for",
]
