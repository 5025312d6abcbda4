"""What the PEFT methods share (lora, qlora, ia3, prefix, prompt; one file each): the `peft`
library does the work (never re-implemented here).

Each wraps the model in a PeftModel: only the adapter (and the task head, via PEFT's
modules_to_save) trains, and `save_pretrained` writes the adapter alone.
"""

from __future__ import annotations

import warnings
from typing import Any

from peft import TaskType, get_peft_model
from transformers import PreTrainedModel

from tunelab.errors import ConfigError

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


def task_type(model: PreTrainedModel) -> TaskType:
    name = type(model).__name__
    if name.endswith("ForSequenceClassification"):
        return TaskType.SEQ_CLS
    if name.endswith("ForCausalLM"):
        return TaskType.CAUSAL_LM
    if name.endswith("ForConditionalGeneration") or name.endswith("ForSeq2SeqLM"):
        return TaskType.SEQ_2_SEQ_LM
    return TaskType.FEATURE_EXTRACTION


def new_modules(model: PreTrainedModel) -> list[str] | None:
    """Modules the checkpoint did not have (a fresh head): they must train and be saved with the adapter."""
    return list(getattr(model, "tunelab_new_modules", [])) or None


def wrap(model: PreTrainedModel, config: Any) -> PreTrainedModel:
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
