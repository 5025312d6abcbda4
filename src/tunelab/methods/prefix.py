"""Prefix tuning (peft): trained key/value prefixes in every attention layer."""

from __future__ import annotations

from peft import PrefixTuningConfig
from transformers import PreTrainedModel

from tunelab.config import RunConfig
from tunelab.methods.base import METHODS, MethodSpec
from tunelab.methods.cache_name import accept_past_key_values
from tunelab.methods.peft import new_modules, task_type, wrap


def apply(model: PreTrainedModel, cfg: RunConfig) -> PreTrainedModel:
    config = PrefixTuningConfig(
        modules_to_save=new_modules(model),
        task_type=task_type(model),
        num_virtual_tokens=cfg.method.virtual_tokens.num_virtual_tokens,
    )
    accept_past_key_values(
        model
    )  # transformers >= 5.24 names it `cache`; peft looks for the old name
    return wrap(model, config)


METHODS.add(
    "prefix",
    MethodSpec("prefix", apply, default_lr=1e-2, adapter_only=True, settings="virtual_tokens"),
)
