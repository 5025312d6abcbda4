"""Adaptation methods: each is `apply(model, cfg) -> model`, registered by name in METHODS."""

from __future__ import annotations

from collections.abc import Callable

from transformers import PreTrainedModel

from tunelab.config import RunConfig
from tunelab.registry import Registry

Method = Callable[[PreTrainedModel, RunConfig], PreTrainedModel]
METHODS: Registry[Method] = Registry("method", "method.name")

from tunelab.methods import freeze, full, gradual, peft  # noqa: E402, F401  (each registers itself)

PEFT_METHODS = frozenset(
    {"lora", "qlora", "ia3", "prefix", "prompt"}
)  # save adapters, not whole models


def count_parameters(model: PreTrainedModel) -> dict[str, int | float]:
    """Trainable vs total parameters, printed and recorded by every run."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {
        "trainable": trainable,
        "total": total,
        "trainable_share": trainable / total if total else 0.0,
    }


__all__ = ["METHODS", "PEFT_METHODS", "Method", "count_parameters"]
