"""IA3 (peft): learned rescaling of keys, values and feed-forward activations; tiny adapters."""

from __future__ import annotations

from peft import IA3Config
from transformers import PreTrainedModel

from tunelab.config import RunConfig
from tunelab.methods.base import METHODS, MethodSpec
from tunelab.methods.peft import IA3_TARGETS, new_modules, task_type, wrap


def apply(model: PreTrainedModel, cfg: RunConfig) -> PreTrainedModel:
    targets, feedforward = IA3_TARGETS.get(model.config.model_type, (None, None))
    config = IA3Config(
        modules_to_save=new_modules(model),
        task_type=task_type(model),
        target_modules=targets,
        feedforward_modules=feedforward,
    )
    return wrap(model, config)


METHODS.add("ia3", MethodSpec("ia3", apply, default_lr=3e-3, adapter_only=True))
