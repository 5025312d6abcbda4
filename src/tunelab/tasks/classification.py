"""Sequence classification for any AutoModelForSequenceClassification architecture."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from datasets import Dataset
from transformers import (
    AutoModelForSequenceClassification,
    DataCollatorWithPadding,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from tunelab.config import RunConfig
from tunelab.console import say
from tunelab.data import SPLITS, PreparedData, prepare_classification
from tunelab.data.dataset_source import split_files
from tunelab.data.imbalance import class_weights
from tunelab.data.load import read_table
from tunelab.data.split import stratified_sample
from tunelab.errors import DataError
from tunelab.evaluation.baselines import (
    linear_probe_baseline,
    majority_baseline,
    paired_bootstrap,
    tfidf_baseline,
)
from tunelab.evaluation.error_analysis import classification_errors
from tunelab.evaluation.metrics import SCALAR_METRICS, full_report, scalar_metrics
from tunelab.inference.predictor import Predictor
from tunelab.io import write_table
from tunelab.methods import method_for
from tunelab.models import load_pretrained, model_dir_for
from tunelab.tasks.base import TASKS, TaskSpec


class ClassificationTask:
    name = "classification"
    metric_names: tuple[str, ...] = SCALAR_METRICS
    groups_by_length = True

    def for_run(self, cfg: RunConfig) -> ClassificationTask:
        return self  # needs no per-run state

    def prepare_data(self, cfg: RunConfig) -> PreparedData:
        return prepare_classification(cfg.data, cfg.train.seed)

    def load_model(self, model_dir: Path, data: PreparedData, cfg: RunConfig) -> PreTrainedModel:
        from tunelab.models import load_tokenizer

        pad = load_tokenizer(
            model_dir, cfg.model
        ).pad_token_id  # decoders need it in the config to pool
        labels = {
            "num_labels": len(data.labels.names),
            "id2label": data.labels.id2label,
            "label2id": data.labels.label2id,
            **({"pad_token_id": pad} if pad is not None else {}),
        }
        # A checkpoint that already has a head for other labels gets a fresh head of the right size.
        return load_pretrained(
            AutoModelForSequenceClassification,
            model_dir,
            cfg.model,
            labels,
            ignore_mismatched_sizes=True,
            **method_for(cfg).load_kwargs(cfg),
        )

    def tokenize(
        self, tokenizer: PreTrainedTokenizerBase, data: PreparedData, cfg: RunConfig
    ) -> dict[str, Dataset]:
        """Token ids without padding (the collator pads per batch) and a length column for grouping."""

        def encode(batch: dict[str, list[Any]]) -> dict[str, Any]:
            encoded = tokenizer(batch["text"], truncation=True, max_length=cfg.data.max_length)
            encoded["length"] = [len(ids) for ids in encoded["input_ids"]]
            return encoded

        out = {}
        for split in SPLITS:
            if split == "train" and data.train_table is not None:
                out[split] = _tokenize_table(data.train_table, encode, tokenizer, cfg)
                continue
            frame = (
                data.splits[split][["text", "label"]]
                .rename(columns={"label": "labels"})
                .reset_index(drop=True)
            )
            dataset = Dataset.from_pandas(frame, preserve_index=False)
            out[split] = dataset.map(
                encode, batched=True, remove_columns=["text"], desc=f"tokenize {split}"
            )
        return out

    def best_metric(self, cfg: RunConfig) -> str:
        return cfg.train.best_metric or "macro_f1"

    def greater_is_better(self, metric: str) -> bool:
        return True

    def before_training(self, session: Any) -> dict[str, Any]:
        return {}  # the validation curve starts at step 0 (train.eval_on_start)

    def save_extras(self, model_dir: Path, data: PreparedData) -> None:
        data.labels.save(model_dir / "labels.json")

    def final_metrics(
        self, session: Any, trained: PreTrainedModel, before: dict[str, Any]
    ) -> dict[str, Any]:
        """Validation and test reports from the saved weights' predictor, the baselines, test predictions."""
        cfg, data = session.cfg, session.data
        predictor = Predictor(
            trained,
            session.tokenizer,
            data.labels,
            cfg.data.max_length,
            session.precision,
            cfg.train.eval_batch_size,
        )
        metrics: dict[str, Any] = {"validation": score_split(predictor, data.splits["validation"])}
        test = data.splits["test"]
        ids, probabilities = predictor.predict(
            test["text"].tolist()
        )  # once: for the report and the file
        metrics["test"] = full_report(test["label"].to_numpy(), ids, data.labels.names)
        metrics["test"]["error_analysis"] = classification_errors(
            test["text"].tolist(),
            test["label"].to_numpy(),
            probabilities,
            data.labels.names,
            metadata=test_metadata(cfg, data),
        )
        _write_predictions(
            session.run_dir / "test_predictions.csv", data.labels.names, test, ids, probabilities
        )
        if cfg.eval.baselines:
            metrics["baselines"], metrics["comparison"] = run_baselines(session, ids)
        return metrics

    def loss_function(self, data: PreparedData, cfg: RunConfig) -> Any:
        """Class-weighted cross-entropy when data.imbalance.class_weights=auto; else the model's own loss."""
        if cfg.data.imbalance.class_weights != "auto":
            return None
        weights = torch.tensor(class_weights(data.split_labels("train"), len(data.labels.names)))

        def weighted_cross_entropy(
            outputs: Any, labels: torch.Tensor, num_items_in_batch: Any = None
        ) -> torch.Tensor:
            logits = outputs["logits"].float()
            summed = torch.nn.functional.cross_entropy(
                logits, labels, weight=weights.to(logits.device), reduction="sum"
            )
            # Normalized over the whole accumulated batch, so gradient accumulation matches a big batch.
            count = num_items_in_batch if num_items_in_batch is not None else labels.numel()
            return summed / count

        return weighted_cross_entropy

    def collator(self, tokenizer: PreTrainedTokenizerBase) -> DataCollatorWithPadding:
        return DataCollatorWithPadding(tokenizer, pad_to_multiple_of=None)

    def compute_metrics(self, eval_pred: Any) -> dict[str, float]:
        logits, labels = eval_pred.predictions, eval_pred.label_ids
        if isinstance(logits, tuple):
            logits = logits[0]
        return scalar_metrics(labels, np.asarray(logits).argmax(-1), np.asarray(logits).shape[-1])


