"""LoRA (peft): low-rank updates beside the attention projections; the adapter alone is saved."""

from __future__ import annotations

from peft import LoraConfig
from transformers import PreTrainedModel

from tunelab.config import RunConfig
from tunelab.methods.base import METHODS, MethodSpec
from tunelab.methods.peft import LORA_TARGETS, new_modules, task_type, wrap


def apply(model: PreTrainedModel, cfg: RunConfig) -> PreTrainedModel:
    s = cfg.method.lora
    targets = s.target_modules or LORA_TARGETS.get(model.config.model_type)
    config = LoraConfig(
        modules_to_save=new_modules(model),
        task_type=task_type(model),
        r=s.r,
        lora_alpha=s.alpha,
        lora_dropout=s.dropout,
        target_modules=targets,
        bias=s.bias,
    )
    return wrap(model, config)


# At 1e-3 LoRA needed ~4x more steps than at 3e-3 to leave the majority class (MiniLM/SST-2).
METHODS.add("lora", MethodSpec("lora", apply, default_lr=3e-3, adapter_only=True, settings="lora"))
