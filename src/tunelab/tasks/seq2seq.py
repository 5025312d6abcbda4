"""Sequence-to-sequence: summarization and text2text with T5, BART, or an encoder pair.

Any AutoModelForSeq2SeqLM directory trains as it is. An encoder-only checkpoint (BERT, MiniLM,
RoBERTa) becomes an EncoderDecoderModel (bert2bert: the encoder twice, the copy used as the
decoder gets cross-attention), the way to a seq2seq model when no T5 is at hand. Labels are the
target ids padded with -100; validation scores loss, or generates when the best metric is a
generation metric (Seq2SeqTrainer's predict_with_generate).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
from datasets import Dataset
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForSeq2SeqLM,
    DataCollatorForSeq2Seq,
    EncoderDecoderModel,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from tunelab.config import RunConfig
from tunelab.data import SPLITS, PreparedData
from tunelab.data.pairs import prepare_pairs
from tunelab.errors import ModelError
from tunelab.evaluation.text_metrics import GENERATION_METRICS, text_metrics
from tunelab.methods import method_for
from tunelab.models import load_pretrained, load_tokenizer
from tunelab.tasks.base import TASKS, TaskSpec
from tunelab.tasks.generative import GenerativeTask

# EncoderDecoderModel warns on every forward with labels about a v4.12 change that does not
# concern models built here (their loss has always been computed by the wrapper).
warnings.filterwarnings("ignore", message="Version v4.12.0 introduces", category=FutureWarning)


class Seq2SeqTask(GenerativeTask):
    name = "seq2seq"
    metric_names: tuple[str, ...] = ("loss", *GENERATION_METRICS)
    shifted = False

    def prepare_data(self, cfg: RunConfig) -> PreparedData:
        return prepare_pairs(cfg, "seq2seq")

    @property
    def default_max_new_tokens(self) -> int:  # type: ignore[override]
        return self.run_cfg.task.max_target_length

    def load_model(self, model_dir: Path, data: PreparedData, cfg: RunConfig) -> PreTrainedModel:
        config = AutoConfig.from_pretrained(
            model_dir, trust_remote_code=cfg.model.trust_remote_code
        )
        if getattr(config, "is_encoder_decoder", False):
            return load_pretrained(
                AutoModelForSeq2SeqLM, model_dir, cfg.model, **method_for(cfg).load_kwargs(cfg)
            )
        return encoder_pair(model_dir, cfg)

    def tokenize(
        self, tokenizer: PreTrainedTokenizerBase, data: PreparedData, cfg: RunConfig
    ) -> dict[str, Dataset]:
        self.tokenizer = tokenizer
        prefix = cfg.task.source_prefix
        start = _decoder_start(tokenizer)
        out = {}
        for split in SPLITS:
            frame = data.splits[split]
            sources = tokenizer(
                [prefix + t for t in frame["text"]], truncation=True, max_length=cfg.data.max_length
            )["input_ids"]
            targets = tokenizer(
                text_target=frame["target"].tolist(),
                truncation=True,
                max_length=cfg.task.max_target_length,
            )["input_ids"]
            # bert2bert: the decoder starts from [CLS]; it is fed, never predicted.
            labels = [t[1:] if start is not None and t[:1] == [start] else t for t in targets]
            out[split] = Dataset.from_dict(
                {
                    "input_ids": sources,
                    "attention_mask": [[1] * len(s) for s in sources],
                    "labels": labels,
                    "length": [len(s) + len(t) for s, t in zip(sources, labels, strict=True)],
                }
            )
        return out

    def collator(self, tokenizer: PreTrainedTokenizerBase) -> DataCollatorForSeq2Seq:
        return DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=-100)

    eval_collator = collator

    def generates_during_validation(self) -> bool:
        return self.best_metric(self.run_cfg) != "loss"

    def compute_metrics(self, eval_pred: Any) -> dict[str, float]:
        """With predict_with_generate: decode and score; with loss only: nothing to add."""
        if not self.generates_during_validation():
            return {}
        predictions, labels = eval_pred.predictions, eval_pred.label_ids
        pad = self.tokenizer.pad_token_id
        predictions = np.where(predictions < 0, pad, predictions)
        labels = np.where(labels < 0, pad, labels)
        decoded = self.tokenizer.batch_decode(predictions, skip_special_tokens=True)
        references = self.tokenizer.batch_decode(labels, skip_special_tokens=True)
        task = self.run_cfg.task
        scores = text_metrics(
            [d.strip() for d in decoded],
            [[r.strip()] for r in references],
            task.answer_pattern,
            task.exact_match_ignores_space,
        )
        return {k: v for k, v in scores.items() if k in GENERATION_METRICS}

    def prompts_and_references(self, session: Any, rows: Any) -> tuple[list[str], list[list[str]]]:
        prefix = self.run_cfg.task.source_prefix
        return [prefix + t for t in rows["text"]], [list(r) for r in rows["references"]]

    def generation_inputs(self) -> dict[str, Any]:
        return {"max_input_length": self.run_cfg.data.max_length, "add_special_tokens": True}

    def save_extras(self, model_dir: Path, data: PreparedData) -> None:
        return None


def _decoder_start(tokenizer: PreTrainedTokenizerBase) -> int | None:
    """[CLS] for BERT-style tokenizers (bert2bert), None for T5/BART (they start from pad/EOS)."""
    return tokenizer.cls_token_id if getattr(tokenizer, "cls_token_id", None) is not None else None


def encoder_pair(model_dir: Path, cfg: RunConfig) -> PreTrainedModel:
    """bert2bert: the checkpoint as encoder, and again as a decoder with new cross-attention."""
    tokenizer = load_tokenizer(model_dir, cfg.model)
    start, end = tokenizer.cls_token_id, tokenizer.sep_token_id
    if start is None or end is None:
        raise ModelError(
            f"model '{cfg.model.name}' is neither a seq2seq model nor a BERT-style encoder with [CLS]/[SEP] "
            "tokens to start and end a decoder. Point model.name at a T5/BART directory."
        )
    encoder = load_pretrained(AutoModel, model_dir, cfg.model)
    decoder = load_pretrained(
        AutoModelForCausalLM,
        model_dir,
        cfg.model,
        {"is_decoder": True, "add_cross_attention": True},
    )
    model = EncoderDecoderModel(encoder=encoder, decoder=decoder)
    model.config.decoder_start_token_id = start
    model.config.eos_token_id = end
    model.config.pad_token_id = tokenizer.pad_token_id
    model.config.vocab_size = decoder.config.vocab_size
    model.generation_config.decoder_start_token_id = start
    model.generation_config.eos_token_id = end
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    # Cross-attention and any missing LM-head parts start untrained: adapters must train them too.
    model.tunelab_new_modules = [  # type: ignore[assignment]
        f"decoder.{m}" for m in getattr(decoder, "tunelab_new_modules", [])
    ]
    return model


TASKS.add(
    "seq2seq",
    TaskSpec(
        "seq2seq", lambda cfg: Seq2SeqTask().for_run(cfg), "AutoModelForSeq2SeqLM", output="text"
    ),
)
