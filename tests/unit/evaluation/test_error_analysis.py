"""Error analysis against hand-computed values: confusions, slices, calibration, worst generations."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tunelab.evaluation.error_analysis import (
    classification_errors,
    expected_calibration_error,
    generation_errors,
)


def probabilities_for(predicted: list[int], confidence: list[float], classes: int) -> np.ndarray:
    """Rows whose argmax is `predicted` with max probability `confidence`, the rest spread evenly."""
    rows = np.zeros((len(predicted), classes))
    for i, (label, p) in enumerate(zip(predicted, confidence, strict=True)):
        assert p > (1 - p) / (classes - 1), "the chosen label must stay the argmax"
        rows[i, :] = (1 - p) / (classes - 1)
        rows[i, label] = p
    return rows


def words(count: int) -> str:
    return " ".join(["w"] * count)


# --- calibration -------------------------------------------------------------------------------


def test_ece_matches_hand_computation() -> None:
    # bin [0.2, 0.3): conf 0.2, 0.2; right 1 of 2 -> |0.5 - 0.2|   = 0.3
    # bin [0.7, 0.8): conf 0.7, 0.75; right 1 of 2 -> |0.5 - 0.725| = 0.225
    # bin [0.9, 1.0]: conf 0.9, 1.0; right 2 of 2 -> |1.0 - 0.95|  = 0.05
    confidence = np.array([0.2, 0.2, 0.7, 0.75, 0.9, 1.0])
    correct = np.array([True, False, True, False, True, True])
    ece, bins = expected_calibration_error(confidence, correct, bins=10)
    assert ece == pytest.approx((0.3 + 0.225 + 0.05) * 2 / 6)
    assert [(b["low"], b["high"]) for b in bins] == [(0.2, 0.3), (0.7, 0.8), (0.9, 1.0)]
    assert [b["rows"] for b in bins] == [2, 2, 2]
    assert [b["accuracy"] for b in bins] == [0.5, 0.5, 1.0]
    assert [b["confidence"] for b in bins] == pytest.approx([0.2, 0.725, 0.95])


def test_perfectly_calibrated_predictions_have_zero_ece() -> None:
    # 10 rows at 0.8 with 8 right, 4 rows at 0.25 with 1 right: accuracy equals confidence per bin.
    confidence = np.array([0.8] * 10 + [0.25] * 4)
    correct = np.array([True] * 8 + [False] * 2 + [True] + [False] * 3)
    ece, bins = expected_calibration_error(confidence, correct)
    assert ece == pytest.approx(0.0, abs=1e-12)
    assert sum(b["rows"] for b in bins) == len(confidence)
    assert len(bins) == 2


def test_calibration_in_the_report_uses_the_max_probability_and_gives_mce() -> None:
    # Same rows as the hand-computed ECE case, as two-class probabilities.
    confidence = [0.6, 0.6, 0.7, 0.75, 0.9, 1.0]
    predicted = [0, 0, 1, 1, 0, 1]
    y_true = np.array([0, 1, 1, 0, 0, 1])
    probabilities = probabilities_for(predicted, confidence, 2)
    report = classification_errors([words(3)] * 6, y_true, probabilities, ("neg", "pos"))
    # [0.6, 0.7): acc 0.5 vs 0.6; [0.7, 0.8): acc 0.5 vs 0.725; [0.9, 1.0]: acc 1 vs 0.95
    calibration = report["calibration"]
    assert calibration["ece"] == pytest.approx((0.1 + 0.225 + 0.05) * 2 / 6)
    assert calibration["mce"] == pytest.approx(0.225)
    assert sum(b["rows"] for b in calibration["bins"]) == 6
    assert report["accuracy"] == pytest.approx(4 / 6)
    assert report["errors"] == 2


# --- confusions and confident mistakes -----------------------------------------------------------


def test_confused_pairs_counts_order_and_share_of_true() -> None:
    names = ("a", "b", "c")
    y_true = np.array([0, 0, 0, 0, 1, 1, 2, 2, 2])
    predicted = [0, 1, 1, 2, 0, 1, 0, 0, 2]
    # errors: a->b x2, a->c x1, b->a x1, c->a x2; support a=4, b=2, c=3
    probabilities = probabilities_for(predicted, [0.7] * 9, 3)
    report = classification_errors([words(2)] * 9, y_true, probabilities, names, top_k=3)
    assert report["confused_pairs"] == [
        {"true": "a", "predicted": "b", "count": 2, "share_of_true": pytest.approx(2 / 4)},
        {"true": "c", "predicted": "a", "count": 2, "share_of_true": pytest.approx(2 / 3)},
        {"true": "a", "predicted": "c", "count": 1, "share_of_true": pytest.approx(1 / 4)},
    ]


def test_no_errors_gives_no_confused_pairs_or_confident_wrong() -> None:
    probabilities = probabilities_for([0, 1], [0.9, 0.8], 2)
    report = classification_errors(["x", "y"], np.array([0, 1]), probabilities, ("n", "p"))
    assert report["confused_pairs"] == []
    assert report["confident_wrong"] == []


def test_confident_wrong_orders_errors_by_probability_and_skips_correct_rows() -> None:
    texts = ["zero", "one", "two", "three", "four"]
    y_true = np.array([0, 0, 1, 1, 0])
    predicted = [1, 0, 0, 1, 1]
    confidence = [0.6, 0.99, 0.9, 0.95, 0.8]  # the two most confident rows (1, 3) are right
    probabilities = probabilities_for(predicted, confidence, 2)
    report = classification_errors(texts, y_true, probabilities, ("neg", "pos"), top_k=2)
    wrong = report["confident_wrong"]
    assert [w["text"] for w in wrong] == ["two", "four"]
    assert [w["index"] for w in wrong] == [2, 4]
    assert [w["probability"] for w in wrong] == pytest.approx([0.9, 0.8])
    assert wrong[0]["true"] == "pos" and wrong[0]["predicted"] == "neg"


def test_confident_wrong_cuts_long_texts() -> None:
    probabilities = probabilities_for([1], [0.9], 2)
    report = classification_errors(["x" * 500], np.array([0]), probabilities, ("neg", "pos"))
    assert report["confident_wrong"][0]["text"] == "x" * 300


# --- slices ------------------------------------------------------------------------------------


def length_case() -> tuple[list[str], np.ndarray, np.ndarray]:
    """Short texts (1-4 words) all right, long ones (10-13 words) all wrong."""
    lengths = [1, 2, 3, 4, 10, 11, 12, 13]
    y_true = np.array([0] * 8)
    predicted = [0] * 4 + [1] * 4
    return [words(n) for n in lengths], y_true, probabilities_for(predicted, [0.9] * 8, 2)


def test_by_length_two_buckets_split_short_right_from_long_wrong() -> None:
    texts, y_true, probabilities = length_case()
    report = classification_errors(texts, y_true, probabilities, ("n", "p"), length_buckets=2)
    assert report["by_length"] == [
        {"bucket": "1-4 words", "rows": 4, "accuracy": 1.0},
        {"bucket": "10-13 words", "rows": 4, "accuracy": 0.0},
    ]


def test_by_length_quartiles_cover_every_row() -> None:
    texts, y_true, probabilities = length_case()
    by_length = classification_errors(texts, y_true, probabilities, ("n", "p"))["by_length"]
    # quartile edges of [1, 2, 3, 4, 10, 11, 12, 13]: 2.75, 7, 11.25
    assert [b["bucket"] for b in by_length] == [
        "1-2 words",
        "3-4 words",
        "10-11 words",
        "12-13 words",
    ]
    assert [b["accuracy"] for b in by_length] == [1.0, 1.0, 0.0, 0.0]
    assert sum(b["rows"] for b in by_length) == len(texts)


def test_by_length_with_one_length_is_one_bucket() -> None:
    probabilities = probabilities_for([0, 0, 1], [0.9] * 3, 2)
    report = classification_errors([words(5)] * 3, np.array([0, 0, 0]), probabilities, ("n", "p"))
    assert report["by_length"] == [{"bucket": "5-5 words", "rows": 3, "accuracy": 2 / 3}]


def test_by_metadata_accuracy_per_categorical_value() -> None:
    # web: 4 rows, 3 right; news: 2 rows, 0 right; forum: 1 row, right
    # first appearances are forum, news, web: the report must order by frequency instead
    source = ["forum", "news", "web", "web", "news", "web", "web"]
    right = [True, False, True, True, False, False, True]
    y_true = np.zeros(7, dtype=int)
    probabilities = probabilities_for([0 if r else 1 for r in right], [0.9] * 7, 2)
    metadata = pd.DataFrame({"source": source}, index=range(100, 107))  # index is not used
    report = classification_errors(["t"] * 7, y_true, probabilities, ("n", "p"), metadata=metadata)
    assert report["by_metadata"] == {
        "source": [
            {"value": "web", "rows": 4, "accuracy": 0.75},
            {"value": "news", "rows": 2, "accuracy": 0.0},
            {"value": "forum", "rows": 1, "accuracy": 1.0},
        ]
    }


def test_by_metadata_buckets_many_valued_numbers_and_caps_categories() -> None:
    n = 40
    metadata = pd.DataFrame(
        {"score": np.arange(n), "user": [f"u{i % 25}" for i in range(n)]}  # 25 distinct users
    )
    right = np.arange(n) < 20
    probabilities = probabilities_for([0 if r else 1 for r in right], [0.9] * n, 2)
    report = classification_errors(
        ["t"] * n, np.zeros(n, dtype=int), probabilities, ("n", "p"), metadata=metadata
    )
    assert report["by_metadata"]["score"] == [
        {"value": "0 to 9", "rows": 10, "accuracy": 1.0},
        {"value": "10 to 19", "rows": 10, "accuracy": 1.0},
        {"value": "20 to 29", "rows": 10, "accuracy": 0.0},
        {"value": "30 to 39", "rows": 10, "accuracy": 0.0},
    ]
    users = report["by_metadata"]["user"]
    assert len(users) == 20
    assert [u["rows"] for u in users[:15]] == [2] * 15  # u0..u14 appear twice, the rest once


def test_report_is_plain_json() -> None:
    texts, y_true, probabilities = length_case()
    metadata = pd.DataFrame({"year": np.arange(8) % 3, "flag": [True, False] * 4})
    report = classification_errors(texts, y_true, probabilities, ("n", "p"), metadata=metadata)
    assert json.loads(json.dumps(report, allow_nan=False)) == report
    assert [v["value"] for v in report["by_metadata"]["year"]] == [0, 1, 2]


def test_misaligned_inputs_are_rejected() -> None:
    probabilities = probabilities_for([0, 1], [0.9, 0.9], 2)
    with pytest.raises(ValueError, match="labels"):
        classification_errors(["only one"], np.array([0, 1]), probabilities, ("n", "p"))
    with pytest.raises(ValueError, match="metadata"):
        classification_errors(
            ["a", "b"], np.array([0, 1]), probabilities, ("n", "p"), pd.DataFrame({"m": [1]})
        )


# --- generation ----------------------------------------------------------------------------------


def generation_case() -> tuple[list[str], list[str], list[str], list[float]]:
    rouge = [50.0, 0.0, 100.0, 20.0, 0.0, 75.0, 33.0]
    predictions = [f"pred {i}" for i in range(7)]
    references = [f"ref {i}" for i in range(7)]
    prompts = [f"prompt {i}" for i in range(6)] + ["p" * 400]
    return predictions, references, prompts, rouge


def test_generation_worst_examples_ascend_by_rouge_with_ties_in_input_order() -> None:
    predictions, references, prompts, rouge = generation_case()
    worst = generation_errors(predictions, references, prompts, rouge, worst_k=4)["worst"]
    assert [w["rougeL"] for w in worst] == [0.0, 0.0, 20.0, 33.0]
    assert [w["index"] for w in worst] == [1, 4, 3, 6]
    assert worst[0] == {
        "index": 1,
        "prompt": "prompt 1",
        "prediction": "pred 1",
        "reference": "ref 1",
        "rougeL": 0.0,
    }
    assert worst[3]["prompt"] == "p" * 300


def test_generation_distribution_and_histogram() -> None:
    predictions, references, prompts, rouge = generation_case()
    report = generation_errors(predictions, references, prompts, rouge)
    distribution = report["rougeL_distribution"]
    assert distribution["mean"] == pytest.approx(278 / 7)
    assert distribution["median"] == 33.0
    assert distribution["share_zero"] == pytest.approx(2 / 7)
    for key, q in {"p10": 10, "p25": 25, "median": 50, "p75": 75, "p90": 90}.items():
        assert distribution[key] == pytest.approx(float(np.percentile(rouge, q)))
    # sorted: 0 0 20 33 50 75 100 -> p25 at position 1.5 = 10.0
    assert distribution["p25"] == pytest.approx(10.0)
    # [0,10): 0 0 | [20,30): 20 | [30,40): 33 | [50,60): 50 | [70,80): 75 | [90,100]: 100
    assert report["histogram"]["counts"] == [2, 0, 1, 1, 0, 1, 0, 1, 0, 1]
    assert report["histogram"]["edges"][0] == 0.0 and report["histogram"]["edges"][-1] == 100.0
    assert len(report["worst"]) == 7
    assert json.loads(json.dumps(report, allow_nan=False)) == report


def test_generation_lengths_must_agree() -> None:
    with pytest.raises(ValueError, match="lengths differ"):
        generation_errors(["a"], ["b", "c"], ["p"], [1.0])
