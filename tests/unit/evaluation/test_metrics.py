"""Metrics and the majority baseline against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from tunelab.evaluation.baselines import majority_baseline
from tunelab.evaluation.metrics import full_report, scalar_metrics, softmax


def test_full_report_matches_hand_computation() -> None:
    # true:  a a a a b b c      predicted: a a b a b c c
    y_true = np.array([0, 0, 0, 0, 1, 1, 2])
    y_pred = np.array([0, 0, 1, 0, 1, 2, 2])
    report = full_report(y_true, y_pred, ("a", "b", "c"))
    assert report["accuracy"] == pytest.approx(5 / 7)
    # per class: a P=3/3 R=3/4; b P=1/2 R=1/2; c P=1/2 R=1/1
    f1 = {"a": 2 * 1 * 0.75 / 1.75, "b": 0.5, "c": 2 * 0.5 / 1.5}
    for name, value in f1.items():
        assert report["per_class"][name]["f1"] == pytest.approx(value)
    assert report["macro_f1"] == pytest.approx(sum(f1.values()) / 3)
    assert report["weighted_f1"] == pytest.approx((4 * f1["a"] + 2 * f1["b"] + 1 * f1["c"]) / 7)
    assert report["macro_precision"] == pytest.approx((1 + 0.5 + 0.5) / 3)
    assert report["macro_recall"] == pytest.approx((0.75 + 0.5 + 1) / 3)
    assert report["confusion_matrix"]["matrix"] == [[3, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert report["per_class"]["a"]["support"] == 4
    assert report["rows"] == 7


def test_a_class_never_predicted_counts_as_zero_not_missing() -> None:
    metrics = scalar_metrics(np.array([0, 1, 2]), np.array([0, 0, 0]), 3)
    assert metrics["macro_f1"] == pytest.approx((2 * 1 / 3 / (1 + 1 / 3)) / 3)


def test_majority_baseline_predicts_the_most_frequent_train_label() -> None:
    report = majority_baseline(np.array([1, 1, 1, 0]), np.array([0, 1, 1, 1, 0]), ("neg", "pos"))
    assert report["predicts"] == "pos"
    assert report["accuracy"] == pytest.approx(3 / 5)
    assert report["per_class"]["neg"]["recall"] == 0.0


def test_softmax_rows_sum_to_one_and_survive_large_logits() -> None:
    probabilities = softmax(np.array([[1000.0, 0.0], [1.0, 1.0]]))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    np.testing.assert_allclose(probabilities[1], [0.5, 0.5])
    assert probabilities[0, 0] == pytest.approx(1.0)
