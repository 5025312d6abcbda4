"""Baselines scored on the same test split as the fine-tuned model; a paired bootstrap to compare two."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from tunelab.evaluation.metrics import full_report

if TYPE_CHECKING:
    from tunelab.config import ModelConfig

BootstrapMetric = Literal["accuracy", "macro_f1"]
# Rows of resampled indices held at once (resamples x rows): bounds the bootstrap's memory on big test sets.
_BOOTSTRAP_CHUNK_CELLS = 4_000_000


def majority_baseline(
    train_labels: np.ndarray, test_labels: np.ndarray, names: tuple[str, ...]
) -> dict[str, Any]:
    """Always predict the most frequent training label: the floor any model must clear."""
    majority = int(np.bincount(train_labels, minlength=len(names)).argmax())
    report = full_report(test_labels, np.full_like(test_labels, majority), names)
    report["predicts"] = names[majority]
    return report


def tfidf_baseline(
    train_texts: Sequence[str],
    train_labels: np.ndarray,
    test_texts: Sequence[str],
    test_labels: np.ndarray,
    names: tuple[str, ...],
    seed: int,
) -> tuple[dict[str, Any], np.ndarray]:
    """TF-IDF word uni+bigrams with logistic regression: the cheap model fine-tuning has to beat.

    Returns (report, predicted label ids for the test texts).
    """
    pipeline = Pipeline(
        [
            ("tfidf", TfidfVectorizer(ngram_range=(1, 2), min_df=1, sublinear_tf=True)),
            ("classifier", LogisticRegression(max_iter=1000, random_state=seed)),
        ]
    )
    pipeline.fit(list(train_texts), np.asarray(train_labels))
    predicted = np.asarray(pipeline.predict(list(test_texts)))
    return full_report(np.asarray(test_labels), predicted, names), predicted


def mean_pooled_embeddings(
    model: Any,
    tokenizer: Any,
    texts: Sequence[str],
    max_length: int,
    batch_size: int,
    precision: str = "fp32",
) -> np.ndarray:
    """Each text's last hidden states averaged over its real tokens (padding excluded), as float32.

    Texts run in length-sorted batches (little padding); rows come back in input order. Works for
    encoders and decoders alike; an encoder-decoder model is pooled over its encoder.
    """
    import torch

    from tunelab.models.precision import autocast

    encoder = model.get_encoder() if getattr(model.config, "is_encoder_decoder", False) else model
    device = next(encoder.parameters()).device
    encoded = tokenizer(list(texts), truncation=True, max_length=max_length)
    order = np.argsort([len(ids) for ids in encoded["input_ids"]], kind="stable")
    out = np.zeros((len(texts), encoder.config.hidden_size), dtype=np.float32)
    encoder.eval()
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            index = order[start : start + batch_size]
            batch = tokenizer.pad(
                {key: [encoded[key][i] for i in index] for key in encoded}, return_tensors="pt"
            )
            batch = {key: value.to(device) for key, value in batch.items()}
            with autocast(precision, device.type):
                hidden = encoder(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).float()
            pooled = (hidden.float() * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
            out[index] = pooled.cpu().numpy()
    return out


def linear_probe_baseline(
    model_dir: Path,
    model_cfg: ModelConfig,
    train_texts: Sequence[str],
    train_labels: np.ndarray,
    test_texts: Sequence[str],
    test_labels: np.ndarray,
    names: tuple[str, ...],
    max_length: int,
    batch_size: int,
    precision: str,
    seed: int,
) -> tuple[dict[str, Any], np.ndarray]:
    """Logistic regression on the frozen base model's mean-pooled embeddings.

    Separates what the pretrained representation already knows from what fine-tuning adds.
    Returns (report, predicted label ids for the test texts).
    """
    import torch
    from transformers import AutoModel

    from tunelab.models import load_pretrained, load_tokenizer

    model = load_pretrained(AutoModel, model_dir, model_cfg)
    model.to("cuda" if torch.cuda.is_available() else "cpu")
    tokenizer = load_tokenizer(model_dir, model_cfg)
    train_x, test_x = (
        mean_pooled_embeddings(model, tokenizer, texts, max_length, batch_size, precision)
        for texts in (train_texts, test_texts)
    )
    classifier = LogisticRegression(max_iter=2000, random_state=seed)
    classifier.fit(train_x, np.asarray(train_labels))
    predicted = np.asarray(classifier.predict(test_x))
    return full_report(np.asarray(test_labels), predicted, names), predicted


def paired_bootstrap(
    y_true: np.ndarray,
    pred_a: np.ndarray,
    pred_b: np.ndarray,
    metric: BootstrapMetric = "accuracy",
    n_resamples: int = 1000,
    seed: int = 0,
    num_labels: int | None = None,
) -> dict[str, Any]:
    """metric(a) - metric(b) with a 95% percentile interval from resampling test rows.

    Both models are scored on the same resampled rows, so the interval reflects the difference
    between them rather than the noise of each. `num_labels` (for macro_f1) defaults to the largest
    label id seen + 1; macro-F1 matches `scalar_metrics` (absent classes count as F1 = 0).
    """
    y_true, pred_a, pred_b = (np.asarray(x, dtype=np.int64) for x in (y_true, pred_a, pred_b))
    if not len(y_true) == len(pred_a) == len(pred_b) or len(y_true) == 0:
        raise ValueError(
            f"paired_bootstrap needs equally long, non-empty arrays; got {len(y_true)}, {len(pred_a)}, {len(pred_b)}"
        )
    if metric not in ("accuracy", "macro_f1"):
        raise ValueError(
            f"paired_bootstrap metric must be 'accuracy' or 'macro_f1', not {metric!r}"
        )
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be at least 1, not {n_resamples}")
    if num_labels is None:
        num_labels = int(max(y_true.max(), pred_a.max(), pred_b.max())) + 1
    full = _resampled_difference(
        y_true, pred_a, pred_b, metric, num_labels, np.arange(len(y_true))[None]
    )
    differences = _bootstrap_differences(
        y_true, pred_a, pred_b, metric, num_labels, n_resamples, seed
    )
    low, high = np.percentile(differences, [2.5, 97.5])
    return {
        "difference": float(full[0]),
        "ci_low": float(low),
        "ci_high": float(high),
        "n_resamples": int(n_resamples),
    }


def _bootstrap_differences(
    y_true: np.ndarray,
    pred_a: np.ndarray,
    pred_b: np.ndarray,
    metric: BootstrapMetric,
    num_labels: int,
    n_resamples: int,
    seed: int,
) -> np.ndarray:
    """The metric difference on each of `n_resamples` resamples, drawn in chunks to bound memory."""
    rng = np.random.default_rng(seed)
    rows = len(y_true)
    chunk = max(1, _BOOTSTRAP_CHUNK_CELLS // rows)
    parts = []
    for start in range(0, n_resamples, chunk):
        index = rng.integers(0, rows, size=(min(chunk, n_resamples - start), rows))
        parts.append(_resampled_difference(y_true, pred_a, pred_b, metric, num_labels, index))
    return np.concatenate(parts)


def _resampled_difference(
    y_true: np.ndarray,
    pred_a: np.ndarray,
    pred_b: np.ndarray,
    metric: BootstrapMetric,
    num_labels: int,
    index: np.ndarray,
) -> np.ndarray:
    """metric(a) - metric(b) for each row of `index` (resamples x rows of test-row indices)."""
    if metric == "accuracy":
        return ((pred_a == y_true).astype(np.float64) - (pred_b == y_true))[index].mean(axis=1)
    truth = y_true[index]
    return _macro_f1(truth, pred_a[index], num_labels) - _macro_f1(truth, pred_b[index], num_labels)


def _macro_f1(truth: np.ndarray, predicted: np.ndarray, num_labels: int) -> np.ndarray:
    """Macro-F1 of each row from per-class counts (F1 = 2TP / (2TP + FP + FN)), by one bincount each."""
    resamples = truth.shape[0]
    offset = np.arange(resamples)[:, None] * num_labels
    size = resamples * num_labels

    def counts(labels: np.ndarray) -> np.ndarray:
        return np.bincount(labels.ravel(), minlength=size).reshape(resamples, num_labels)

    true_positive = counts((truth + offset)[truth == predicted])
    denominator = counts(truth + offset) + counts(predicted + offset)  # = 2TP + FP + FN
    f1 = np.divide(
        2.0 * true_positive,
        denominator,
        out=np.zeros(denominator.shape, dtype=np.float64),
        where=denominator > 0,
    )
    return f1.mean(axis=1)
