"""Label imbalance: report it, and optionally reweight the loss or resample train."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.utils.class_weight import compute_class_weight

from tunelab.config import ImbalanceConfig


def class_weights(labels: np.ndarray, num_labels: int) -> list[float]:
    """'Balanced' weights n / (k · count): a class half as frequent weighs twice as much."""
    present = np.unique(labels)
    weights = np.ones(num_labels)
    weights[present] = compute_class_weight("balanced", classes=present, y=labels)
    return [float(w) for w in weights]


def resample(
    frame: pd.DataFrame, cfg: ImbalanceConfig, seed: int
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Over- or undersample train to equal class counts (rows are sampled, never invented)."""
    before = frame["label"].value_counts().sort_index()
    report: dict[str, Any] = {
        "label_counts_before": {int(k): int(v) for k, v in before.items()},
        "imbalance_ratio": float(before.max() / before.min()),
        "resample": cfg.resample,
        "class_weights": cfg.class_weights,
    }
    if cfg.resample == "none":
        return frame, report
    target = int(before.max() if cfg.resample == "oversample" else before.min())
    parts = []
    for label, group in frame.groupby("label", sort=True):
        replace = len(group) < target
        parts.append(
            group
            if len(group) == target
            else group.sample(n=target, replace=replace, random_state=seed + int(label))
        )
    out = pd.concat(parts).sort_index(kind="stable").reset_index(drop=True)
    report["label_counts_after"] = {
        int(k): int(v) for k, v in out["label"].value_counts().sort_index().items()
    }
    return out, report
