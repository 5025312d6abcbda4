"""TF-IDF and linear-probe baselines, mean pooling, and the paired bootstrap."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import toy_sentiment
from tunelab.config import ModelConfig
from tunelab.evaluation.baselines import (
    linear_probe_baseline,
    mean_pooled_embeddings,
    paired_bootstrap,
    tfidf_baseline,
)
from tunelab.evaluation.metrics import scalar_metrics

NAMES = ("neg", "pos")


def toy_split(
    rows: int = 200, train: int = 160
) -> tuple[list[str], np.ndarray, list[str], np.ndarray]:
    """toy_sentiment(rows, seed=0): the first `train` rows to train on, the rest to test."""
    frame = toy_sentiment(rows, seed=0)
    texts = frame["text"].tolist()
    labels = frame["label"].map(NAMES.index).to_numpy()
    return texts[:train], labels[:train], texts[train:], labels[train:]


def test_tfidf_baseline_pinned_accuracy_on_toy_data() -> None:
    # Pinned from a run of this exact setup: 38 of the 40 test rows right, one error per class.
    # Reproduce with: .venv/bin/pytest tests/unit/test_baselines.py -k tfidf
    train_texts, train_labels, test_texts, test_labels = toy_split()
    report, predicted = tfidf_baseline(
        train_texts, train_labels, test_texts, test_labels, NAMES, seed=0
    )
    assert report["accuracy"] == pytest.approx(38 / 40)
    assert report["confusion_matrix"]["matrix"] == [[19, 1], [1, 19]]
    assert report["rows"] == 40
    assert predicted.shape == (40,)
    assert report["accuracy"] == pytest.approx(float((predicted == test_labels).mean()))


def test_tfidf_baseline_is_perfect_when_one_word_names_the_class() -> None:
    names = ("cat", "dog", "bird")
    keyword = {0: "meow", 1: "woof", 2: "tweet"}
    filler = ["the", "animal", "made", "sound", "loudly", "again", "today"]
    rng = np.random.default_rng(0)
    labels = np.arange(60) % 3
    texts = [" ".join([*rng.choice(filler, 4), keyword[int(y)]]) for y in labels]
    report, predicted = tfidf_baseline(texts[:45], labels[:45], texts[45:], labels[45:], names, 0)
    assert report["accuracy"] == 1.0
    assert report["macro_f1"] == 1.0
    np.testing.assert_array_equal(predicted, labels[45:])
    assert list(report["per_class"]) == list(names)


def test_linear_probe_reports_on_the_test_rows(tiny_bert_dir: Path) -> None:
    train_texts, train_labels, test_texts, test_labels = toy_split()
    report, predicted = linear_probe_baseline(
        tiny_bert_dir,
        ModelConfig(name=str(tiny_bert_dir)),
        train_texts,
        train_labels,
        test_texts,
        test_labels,
        NAMES,
        max_length=16,
        batch_size=32,
        precision="fp32",
        seed=0,
    )
    assert report["rows"] == 40
    assert report["confusion_matrix"]["labels"] == list(NAMES)
    assert list(report["per_class"]) == list(NAMES)
    assert sum(c["support"] for c in report["per_class"].values()) == 40
    assert predicted.shape == (40,)
    assert set(predicted.tolist()) <= {0, 1}
    assert report["accuracy"] == pytest.approx(float((predicted == test_labels).mean()))


def test_mean_pooled_embeddings_ignore_padding(tiny_bert_dir: Path) -> None:
    from transformers import AutoModel

    from tunelab.models import load_pretrained, load_tokenizer

    cfg = ModelConfig(name=str(tiny_bert_dir))
    model = load_pretrained(AutoModel, tiny_bert_dir, cfg)
    tokenizer = load_tokenizer(tiny_bert_dir, cfg)
    short = "good movie"
    long = "the plot was very boring and the acting was really awful"
    alone = mean_pooled_embeddings(model, tokenizer, [short], 32, 8, "fp32")
    batched = mean_pooled_embeddings(model, tokenizer, [long, short], 32, 8, "fp32")
    assert batched.shape == (2, model.config.hidden_size)
    assert batched.dtype == np.float32
    # Row order follows the input even though batches are length-sorted.
    np.testing.assert_allclose(batched[1], alone[0], atol=1e-5)
    assert not np.allclose(batched[0], batched[1], atol=1e-3)


def test_paired_bootstrap_identical_predictions_give_zero() -> None:
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 3, 200)
    pred = rng.integers(0, 3, 200)
    for metric in ("accuracy", "macro_f1"):
        result = paired_bootstrap(y_true, pred, pred.copy(), metric, n_resamples=200, seed=1)
        assert result == {"difference": 0.0, "ci_low": 0.0, "ci_high": 0.0, "n_resamples": 200}


def better_and_worse(rows: int = 300) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels, a model right on 90% of rows, and one right on a strict subset (60%) of those."""
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 3, rows)
    wrong = (y_true + 1) % 3
    draw = rng.random(rows)
    return y_true, np.where(draw < 0.9, y_true, wrong), np.where(draw < 0.6, y_true, wrong)


