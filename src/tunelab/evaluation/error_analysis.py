"""Where a model goes wrong: confusions, confident mistakes, slices, calibration, worst generations.

Everything returned is made of dicts, lists, str, int, float and None, so a report can be written
straight to JSON next to metrics.json. Classification predictions are the argmax of the
probabilities (as Predictor.predict returns them) and the confidence is their maximum.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

TEXT_PREVIEW_CHARS = 300
MAX_METADATA_VALUES = 20
CALIBRATION_BINS = 10
HISTOGRAM_BINS = 10


def classification_errors(
    texts: list[str],
    y_true: np.ndarray,
    probabilities: np.ndarray,
    names: tuple[str, ...],
    metadata: pd.DataFrame | None = None,
    top_k: int = 10,
    length_buckets: int = 4,
) -> dict[str, Any]:
    """One report of what the aggregate metrics hide: which labels get mixed up, where, how sure."""
    y_true, probabilities = _check_classification_inputs(texts, y_true, probabilities, names)
    predicted = probabilities.argmax(-1) if len(texts) else np.zeros(0, dtype=int)
    confidence = probabilities.max(-1) if len(texts) else np.zeros(0)
    correct = predicted == y_true
    ece, bins = expected_calibration_error(confidence, correct, CALIBRATION_BINS)
    return {
        "rows": len(texts),
        "errors": int((~correct).sum()),
        "accuracy": float(correct.mean()) if len(texts) else None,
        "confused_pairs": confused_pairs(y_true, predicted, names, top_k),
        "confident_wrong": confident_wrong(texts, y_true, predicted, confidence, names, top_k),
        "by_length": accuracy_by_length(texts, correct, length_buckets),
        "by_metadata": accuracy_by_metadata(metadata, correct),
        "calibration": {
            "ece": ece,
            "mce": max((abs(b["accuracy"] - b["confidence"]) for b in bins), default=0.0),
            "n_bins": CALIBRATION_BINS,
            "bins": bins,
        },
    }


def _check_classification_inputs(
    texts: list[str], y_true: np.ndarray, probabilities: np.ndarray, names: tuple[str, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Fail loudly on misaligned inputs: a silent zip would attribute errors to the wrong texts."""
    y_true = np.asarray(y_true).astype(int).reshape(-1)
    probabilities = np.asarray(probabilities, dtype=float)
    if len(y_true) != len(texts):
        raise ValueError(f"{len(y_true)} labels for {len(texts)} texts")
    if len(texts) and probabilities.shape != (len(texts), len(names)):
        raise ValueError(
            f"probabilities have shape {probabilities.shape}, expected {(len(texts), len(names))}"
        )
    return y_true, probabilities


def confused_pairs(
    y_true: np.ndarray, predicted: np.ndarray, names: tuple[str, ...], top_k: int = 10
) -> list[dict[str, Any]]:
    """The most frequent (true, predicted) mistakes; share_of_true says how much of a class leaks."""
    wrong = y_true != predicted
    if not wrong.any():
        return []
    support = np.bincount(y_true, minlength=len(names))
    pairs, counts = np.unique(
        np.stack([y_true[wrong], predicted[wrong]], axis=1), axis=0, return_counts=True
    )
    # Most frequent first; ties in label order so the report does not change between runs.
    order = sorted(range(len(counts)), key=lambda i: (-counts[i], pairs[i][0], pairs[i][1]))
    return [
        {
            "true": names[int(pairs[i][0])],
            "predicted": names[int(pairs[i][1])],
            "count": int(counts[i]),
            "share_of_true": float(counts[i] / support[pairs[i][0]]),
        }
        for i in order[:top_k]
    ]


def confident_wrong(
    texts: list[str],
    y_true: np.ndarray,
    predicted: np.ndarray,
    confidence: np.ndarray,
    names: tuple[str, ...],
    top_k: int = 10,
) -> list[dict[str, Any]]:
    """Mistakes the model was surest of: often label noise in the data, or a real blind spot."""
    wrong = np.flatnonzero(y_true != predicted)
    # Stable sort: equal probabilities keep input order.
    order = wrong[np.argsort(-confidence[wrong], kind="stable")][:top_k]
    return [
        {
            "index": int(i),
            "text": texts[i][:TEXT_PREVIEW_CHARS],
            "true": names[int(y_true[i])],
            "predicted": names[int(predicted[i])],
            "probability": float(confidence[i]),
        }
        for i in order
    ]


def accuracy_by_length(
    texts: list[str], correct: np.ndarray, length_buckets: int = 4
) -> list[dict[str, Any]]:
    """Accuracy per word-count quantile: truncation and very short inputs show up here."""
    if not texts:
        return []
    lengths = pd.Series([len(text.split()) for text in texts])
    codes = _quantile_codes(lengths, length_buckets)
    return [
        {"bucket": f"{lo}-{hi} words", "rows": rows, "accuracy": accuracy}
        for lo, hi, rows, accuracy in _bucket_table(lengths, codes, correct)
    ]


def accuracy_by_metadata(
    metadata: pd.DataFrame | None, correct: np.ndarray
) -> dict[str, list[dict[str, Any]]]:
    """Accuracy per value of each metadata column (source, domain, ...): finds weak slices."""
    if metadata is None:
        return {}
    if len(metadata) != len(correct):
        raise ValueError(f"metadata has {len(metadata)} rows for {len(correct)} predictions")
    metadata = metadata.reset_index(drop=True)
    return {str(column): _column_slices(metadata[column], correct) for column in metadata.columns}


