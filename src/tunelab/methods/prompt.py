"""Prompt tuning (peft): trained virtual tokens in front of the input, optionally from a text."""

from __future__ import annotations

from peft import PromptTuningConfig
from transformers import PreTrainedModel

from tunelab.config import RunConfig
from tunelab.methods.base import METHODS, MethodSpec
from tunelab.methods.peft import new_modules, task_type, wrap


def apply(model: PreTrainedModel, cfg: RunConfig) -> PreTrainedModel:
    s = cfg.method.virtual_tokens
    config = PromptTuningConfig(
        modules_to_save=new_modules(model),
        task_type=task_type(model),
        num_virtual_tokens=s.num_virtual_tokens,
        prompt_tuning_init="TEXT" if s.init_text else "RANDOM",
        prompt_tuning_init_text=s.init_text,
        tokenizer_name_or_path=model.name_or_path if s.init_text else None,
    )
    return wrap(model, config)


METHODS.add(
    "prompt",
    MethodSpec("prompt", apply, default_lr=1e-2, adapter_only=True, settings="virtual_tokens"),
)
