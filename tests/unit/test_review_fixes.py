"""Regressions found in review: finished runs stand alone, bad overrides are one line, limits are checked early."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

import tunelab
from tunelab.errors import ConfigError
from tunelab.io import write_table
from tunelab.workflows.check import build_checked as build_config
from tunelab.workflows.check import load_checked as load_config


def test_a_finished_run_predicts_after_its_training_file_is_gone(
    tiny_config, tmp_path: Path
) -> None:
    result = tunelab.train(tiny_config)
    Path(tiny_config.data.train_file).unlink()
    out = tunelab.predict(result.run_dir, texts=["superb fun film"])
    assert list(out["label"]) == ["pos"]
    assert tunelab.evaluate(result.run_dir, _labelled(tmp_path))["rows"] == 2


def _labelled(tmp_path: Path) -> Path:
    path = tmp_path / "extra.csv"
    pd.DataFrame({"text": ["love it", "hate it"], "label": ["pos", "neg"]}).to_csv(
        path, index=False
    )
    return path


def test_an_override_that_is_not_yaml_is_one_config_error() -> None:
    with pytest.raises(
        ConfigError, match=r"override 'output.name=\[oops': the value is not valid YAML"
    ):
        load_config(None, ["output.name=[oops"])


def test_max_length_beyond_the_model_is_refused_before_a_run_directory(tiny_config) -> None:
    raw = tiny_config.to_dict()
    raw["data"]["max_length"] = 100  # the tiny BERT has 64 positions
    with pytest.raises(ConfigError, match=r"data\.max_length must be at most 64"):
        tunelab.train(build_config(raw))
    assert not (Path(tiny_config.output.dir) / "tiny").exists()


def test_output_formats_follow_the_suffix(tmp_path: Path) -> None:
    frame = pd.DataFrame({"text": ["a", "b"], "label": ["x", "y"]})
    write_table(frame, tmp_path / "out.tsv")
    assert (tmp_path / "out.tsv").read_text().splitlines()[0] == "text\tlabel"
    write_table(frame, tmp_path / "out.json")
    assert pd.read_json(tmp_path / "out.json").to_dict("records") == frame.to_dict("records")
    with pytest.raises(ConfigError, match=r"use one of \.csv, \.tsv, \.jsonl, \.json"):
        write_table(frame, tmp_path / "out.parquet")


def test_artifacts_are_readable_like_any_file(tmp_path: Path) -> None:
    from tunelab.io import atomic_write_text

    mask = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(mask)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644


def test_causal_lm_labels_keep_eos_even_when_it_is_the_pad_token(tiny_bert_dir: Path) -> None:
    from transformers import AutoTokenizer

    from tunelab.tasks.language_model import LanguageModelTask

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    tokenizer.eos_token = tokenizer.pad_token  # as in SmolLM2, where pad and EOS are one id
    collate = LanguageModelTask("causal_lm", masked=False).collator(tokenizer)
    eos = tokenizer.eos_token_id
    batch = collate([{"input_ids": [5, 6, eos, 7], "attention_mask": [1, 1, 1, 1]}])
    assert batch["labels"].tolist() == [[5, 6, eos, 7]]


def test_group_carving_above_half_takes_that_share_of_groups() -> None:
    from tunelab.data.split import carve

    frame = pd.DataFrame(
        {
            "text": [f"t{i}" for i in range(200)],
            "label": [i % 2 for i in range(200)],
            "group": [i // 10 for i in range(200)],
        }
    )
    rest, carved = carve(frame, 0.75, seed=0, name="test")
    assert set(rest["group"]).isdisjoint(carved["group"])
    assert len(rest) + len(carved) == 200
    assert 0.65 <= len(carved) / 200 <= 0.85  # 3 of 4 stratified group folds


def test_decoder_without_pad_id_in_its_config_still_classifies(
    tiny_config, tmp_path: Path, tiny_llama_builder
) -> None:
    model_dir = tiny_llama_builder(tmp_path / "no-pad-llama", pad_token_id=None)
    raw = tiny_config.to_dict()
    raw["model"]["name"] = str(model_dir)
    raw["train"]["epochs"] = 1
    raw["output"]["name"] = "no-pad"
    result = tunelab.train(
        build_config(raw)
    )  # batches > 1 need the pad id to find each row's last token
    assert result.metrics["test"]["rows"] == 24
