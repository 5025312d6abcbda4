"""Baselines scored on the same test split as the fine-tuned model."""

from __future__ import annotations

from typing import Any

import numpy as np

from tunelab.evaluation.metrics import full_report


def majority_baseline(
    train_labels: np.ndarray, test_labels: np.ndarray, names: tuple[str, ...]
) -> dict[str, Any]:
    """Always predict the most frequent training label: the floor any model must clear."""
    majority = int(np.bincount(train_labels, minlength=len(names)).argmax())
    report = full_report(test_labels, np.full_like(test_labels, majority), names)
    report["predicts"] = names[majority]
    return report
