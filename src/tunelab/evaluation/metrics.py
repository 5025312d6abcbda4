"""Classification metrics from scikit-learn, in one dict shape for metrics.json and the CLI."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)

SCALAR_METRICS = ("accuracy", "macro_f1", "weighted_f1", "macro_precision", "macro_recall")


def scalar_metrics(y_true: np.ndarray, y_pred: np.ndarray, num_labels: int) -> dict[str, float]:
    """The numbers logged during training and used to pick the best checkpoint."""
    labels = list(range(num_labels))
    precision, recall, _, _ = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, average="macro", zero_division=0
    )
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(
            f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)
        ),
        "weighted_f1": float(
            f1_score(y_true, y_pred, labels=labels, average="weighted", zero_division=0)
        ),
        "macro_precision": float(precision),
        "macro_recall": float(recall),
    }


def full_report(y_true: np.ndarray, y_pred: np.ndarray, names: tuple[str, ...]) -> dict[str, Any]:
    """Scalars plus the confusion matrix (rows = true, columns = predicted) and a per-class table."""
    labels = list(range(len(names)))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, average=None, zero_division=0
    )
    per_class = {
        name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
        for name, p, r, f, s in zip(names, precision, recall, f1, support, strict=True)
    }
    return {
        **scalar_metrics(y_true, y_pred, len(names)),
        "rows": len(y_true),
        "confusion_matrix": {
            "labels": list(names),
            "matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        },
        "per_class": per_class,
    }


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)
