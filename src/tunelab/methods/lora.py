"""LoRA (peft): low-rank updates beside the attention projections; the adapter alone is saved.

Variants are peft's own, as `method.lora.*`: DoRA (`use_dora`), rsLoRA (`use_rslora`), gaussian
initialisation (`init`), extra fully trained modules (`modules_to_save`) and
`target_modules: all-linear`. PiSSA / OLoRA / LoftQ are not offered yet: they rewrite the base
weights, so the saved adapter needs peft's conversion against the initial adapter to reload.
"""

from __future__ import annotations

from typing import Any

from peft import LoraConfig
from transformers import PreTrainedModel

from tunelab.config import RunConfig
from tunelab.errors import ConfigError
from tunelab.methods.base import METHODS, MethodSpec
from tunelab.methods.peft import LORA_TARGETS, new_modules, task_type, wrap


def apply(model: PreTrainedModel, cfg: RunConfig) -> PreTrainedModel:
    s = cfg.method.lora
    targets = s.target_modules or LORA_TARGETS.get(model.config.model_type)
    fresh = new_modules(model) or []  # a new head must train and be saved, whatever is asked
    _check_modules_exist(model, s.modules_to_save or [])
    saved = [*fresh, *(m for m in s.modules_to_save or () if m not in fresh)]
    config = LoraConfig(
        modules_to_save=saved or None,
        task_type=task_type(model),
        r=s.r,
        lora_alpha=s.alpha,
        lora_dropout=s.dropout,
        target_modules=targets,
        bias=s.bias,
        use_dora=s.use_dora,
        use_rslora=s.use_rslora,
        init_lora_weights=INIT[s.init],
    )
    return wrap(model, config)


def _check_modules_exist(model: PreTrainedModel, wanted: list[str]) -> None:
    """peft matches modules_to_save by name suffix and ignores a name that matches nothing."""
    names = [name for name, _ in model.named_modules() if name]
    for module in wanted:
        if not any(name == module or name.endswith("." + module) for name in names):
            top = ", ".join(name for name in names if "." not in name)
            raise ConfigError(
                f"method.lora.modules_to_save: {type(model).__name__} has no module named '{module}'. "
                f"Use a module name or suffix; its top-level modules are: {top}."
            )


INIT: dict[str, Any] = {"default": True, "gaussian": "gaussian"}  # -> peft init_lora_weights


# At 1e-3 LoRA needed ~4x more steps than at 3e-3 to leave the majority class (MiniLM/SST-2).
METHODS.add(
    "lora",
    MethodSpec("lora", apply, default_lr=3e-3, adapter_only=True, settings="lora"),
)
