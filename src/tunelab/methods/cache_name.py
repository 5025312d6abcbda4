"""Prefix tuning across the `past_key_values` → `cache` rename of transformers 5.24.

transformers 5.24 renamed the forward argument `past_key_values` to `cache` (the old name is still
accepted, with a deprecation, until 5.40), while peft 0.21 decides whether a model can take a
prefix by looking for `past_key_values` in the forward signature, and refuses it when the name is
absent: "Model does not support past key values which are required for prefix tuning." The model
does support it, under its new name. `accept_past_key_values` gives the instance's forward (and its
backbone's, which peft checks for classifiers) a signature with the old name that hands the value on
as `cache`, so peft's own prefix path runs unchanged. Nothing is wrapped on versions that still
have `past_key_values`, or on architectures that take neither name (those peft refuses as before).
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

from torch import nn

OLD, NEW = "past_key_values", "cache"


def accept_past_key_values(model: nn.Module) -> int:
    """Wrap the forward of `model` and of its direct children that take `cache` only; returns how many."""
    wrapped = 0
    for module in (model, *model.children()):
        if _rename(module):
            wrapped += 1
    return wrapped


def _rename(module: nn.Module) -> bool:
    forward = module.forward
    signature = inspect.signature(forward)
    if OLD in signature.parameters or NEW not in signature.parameters:
        return False

    @functools.wraps(forward)
    def renamed(*args: Any, past_key_values: Any = None, **kwargs: Any) -> Any:
        if past_key_values is not None:
            kwargs[NEW] = past_key_values
        return forward(*args, **kwargs)

    parameters = list(signature.parameters.values())
    position = next(
        (i for i, p in enumerate(parameters) if p.kind is inspect.Parameter.VAR_KEYWORD),
        len(parameters),
    )
    parameters.insert(
        position, inspect.Parameter(OLD, inspect.Parameter.KEYWORD_ONLY, default=None)
    )
    renamed.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    module.forward = renamed
    return True
