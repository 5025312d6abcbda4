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
    before = _counts(frame)
    report: dict[str, Any] = {
        "label_counts_before": before,
        "imbalance_ratio": max(before.values()) / min(before.values()),
        "resample": cfg.resample,
        "class_weights": cfg.class_weights,
    }
    if cfg.resample == "none":
        return frame, report
    target = max(before.values()) if cfg.resample == "oversample" else min(before.values())
    parts = []
    for label in sorted(before):
        group = frame[frame["label"] == label]
        if len(group) != target:
            group = group.sample(n=target, replace=len(group) < target, random_state=seed + label)
        parts.append(group)
    out = pd.concat(parts).sort_index(kind="stable").reset_index(drop=True)
    report["label_counts_after"] = _counts(out)
    return out, report


def _counts(frame: pd.DataFrame) -> dict[int, int]:
    values, counts = np.unique(frame["label"].to_numpy(), return_counts=True)
    return {int(v): int(c) for v, c in zip(values, counts, strict=True)}