def _tokenize_table(
    table: Dataset, encode: Any, tokenizer: PreTrainedTokenizerBase, cfg: RunConfig
) -> Dataset:
    """The memory-mapped train split tokenized in several processes into datasets' cache, named
    by content (the table's fingerprint, the tokenizer, max_length): a second run reuses it."""
    from datasets.fingerprint import Hasher

    from tunelab.data.mapped import processes, tokenized_fingerprint

    fingerprint = tokenized_fingerprint(table, Hasher.hash(tokenizer), cfg.data.max_length)
    columns = [c for c in table.column_names if c != "label"]
    return table.rename_column("label", "labels").map(
        encode,
        batched=True,
        remove_columns=columns,
        num_proc=processes(len(table)),
        new_fingerprint=fingerprint,
        features=_compact_features(encode({"text": ["a"]}), len(tokenizer)),
        desc="tokenize train",
    )


def _compact_features(sample: dict[str, Any], vocabulary: int) -> Any:
    """Narrow integers on disk (ids in int32, masks in int8): a quarter of the int64 default,
    which for millions of rows is gigabytes; the collator pads them into int64 tensors."""
    from datasets import Features, Sequence, Value

    ids = Value("int32") if vocabulary < 2**31 else Value("int64")
    narrow = {"input_ids": Sequence(ids), "length": Value("int32"), "labels": Value("int64")}
    return Features(
        {name: narrow.get(name, Sequence(Value("int8"))) for name in [*sample, "labels"]}
    )


