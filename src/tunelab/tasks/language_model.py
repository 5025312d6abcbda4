"""Continued pre-training on unlabelled domain text: masked LM (encoders) and causal LM (decoders).

Texts are tokenized, concatenated and cut into blocks of `data.max_length` tokens, the usual
recipe for language-model training. Perplexity is measured on validation and test before and
after training; MLM evaluation masks each block once with a fixed seed, so the two numbers are
comparable. The saved model can be the `model.name` of a later classification run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from datasets import Dataset
from transformers import (
    AutoModelForCausalLM,
    AutoModelForMaskedLM,
    DataCollatorForLanguageModeling,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from tunelab.config import DataConfig, RunConfig
from tunelab.data import SPLITS, PreparedData, complete_splits
from tunelab.data.blocks import group_into_blocks
from tunelab.data.clean import clean_frame
from tunelab.data.dataset_source import split_files
from tunelab.data.labels import LabelMap
from tunelab.data.leakage import check_leakage
from tunelab.data.load import TEXT_COLUMN_NAMES, file_sha256, pick_column, read_table
from tunelab.errors import DataError
from tunelab.methods import method_for
from tunelab.models import load_pretrained
from tunelab.tasks.base import TASKS, TaskSpec
from tunelab.tasks.generative import perplexities

PLACEHOLDER_LABEL = (
    "text"  # unlabelled rows share one label so cleaning and splitting code stays one path
)


def read_corpus(path: str, cfg: DataConfig) -> tuple[pd.DataFrame, str]:
    """A .txt file (one passage per non-empty line) or any table with a text column."""
    file = Path(path)
    if file.suffix.lower() == ".txt" and cfg.format == "auto":
        if not file.is_file():
            raise DataError(
                f"data file not found: {file}. Check the path (paths in a YAML config are relative to that file)."
            )
        numbered = [
            (n, line.strip())
            for n, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1)
        ]
        kept = [(n, line) for n, line in numbered if line]
        if not kept:
            raise DataError(f"{file}: no non-empty lines. Point the config at a file with text.")
        rows, passages = zip(*kept, strict=True)
        return pd.DataFrame(
            {"text": list(passages), "label": PLACEHOLDER_LABEL, "row": list(rows)}
        ), "text"
    frame = read_table(file, cfg.format, cfg.header, cfg.quoting, (cfg.text_column,))
    column = pick_column(frame, cfg.text_column, TEXT_COLUMN_NAMES, "text", file)
    series = frame[column].fillna("").astype(str)
    keep = series.str.strip() != ""
    return pd.DataFrame(
        {
            "text": series[keep],
            "label": PLACEHOLDER_LABEL,
            "row": np.flatnonzero(keep.to_numpy()) + 1,
        }
    ), column


def prepare_corpus(cfg: DataConfig, seed: int) -> PreparedData:
    paths = split_files(cfg)
    if paths["train"] is None:
        raise DataError(
            "data.train_file is not set. Set it to a .txt file or a table with a text column."
        )
    splits: dict[str, pd.DataFrame] = {}
    report: dict[str, Any] = {"files": {}}
    files: dict[str, str] = {}
    column = "text"
    for split, path in paths.items():
        if path is None:
            continue
        frame, column = read_corpus(path, cfg)
        clean = cfg.clean.model_copy(update={"conflicts": "keep"})
        splits[split], report["files"][str(path)] = clean_frame(frame, clean)
        files[str(path)] = file_sha256(path)
    for frame in splits.values():
        frame["label"] = 0
    splits, origin = complete_splits(splits, cfg, seed)
    splits, report["leakage"] = check_leakage(splits, cfg.leakage)
    if cfg.max_train_rows is not None:
        splits["train"] = splits["train"].head(cfg.max_train_rows)
    return PreparedData(
        {n: splits[n] for n in SPLITS},
        LabelMap((PLACEHOLDER_LABEL,)),
        column,
        "",
        files,
        origin,
        report,
    )


class PremaskedOrDynamic:
    """Training batches are masked afresh each time; evaluation blocks carry fixed labels already."""

    def __init__(self, collator: DataCollatorForLanguageModeling) -> None:
        self.collator = collator

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        if "labels" in features[0]:
            return {key: torch.tensor([f[key] for f in features]) for key in features[0]}
        if not self.collator.mlm:
            # Blocks are full length, never padded: every token is a target, EOS included (the stock
            # collator would mask EOS wherever it doubles as the pad token, as in SmolLM2).
            batch = {key: torch.tensor([f[key] for f in features]) for key in features[0]}
            batch["labels"] = batch["input_ids"].clone()
            return batch
        return self.collator(features)


class LanguageModelTask:
    """Shared by masked_lm and causal_lm; only the model class and the masking differ."""

    groups_by_length = False  # blocks all have the same length
    metric_names: tuple[str, ...] = ("loss",)  # perplexity = exp(loss) picks the same checkpoint

    def __init__(self, name: str, masked: bool) -> None:
        self.name = name
        self.masked = masked
        self.mlm_probability = 0.15  # BERT's rate

    def for_run(self, cfg: RunConfig) -> LanguageModelTask:
        return self  # needs no per-run state

    def prepare_data(self, cfg: RunConfig) -> PreparedData:
        return prepare_corpus(cfg.data, cfg.train.seed)

    def load_model(self, model_dir: Path, data: PreparedData, cfg: RunConfig) -> PreTrainedModel:
        auto = AutoModelForMaskedLM if self.masked else AutoModelForCausalLM
        return load_pretrained(auto, model_dir, cfg.model, **method_for(cfg).load_kwargs(cfg))

    def _collator(
        self, tokenizer: PreTrainedTokenizerBase, seed: int | None = None
    ) -> DataCollatorForLanguageModeling:
        return DataCollatorForLanguageModeling(
            tokenizer, mlm=self.masked, mlm_probability=self.mlm_probability, seed=seed
        )

    def tokenize(
        self, tokenizer: PreTrainedTokenizerBase, data: PreparedData, cfg: RunConfig
    ) -> dict[str, Dataset]:
        out = {
            split: group_into_blocks(
                tokenizer, data.splits[split]["text"].tolist(), cfg.data.max_length
            )
            for split in SPLITS
        }
        if self.masked:  # fixed masks for evaluation: before/after perplexities see the same masks
            collator = self._collator(tokenizer, seed=0)
            for split in ("validation", "test"):
                batch = collator([dict(row) for row in out[split]])
                out[split] = Dataset.from_dict(
                    {key: value.tolist() for key, value in batch.items()}
                )
        return out

    def collator(self, tokenizer: PreTrainedTokenizerBase) -> PremaskedOrDynamic:
        return PremaskedOrDynamic(self._collator(tokenizer))

    def compute_metrics(self, eval_pred: Any) -> dict[str, float]:
        return {}  # the Trainer's eval_loss is the metric; perplexity = exp(loss) is added in final_metrics

    def best_metric(self, cfg: RunConfig) -> str:
        return cfg.train.best_metric or "loss"

    def greater_is_better(self, metric: str) -> bool:
        return metric not in ("loss", "perplexity")

    def loss_function(self, data: PreparedData, cfg: RunConfig) -> Any:
        return None

    def before_training(self, session: Any) -> dict[str, Any]:
        return self._perplexities(session)

    def save_extras(self, model_dir: Path, data: PreparedData) -> None:
        return None

    def final_metrics(
        self, session: Any, trained: PreTrainedModel, before: dict[str, Any]
    ) -> dict[str, Any]:
        after = self._perplexities(session)
        return {
            split: {
                "blocks": len(session.encoded[split]),
                "perplexity_before": before[split],
                "perplexity_after": after[split],
                "relative_change": after[split] / before[split] - 1,
            }
            for split in ("validation", "test")
        }

    def _perplexities(self, session: Any) -> dict[str, float]:
        return perplexities(session, self.collator(session.tokenizer), shifted=not self.masked)


TASKS.add(
    "masked_lm",
    TaskSpec(
        "masked_lm",
        lambda cfg: LanguageModelTask("masked_lm", masked=True),
        "AutoModelForMaskedLM",
        refused_methods={
            method: "PEFT leaves the labels unpadded. Use lora or ia3"
            for method in ("prefix", "prompt")
        },
    ),
)
