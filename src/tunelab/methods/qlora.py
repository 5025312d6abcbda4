"""QLoRA: LoRA on a model loaded in 4-bit NF4 (bitsandbytes, a CUDA GPU; see quantized.py)."""

from __future__ import annotations

from typing import Any

from peft import prepare_model_for_kbit_training
from transformers import PreTrainedModel

from tunelab.config import RunConfig
from tunelab.errors import ConfigError
from tunelab.methods.base import METHODS, MethodSpec
from tunelab.methods.lora import REWRITES_BASE, settings_problems
from tunelab.methods.lora import apply as lora_apply
from tunelab.methods.quantized import compute_dtype, cuda_problem, quantization_config


def apply(model: PreTrainedModel, cfg: RunConfig) -> PreTrainedModel:
    """Norms in fp32, inputs require grad (peft's k-bit preparation), then LoRA."""
    problem = cuda_problem()
    if problem:
        raise ConfigError(problem)
    if getattr(model, "quantization_method", None) is None:
        raise ConfigError(
            "method qlora got a model that was not loaded in 4-bit; the task must pass the method's "
            "load_kwargs(cfg) to from_pretrained. This is a tunelab bug: please report it."
        )
    model = prepare_model_for_kbit_training(
        model, use_gradient_checkpointing=cfg.train.gradient_checkpointing
    )
    return lora_apply(model, cfg)


def load_kwargs(cfg: RunConfig) -> dict[str, Any]:
    """The `from_pretrained` arguments that load the base model in 4-bit NF4 on the GPU."""
    problem = cuda_problem()
    if problem:
        raise ConfigError(problem)
    dtype = compute_dtype()
    return {
        "quantization_config": quantization_config(dtype),
        "dtype": dtype,
        "device_map": {"": 0},
    }


def checks(cfg: RunConfig) -> list[str]:
    found = settings_problems(cfg)
    if cfg.method.lora.init in REWRITES_BASE:
        found.append(
            f"method.lora.init={cfg.method.lora.init} moves each weight's principal part into the adapter and "
            "leaves the residual in the base, which a 4-bit base cannot hold exactly. Use method lora, or init default."
        )
    problem = cuda_problem()
    return [*found, problem] if problem else found


METHODS.add(
    "qlora",
    MethodSpec(
        "qlora",
        apply,
        default_lr=2e-4,  # 4-bit LLM recipes (QLoRA paper)
        adapter_only=True,
        quantized_base=True,
        settings="lora",
        load_kwargs=load_kwargs,
        checks=checks,
    ),
)
