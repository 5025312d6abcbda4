"""Regressions found in review: finished runs stand alone, bad overrides are one line, limits are checked early."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

import tunelab
from tunelab.config import build_config, load_config
from tunelab.errors import ConfigError
from tunelab.io import write_table


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
