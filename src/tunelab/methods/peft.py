"""Parameter-efficient methods from the `peft` library (never re-implemented here).

Each wraps the model in a PeftModel: only the adapter (and the task head, via PEFT's
modules_to_save) trains, and `save_pretrained` writes the adapter alone.
"""

from __future__ import annotations

import warnings
from typing import Any

from peft import (
    IA3Config,
    LoraConfig,
    PrefixTuningConfig,
    PromptTuningConfig,
    TaskType,
    get_peft_model,
    prepare_model_for_kbit_training,
)
from transformers import PreTrainedModel

from tunelab.config import RunConfig
from tunelab.errors import ConfigError
from tunelab.methods import METHODS
from tunelab.methods.cache_name import accept_past_key_values
from tunelab.methods.quantized import cuda_problem

# Attention projections per architecture where PEFT has no default of its own.
LORA_TARGETS = {
    "mpnet": ["q", "v"],
    "distilbert": ["q_lin", "v_lin"],
    "encoder-decoder": ["query", "value"],  # bert2bert built from a BERT-style encoder
}
IA3_TARGETS = {
    "mpnet": (["k", "v", "output.dense"], ["output.dense"]),
    "distilbert": (["k_lin", "v_lin", "lin2"], ["lin2"]),
    "encoder-decoder": (["key", "value", "output.dense"], ["output.dense"]),
}


def _task_type(model: PreTrainedModel) -> TaskType:
    name = type(model).__name__
    if name.endswith("ForSequenceClassification"):
        return TaskType.SEQ_CLS
    if name.endswith("ForCausalLM"):
        return TaskType.CAUSAL_LM
    if name.endswith("ForConditionalGeneration") or name.endswith("ForSeq2SeqLM"):
        return TaskType.SEQ_2_SEQ_LM
    return TaskType.FEATURE_EXTRACTION


def _new_modules(model: PreTrainedModel) -> list[str] | None:
    """Modules the checkpoint did not have (a fresh head): they must train and be saved with the adapter."""
    return list(getattr(model, "tunelab_new_modules", [])) or None


def _wrap(model: PreTrainedModel, config: Any) -> PreTrainedModel:
    try:
        with (
            warnings.catch_warnings()
        ):  # peft reads a property transformers 5 renamed; not ours to fix
            warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated")
            return get_peft_model(model, config)
    except (ValueError, TypeError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise ConfigError(
            f"method: peft cannot wrap {type(model).__name__}: {first}. Set method.lora.target_modules or choose another method."
        ) from None


@METHODS.register("lora")
def lora(model: PreTrainedModel, cfg: RunConfig) -> PreTrainedModel:
    s = cfg.method.lora
    targets = s.target_modules or LORA_TARGETS.get(model.config.model_type)
    config = LoraConfig(
        modules_to_save=_new_modules(model),
        task_type=_task_type(model),
        r=s.r,
        lora_alpha=s.alpha,
        lora_dropout=s.dropout,
        target_modules=targets,
        bias=s.bias,
    )
    return _wrap(model, config)


@METHODS.register("qlora")
def qlora(model: PreTrainedModel, cfg: RunConfig) -> PreTrainedModel:
    """LoRA on a model loaded in 4-bit (see methods/quantized.py): norms in fp32, inputs require grad."""
    problem = cuda_problem()
    if problem:
        raise ConfigError(problem)
    if getattr(model, "quantization_method", None) is None:
        raise ConfigError(
            "method qlora got a model that was not loaded in 4-bit; the task must pass quantized.load_kwargs(cfg) "
            "to from_pretrained. This is a tunelab bug: please report it."
        )
    model = prepare_model_for_kbit_training(
        model, use_gradient_checkpointing=cfg.train.gradient_checkpointing
    )
    return lora(model, cfg)


@METHODS.register("ia3")
def ia3(model: PreTrainedModel, cfg: RunConfig) -> PreTrainedModel:
    targets, feedforward = IA3_TARGETS.get(model.config.model_type, (None, None))
    config = IA3Config(
        modules_to_save=_new_modules(model),
        task_type=_task_type(model),
        target_modules=targets,
        feedforward_modules=feedforward,
    )
    return _wrap(model, config)


@METHODS.register("prefix")
def prefix(model: PreTrainedModel, cfg: RunConfig) -> PreTrainedModel:
    config = PrefixTuningConfig(
        modules_to_save=_new_modules(model),
        task_type=_task_type(model),
        num_virtual_tokens=cfg.method.virtual_tokens.num_virtual_tokens,
    )
    accept_past_key_values(
        model
    )  # transformers >= 5.24 names it `cache`; peft looks for the old name
    return _wrap(model, config)


@METHODS.register("prompt")
def prompt(model: PreTrainedModel, cfg: RunConfig) -> PreTrainedModel:
    s = cfg.method.virtual_tokens
    config = PromptTuningConfig(
        modules_to_save=_new_modules(model),
        task_type=_task_type(model),
        num_virtual_tokens=s.num_virtual_tokens,
        prompt_tuning_init="TEXT" if s.init_text else "RANDOM",
        prompt_tuning_init_text=s.init_text,
        tokenizer_name_or_path=model.name_or_path if s.init_text else None,
    )
    return _wrap(model, config)