def _column_slices(column: pd.Series, correct: np.ndarray) -> list[dict[str, Any]]:
    """Most frequent values of one column; many-valued numeric columns become quartile ranges."""
    numeric = pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
    if numeric and column.nunique() > MAX_METADATA_VALUES:
        present = column.notna().to_numpy()
        values = column[present].reset_index(drop=True)
        codes = _quantile_codes(values, 4)
        slices: list[dict[str, Any]] = [
            {"value": f"{lo:g} to {hi:g}", "rows": rows, "accuracy": accuracy}
            for lo, hi, rows, accuracy in _bucket_table(values, codes, correct[present])
        ]
        if not present.all():
            missing = correct[~present]
            slices.append({"value": None, "rows": len(missing), "accuracy": float(missing.mean())})
        return slices
    keys = column.astype(object).where(column.notna(), None)
    frame = pd.DataFrame({"key": keys.map(_plain), "correct": correct})
    groups = frame.groupby("key", dropna=False, sort=False)["correct"].agg(["size", "mean"])
    table = [(_plain(key), int(row["size"]), float(row["mean"])) for key, row in groups.iterrows()]
    table.sort(key=lambda item: (-item[1], str(item[0])))
    return [
        {"value": key, "rows": rows, "accuracy": accuracy}
        for key, rows, accuracy in table[:MAX_METADATA_VALUES]
    ]


def _plain(value: Any) -> Any:
    """A JSON-friendly scalar: numpy scalars to Python, missing to None, anything else to str."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and np.isnan(value):
        return None
    return value if isinstance(value, str | int | float | bool) else str(value)


def _quantile_codes(values: pd.Series, buckets: int) -> np.ndarray:
    """Quantile bucket per row; a single distinct value is one bucket (qcut would give NaN)."""
    if values.nunique() < 2 or buckets < 2:
        return np.zeros(len(values), dtype=int)
    codes = pd.qcut(values, q=buckets, labels=False, duplicates="drop")
    return np.asarray(codes, dtype=int)


def _bucket_table(
    values: pd.Series, codes: np.ndarray, correct: np.ndarray
) -> list[tuple[Any, Any, int, float]]:
    """(smallest value, largest value, rows, accuracy) per bucket, in bucket order."""
    table = []
    array = values.to_numpy()
    for code in np.unique(codes):
        members = codes == code
        lo, hi = array[members].min(), array[members].max()
        table.append((_plain(lo), _plain(hi), int(members.sum()), float(correct[members].mean())))
    return table


def expected_calibration_error(
    confidence: np.ndarray, correct: np.ndarray, bins: int = 10
) -> tuple[float, list[dict[str, Any]]]:
    """ECE over equal-width confidence bins, plus the non-empty bins for a reliability plot.

    A model that says 0.9 should be right 90% of the time; ECE is the row-weighted gap between
    accuracy and mean confidence per bin. Bins are [low, high) like scikit-learn's
    calibration_curve, with 1.0 in the last bin.
    """
    confidence = np.asarray(confidence, dtype=float).reshape(-1)
    correct = np.asarray(correct, dtype=bool).reshape(-1)
    if len(confidence) != len(correct):
        raise ValueError(f"{len(confidence)} confidences for {len(correct)} outcomes")
    if not len(confidence):
        return 0.0, []
    # k / bins gives the same float as a hand-written edge (0.3), unlike linspace (0.30000000000000004).
    edges = np.arange(bins + 1) / bins
    index = np.clip(np.searchsorted(edges, confidence, side="right") - 1, 0, bins - 1)
    ece, table = 0.0, []
    for b in range(bins):
        members = index == b
        rows = int(members.sum())
        if not rows:
            continue
        accuracy = float(correct[members].mean())
        mean_confidence = float(confidence[members].mean())
        ece += abs(accuracy - mean_confidence) * rows / len(confidence)
        table.append(
            {
                "low": float(edges[b]),
                "high": float(edges[b + 1]),
                "rows": rows,
                "accuracy": accuracy,
                "confidence": mean_confidence,
            }
        )
    return float(ece), table


def generation_errors(
    predictions: list[str],
    references: list[str],
    prompts: list[str],
    rouge_l: Sequence[float],
    worst_k: int = 10,
) -> dict[str, Any]:
    """ROUGE-L spread and the worst generations: a mean alone hides a tail of empty or off answers.

    rouge_l is per example on the 0-100 scale (text_metrics' rougeL_per_example).
    """
    scores = np.asarray(rouge_l, dtype=float).reshape(-1)
    sizes = {len(predictions), len(references), len(prompts), len(scores)}
    if len(sizes) != 1:
        raise ValueError(
            f"lengths differ: {len(predictions)} predictions, {len(references)} references, "
            f"{len(prompts)} prompts, {len(scores)} ROUGE-L scores"
        )
    counts, edges = np.histogram(np.clip(scores, 0, 100), bins=HISTOGRAM_BINS, range=(0, 100))
    # Stable sort: equal scores keep input order.
    worst = np.argsort(scores, kind="stable")[:worst_k]
    return {
        "examples": len(scores),
        "rougeL_distribution": _distribution(scores),
        "worst": [
            {
                "index": int(i),
                "prompt": prompts[i][:TEXT_PREVIEW_CHARS],
                "prediction": predictions[i],
                "reference": references[i],
                "rougeL": float(scores[i]),
            }
            for i in worst
        ],
        "histogram": {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]},
    }


def _distribution(scores: np.ndarray) -> dict[str, float | None]:
    """Mean, percentiles and the share of zero scores (no overlap at all); None when empty."""
    keys = ("mean", "p10", "p25", "median", "p75", "p90", "share_zero")
    if not len(scores):
        return dict.fromkeys(keys)
    p10, p25, median, p75, p90 = np.percentile(scores, [10, 25, 50, 75, 90])
    values = (scores.mean(), p10, p25, median, p75, p90, (scores == 0).mean())
    return {key: float(value) for key, value in zip(keys, values, strict=True)}