def test_metadata(cfg: RunConfig, data: PreparedData) -> pd.DataFrame | None:
    """The configured slice columns for each test row, read back from the row's source file."""
    columns = cfg.eval.slice_columns
    if not columns:
        return None
    files = split_files(cfg.data)
    source = files["test"] or files["train"]
    assert source is not None
    frame = read_table(source, cfg.data.format, cfg.data.header, cfg.data.quoting, tuple(columns))
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(
            f"{source}: eval.slice_columns {missing} not found; columns are {list(frame.columns)}. Fix eval.slice_columns."
        )
    rows = data.splits["test"]["row"].to_numpy() - 1
    return frame.iloc[rows][columns].reset_index(drop=True)


def run_baselines(session: Any, finetuned: np.ndarray) -> tuple[dict[str, Any], dict[str, Any]]:
    """Majority, TF-IDF + LR and a frozen-encoder linear probe on the test split, each compared with
    the fine-tuned predictions by a paired bootstrap (difference = fine-tuned minus baseline)."""
    cfg, data = session.cfg, session.data
    train, test = data.splits["train"], data.splits["test"]
    names = data.labels.names
    y_test = test["label"].to_numpy()
    reports: dict[str, Any] = {}
    predictions: dict[str, np.ndarray] = {}
    majority = majority_baseline(train["label"].to_numpy(), y_test, names)
    reports["majority"] = majority
    predictions["majority"] = np.full_like(y_test, names.index(majority["predicts"]))
    reports["tfidf_logreg"], predictions["tfidf_logreg"] = tfidf_baseline(
        train["text"].tolist(),
        train["label"].to_numpy(),
        test["text"].tolist(),
        y_test,
        names,
        cfg.train.seed,
    )
    probe_rows = stratified_sample(train, cfg.eval.probe_train_rows, cfg.train.seed)
    say(f"baselines: linear probe on the frozen {cfg.model.name} ({len(probe_rows)} train rows)")
    reports["linear_probe"], predictions["linear_probe"] = linear_probe_baseline(
        model_dir_for(cfg.model),
        cfg.model,
        probe_rows["text"].tolist(),
        probe_rows["label"].to_numpy(),
        test["text"].tolist(),
        y_test,
        names,
        cfg.data.max_length,
        cfg.train.eval_batch_size,
        session.precision,
        cfg.train.seed,
    )
    reports["linear_probe"]["train_rows"] = len(probe_rows)
    comparison = {
        name: {
            metric: paired_bootstrap(
                y_test,
                finetuned,
                predicted,
                metric,
                cfg.eval.bootstrap_resamples,
                cfg.train.seed,
                len(names),
            )
            for metric in ("accuracy", "macro_f1")
        }
        for name, predicted in predictions.items()
    }
    return reports, comparison


def score_split(predictor: Predictor, frame: pd.DataFrame) -> dict[str, Any]:
    predicted, _ = predictor.predict(frame["text"].tolist())
    return full_report(frame["label"].to_numpy(), predicted, predictor.labels.names)


def _write_predictions(
    path: Path,
    names: tuple[str, ...],
    frame: pd.DataFrame,
    ids: np.ndarray,
    probabilities: np.ndarray,
) -> None:
    out = pd.DataFrame(
        {
            "row": frame["row"].to_numpy(),
            "text": frame["text"].to_numpy(),
            "label": [names[i] for i in frame["label"]],
            "predicted": [names[i] for i in ids],
            "probability": probabilities.max(-1),
        }
    )
    write_table(out, path)


TASKS.add(
    "classification",
    TaskSpec(
        "classification",
        lambda cfg: ClassificationTask().for_run(cfg),
        "AutoModelForSequenceClassification",
        output="labels",
        lm_head=False,
    ),
)
