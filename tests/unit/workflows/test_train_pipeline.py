"""Train → artifacts → evaluate → predict on the tiny BERT, through the library API."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

import tunelab
from tunelab.errors import ConfigError, DataError, RunDirError
from tunelab.inference.predictor import Predictor
from tunelab.runs import load_predictor
from tunelab.workflows.check import build_checked as build_config


@pytest.fixture
def finished_run(tiny_config) -> tunelab.TrainResult:
    return tunelab.train(tiny_config)


def test_run_directory_holds_every_artifact(finished_run: tunelab.TrainResult) -> None:
    run = finished_run.run_dir
    for name in (
        "config.yaml",
        "run_card.json",
        "metrics.json",
        "test_predictions.csv",
        "model/model.safetensors",
        "model/config.json",
        "model/labels.json",
        "logs/train_log.jsonl",
    ):
        assert (run / name).is_file(), name
    assert not list(run.glob("model/*.bin")), "weights must be safetensors, never pickle"
    assert list((run / "checkpoints").glob("checkpoint-*/trainer_state.json"))
    card = json.loads((run / "run_card.json").read_text())
    assert card["status"] == "completed"
    assert card["seed"] == 7
    assert set(card["split_sha256"]) == {"train", "validation", "test"}
    assert card["data"]["splits"]["train"]["rows"] == 192  # 80% of 240
    assert card["data"]["splits"]["test"]["rows"] == 24
    assert len(next(iter(card["data"]["files"].values()))) == 64  # sha256 hex
    assert {"torch", "transformers"} <= set(card["packages"])
    resolved = yaml.safe_load((run / "config.yaml").read_text())
    assert resolved["train"]["lr"] == 5e-3 and resolved["train"]["scheduler"] == "linear"


def test_training_learns_the_toy_task(finished_run: tunelab.TrainResult) -> None:
    metrics = finished_run.metrics
    losses = [loss for _, loss in metrics["training"]["loss_curve"]]
    assert len(losses) >= 3
    assert losses[-1] < losses[0]
    assert metrics["test"]["accuracy"] > metrics["baselines"]["majority"]["accuracy"]
    assert metrics["test"]["accuracy"] >= 0.9
    on_disk = json.loads((finished_run.run_dir / "metrics.json").read_text())
    assert on_disk["test"]["confusion_matrix"]["labels"] == ["neg", "pos"]
    assert np.array(on_disk["test"]["confusion_matrix"]["matrix"]).sum() == 24
    assert set(on_disk["test"]["per_class"]) == {"neg", "pos"}
    assert on_disk["parameters"]["trainable"] == on_disk["parameters"]["total"]  # method 'full'


def test_evaluate_reloads_the_saved_model_and_reproduces_test_metrics(
    finished_run: tunelab.TrainResult,
) -> None:
    report = tunelab.evaluate(finished_run.run_dir)
    for key in ("accuracy", "macro_f1", "confusion_matrix"):
        assert report[key] == finished_run.metrics["test"][key]
    assert (finished_run.run_dir / "evaluations" / "test.json").is_file()


def test_save_then_load_gives_identical_logits(tiny_bert_dir: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForSequenceClassification

    from tunelab.config import ModelConfig
    from tunelab.data.labels import LabelMap
    from tunelab.models import load_pretrained, load_tokenizer

    cfg = ModelConfig(name=str(tiny_bert_dir))
    model = load_pretrained(
        AutoModelForSequenceClassification,
        tiny_bert_dir,
        cfg,
        {"num_labels": 3},
        ignore_mismatched_sizes=True,
    )
    tokenizer = load_tokenizer(tiny_bert_dir, cfg)
    with torch.no_grad():  # make the fresh head non-trivial
        model.classifier.weight.normal_()
    run = tmp_path / "run"
    model.save_pretrained(run / "model")
    tokenizer.save_pretrained(run / "model")
    labels = LabelMap(("a", "b", "c"))
    labels.save(run / "model" / "labels.json")
    (run / "run_card.json").write_text(json.dumps({"precision": "fp32", "max_length": 16}))
    texts = ["the movie was good", "awful plot", "really very boring acting is sad"]
    before = Predictor(model, tokenizer, labels, 16).logits(texts)
    after = load_predictor(run).logits(texts)
    np.testing.assert_array_equal(before, after)
    assert not np.allclose(before[0], before[1])


def test_same_seed_gives_the_same_run(tiny_config, tmp_path: Path) -> None:
    first = tunelab.train(tiny_config)
    again = tiny_config.model_copy(deep=True)
    again.output.name = "tiny-again"
    second = tunelab.train(again)
    assert first.metrics["training"]["loss_curve"] == second.metrics["training"]["loss_curve"]
    assert first.metrics["test"]["confusion_matrix"] == second.metrics["test"]["confusion_matrix"]


def test_predict_texts_and_files(finished_run: tunelab.TrainResult, tmp_path: Path) -> None:
    out = tunelab.predict(
        finished_run.run_dir, texts=["the film was superb fun", "dull awful acting"]
    )
    assert list(out["label"]) == ["pos", "neg"]
    np.testing.assert_allclose(out[["prob_neg", "prob_pos"]].sum(axis=1), 1.0, rtol=1e-5)
    source = tmp_path / "in.jsonl"
    pd.DataFrame({"review": ["great plot", "sad movie", "love the acting"]}).to_json(
        source, orient="records", lines=True
    )
    for suffix in (".csv", ".jsonl"):
        target = tmp_path / f"out{suffix}"
        tunelab.predict(
            finished_run.run_dir, input_file=source, output_file=target, text_column="review"
        )
        back = pd.read_csv(target) if suffix == ".csv" else pd.read_json(target, lines=True)
        assert list(back["label"]) == ["pos", "neg", "pos"]
        assert {"review", "probability", "prob_neg", "prob_pos"} <= set(back.columns)


def test_evaluate_on_another_file_checks_its_labels(
    finished_run: tunelab.TrainResult, tmp_path: Path
) -> None:
    good = tmp_path / "extra.csv"
    pd.DataFrame({"text": ["love it", "hate it"], "label": ["pos", "neg"]}).to_csv(
        good, index=False
    )
    report = tunelab.evaluate(finished_run.run_dir, good)
    assert report["rows"] == 2
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"text": ["love it", "meh"], "label": ["pos", "neutral"]}).to_csv(bad, index=False)
    with pytest.raises(DataError, match=r"label 'neutral'.*does not occur in train"):
        tunelab.evaluate(finished_run.run_dir, bad)


def test_existing_run_directory_is_not_clobbered(
    finished_run: tunelab.TrainResult, tiny_config
) -> None:
    with pytest.raises(ConfigError, match=r"already exists.*overwrite=true"):
        tunelab.train(tiny_config)
    assert (finished_run.run_dir / "metrics.json").is_file()


def test_data_errors_stop_before_a_run_directory_exists(tiny_config, tmp_path: Path) -> None:
    broken = tmp_path / "one_class.csv"
    pd.DataFrame({"text": ["a film", "the movie", "the plot"], "label": ["pos"] * 3}).to_csv(
        broken, index=False
    )
    raw = tiny_config.to_dict()
    raw["data"]["train_file"] = str(broken)
    with pytest.raises(DataError, match="at least two classes"):
        tunelab.train(build_config(raw))
    assert not (Path(tiny_config.output.dir) / "tiny").exists()


def test_commands_on_a_directory_that_is_not_a_run(tmp_path: Path) -> None:
    with pytest.raises(RunDirError, match="not a tunelab run directory"):
        tunelab.evaluate(tmp_path)
    with pytest.raises(RunDirError, match="no trained model"):
        tunelab.predict(tmp_path, texts=["x"])