@pytest.mark.parametrize("metric", ["accuracy", "macro_f1"])
def test_paired_bootstrap_strictly_better_model(metric: str) -> None:
    y_true, better, worse = better_and_worse()
    result = paired_bootstrap(y_true, better, worse, metric, n_resamples=500, seed=0, num_labels=3)
    expected = scalar_metrics(y_true, better, 3)[metric] - scalar_metrics(y_true, worse, 3)[metric]
    assert result["difference"] == pytest.approx(expected)
    assert result["difference"] > 0
    assert 0 < result["ci_low"] <= result["difference"] <= result["ci_high"]
    assert result["ci_low"] < result["ci_high"]
    swapped = paired_bootstrap(y_true, worse, better, metric, n_resamples=500, seed=0, num_labels=3)
    assert swapped["difference"] == pytest.approx(-result["difference"])
    assert swapped["ci_high"] < 0


def test_paired_bootstrap_macro_f1_counts_absent_classes_like_scalar_metrics() -> None:
    # Class 3 never occurs: with num_labels=4 it counts as F1 = 0, as in scalar_metrics.
    y_true, better, worse = better_and_worse(100)
    result = paired_bootstrap(y_true, better, worse, "macro_f1", n_resamples=10, num_labels=4)
    expected = (
        scalar_metrics(y_true, better, 4)["macro_f1"] - scalar_metrics(y_true, worse, 4)["macro_f1"]
    )
    assert result["difference"] == pytest.approx(expected)


def test_paired_bootstrap_keys_and_seeded_reproducibility() -> None:
    y_true, better, worse = better_and_worse()
    first = paired_bootstrap(y_true, better, worse, "macro_f1", n_resamples=100, seed=3)
    again = paired_bootstrap(y_true, better, worse, "macro_f1", n_resamples=100, seed=3)
    other = paired_bootstrap(y_true, better, worse, "macro_f1", n_resamples=100, seed=4)
    assert set(first) == {"difference", "ci_low", "ci_high", "n_resamples"}
    assert all(isinstance(first[key], float) for key in ("difference", "ci_low", "ci_high"))
    assert first["n_resamples"] == 100
    assert first == again
    assert other["difference"] == first["difference"]
    assert (other["ci_low"], other["ci_high"]) != (first["ci_low"], first["ci_high"])


def test_paired_bootstrap_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="equally long"):
        paired_bootstrap(np.array([0, 1]), np.array([0]), np.array([0, 1]))
    with pytest.raises(ValueError, match="metric"):
        paired_bootstrap(np.array([0, 1]), np.array([0, 1]), np.array([0, 1]), "f1")  # type: ignore[arg-type]
