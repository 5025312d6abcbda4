"""Batched text generation, shared by evaluation, `tunelab generate` and the server.

Inputs are sorted by length so each batch pads little; decoder-only models pad on the left
(the answer must follow the prompt directly) and return only the new tokens.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from transformers import GenerationConfig as HFGenerationConfig
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from tunelab.config import GenerationConfig
from tunelab.models.precision import autocast


def hf_generation_config(
    settings: GenerationConfig, tokenizer: PreTrainedTokenizerBase, default_max_new_tokens: int
) -> HFGenerationConfig:
    """The config's generation settings as transformers' GenerationConfig (stops at EOS)."""
    sampling = (
        {"do_sample": True, "temperature": settings.temperature, "top_p": settings.top_p}
        if settings.do_sample
        else {"do_sample": False}
    )
    return HFGenerationConfig(
        max_new_tokens=settings.max_new_tokens or default_max_new_tokens,
        num_beams=settings.num_beams,
        length_penalty=settings.length_penalty,
        no_repeat_ngram_size=settings.no_repeat_ngram_size,
        repetition_penalty=settings.repetition_penalty,
        eos_token_id=tokenizer.eos_token_id
        if tokenizer.eos_token_id is not None
        else tokenizer.sep_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **sampling,
    )


@torch.inference_mode()
def generate(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: list[str],
    config: HFGenerationConfig,
    max_input_length: int,
    batch_size: int = 16,
    precision: str = "fp32",
    add_special_tokens: bool = True,
) -> list[str]:
    """One generated text per prompt, in input order."""
    decoder_only = not getattr(model.config, "is_encoder_decoder", False)
    if not decoder_only and config.decoder_start_token_id is None:
        config.decoder_start_token_id = model.config.decoder_start_token_id
    encoded = tokenizer(
        prompts, truncation=True, max_length=max_input_length, add_special_tokens=add_special_tokens
    )["input_ids"]
    order = np.argsort([-len(ids) for ids in encoded], kind="stable")
    out: list[str] = [""] * len(prompts)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    side = tokenizer.padding_side
    tokenizer.padding_side = "left" if decoder_only else "right"
    try:
        for start in range(0, len(prompts), batch_size):
            index = order[start : start + batch_size]
            batch: Any = tokenizer.pad(
                {"input_ids": [encoded[i] for i in index]}, return_tensors="pt"
            )
            batch = {k: v.to(device) for k, v in batch.items()}
            with autocast(precision, device.type):
                generated = model.generate(**batch, generation_config=config)  # type: ignore[operator]
            if decoder_only:
                generated = generated[:, batch["input_ids"].shape[1] :]
            texts = tokenizer.batch_decode(generated, skip_special_tokens=True)
            for i, text in zip(index, texts, strict=True):
                out[int(i)] = text.strip()
    finally:
        tokenizer.padding_side = side
        model.train(was_training)
    return out
