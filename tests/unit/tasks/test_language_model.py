"""Continued pre-training: masked LM on an encoder, causal LM on a Llama-style decoder."""

from __future__ import annotations

from pathlib import Path

import pytest

import tunelab
from tunelab.errors import RunDirError
from tunelab.tasks import task_for
from tunelab.workflows.check import build_checked as build_config


@pytest.fixture
def corpus(tmp_path: Path, toy_rows) -> Path:
    path = tmp_path / "domain.txt"
    path.write_text("\n\n".join(toy_rows(400)["text"]) + "\n")  # blank lines are skipped
    return path


def lm_config(tmp_path: Path, corpus: Path, model_dir: Path, task: str, **train):
    return build_config(
        {
            "data": {"train_file": str(corpus), "max_length": 32},
            "task": {"type": task},
            "model": {"name": str(model_dir)},
            "train": {"epochs": 3, "lr": 5e-3, "precision": "fp32", "batch_size": 8, **train},
            "output": {"dir": str(tmp_path / "runs"), "name": task},
        }
    )


@pytest.mark.parametrize("task", ["masked_lm", "causal_lm"])
def test_perplexity_falls_on_the_domain_text(
    tmp_path, corpus, tiny_bert_dir, tiny_llama_dir, task
) -> None:
    model_dir = tiny_bert_dir if task == "masked_lm" else tiny_llama_dir
    result = tunelab.train(lm_config(tmp_path, corpus, model_dir, task))
    for split in ("validation", "test"):
        report = result.metrics[split]
        assert report["blocks"] > 0
        assert report["perplexity_after"] < report["perplexity_before"]
        assert report["relative_change"] == pytest.approx(
            report["perplexity_after"] / report["perplexity_before"] - 1
        )
    assert (result.run_dir / "model" / "model.safetensors").is_file()
    with pytest.raises(RunDirError, match=f"is a {task} run"):
        tunelab.evaluate(result.run_dir)


def test_masked_evaluation_uses_fixed_masks(tmp_path, corpus, tiny_bert_dir) -> None:
    from tunelab.workflows.train import prepare_training

    session = prepare_training(lm_config(tmp_path, corpus, tiny_bert_dir, "masked_lm"))
    task = task_for(session.cfg)
    first, second = task.before_training(session), task.before_training(session)
    assert first == second  # same masks, same model → the same perplexity
    labels = session.encoded["validation"]["labels"]
    masked = sum(1 for block in labels for token in block if token != -100)
    total = sum(len(block) for block in labels)
    assert 0.05 < masked / total < 0.3  # about 15% of tokens are prediction targets


def test_adapted_encoder_is_the_model_of_a_classification_run(
    tmp_path, corpus, tiny_bert_dir, tiny_config
) -> None:
    adapted = tunelab.train(lm_config(tmp_path, corpus, tiny_bert_dir, "masked_lm", epochs=1))
    raw = tiny_config.to_dict()
    raw["model"]["name"] = str(adapted.run_dir / "model")
    raw["output"]["name"] = "after-mlm"
    classified = tunelab.train(build_config(raw))
    assert (
        classified.metrics["test"]["accuracy"]
        > classified.metrics["baselines"]["majority"]["accuracy"]
    )


def test_cli_prints_the_perplexity_table(tmp_path, corpus, tiny_bert_dir) -> None:
    import os
    import subprocess
    import sys

    import yaml

    cfg = lm_config(tmp_path, corpus, tiny_bert_dir, "masked_lm", epochs=1)
    (tmp_path / "lm.yaml").write_text(yaml.safe_dump(cfg.to_dict()))
    tunelab_cli = str(Path(sys.executable).with_name("tunelab"))
    result = subprocess.run(
        [tunelab_cli, "train", str(tmp_path / "lm.yaml")],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "200"},
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "perplexity (lower is better)" in result.stdout
    assert "validation" in result.stdout and "run directory:" in result.stdout


def test_causal_lm_labels_keep_eos_even_when_it_is_the_pad_token(tiny_bert_dir: Path) -> None:
    from transformers import AutoTokenizer

    from tunelab.tasks.language_model import LanguageModelTask

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    tokenizer.eos_token = tokenizer.pad_token  # as in SmolLM2, where pad and EOS are one id
    collate = LanguageModelTask("causal_lm", masked=False).collator(tokenizer)
    eos = tokenizer.eos_token_id
    batch = collate([{"input_ids": [5, 6, eos, 7], "attention_mask": [1, 1, 1, 1]}])
    assert batch["labels"].tolist() == [[5, 6, eos, 7]]
