"""Data preparation inside runs: the data report in every run directory, class weights, inspect CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import tunelab
from tunelab.config import DataConfig
from tunelab.data import prepare_classification
from tunelab.data.inspect import build_report, render_html
from tunelab.workflows.check import build_checked as build_config

TUNELAB = str(Path(sys.executable).with_name("tunelab"))


def test_every_run_directory_holds_the_data_report(tiny_config) -> None:
    result = tunelab.train(tiny_config)
    report = json.loads((result.run_dir / "data_report.json").read_text())
    assert report["splits"]["train"]["rows"] == 192
    assert report["files"][tiny_config.data.train_file]["rows_in"] == 240
    assert (
        "token_lengths" not in report["splits"]["train"]["lengths"]
    )  # per-row data stays out of JSON
    assert report["splits"]["test"]["lengths"]["tokens"]["max"] <= 7  # 5 words + [CLS] + [SEP]
    page = (result.run_dir / "data_report.html").read_text()
    for section in (
        'id="splits"',
        'id="warnings"',
        'id="plots"',
        'id="leakage"',
        "data:image/png;base64,",
    ):
        assert section in page


def test_class_weights_change_the_loss_and_still_learn(
    tiny_config, tmp_path: Path, toy_rows
) -> None:
    skewed = tmp_path / "skewed.csv"
    frame = toy_rows(400, seed=3)
    frame = pd.concat([frame[frame["label"] == "pos"].head(60), frame[frame["label"] == "neg"]])
    frame.to_csv(skewed, index=False)
    runs = {}
    for weights in ("none", "auto"):
        raw = tiny_config.to_dict()
        raw["data"]["train_file"] = str(skewed)
        raw["data"]["imbalance"] = {"class_weights": weights}
        raw["output"]["name"] = f"weights-{weights}"
        runs[weights] = tunelab.train(build_config(raw))
    curve_none = runs["none"].metrics["training"]["loss_curve"]
    curve_auto = runs["auto"].metrics["training"]["loss_curve"]
    assert curve_none[0][1] != pytest.approx(curve_auto[0][1], abs=1e-4)
    assert curve_auto[-1][1] < curve_auto[0][1]
    imbalance = json.loads((runs["auto"].run_dir / "data_report.json").read_text())["imbalance"]
    assert imbalance["class_weights"] == "auto" and imbalance["imbalance_ratio"] > 3


def test_inspect_report_warns_about_imbalance_and_leakage(tmp_path: Path) -> None:
    train = tmp_path / "train.csv"
    test = tmp_path / "test.csv"
    texts = [f"sample text number {i} about things" for i in range(100)]
    pd.DataFrame({"text": texts, "label": ["a"] * 90 + ["b"] * 10}).to_csv(train, index=False)
    pd.DataFrame(
        {
            "text": [*texts[:3], "a brand new sentence here", "another unseen one"],
            "label": ["a", "a", "a", "b", "a"],
        }
    ).to_csv(test, index=False)
    data = prepare_classification(DataConfig(train_file=str(train), test_file=str(test)), seed=0)
    report = build_report(data, None, 128)
    assert report["leakage"]["test"]["exact"] == 3
    assert any("imbalanced" in w for w in report["warnings"])
    assert any("copies of train rows" in w for w in report["warnings"])
    assert "tokens" not in report["splits"]["train"]["lengths"]  # no tokenizer: words only
    page = render_html(report)
    assert "sample text number 0" in page  # the leaked examples are listed
    assert np.isclose(sum(report["splits"]["train"]["label_shares"].values()), 1.0)


def test_data_inspect_cli_on_a_file(tmp_path: Path, tiny_bert_dir: Path, toy_csv: Path) -> None:
    out = tmp_path / "report"
    result = subprocess.run(
        [
            TUNELAB,
            "data",
            "inspect",
            str(toy_csv),
            f"model.name={tiny_bert_dir}",
            "data.max_length=64",  # the tiny model's position limit; the default 128 is refused
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "240 rows (neg 120 (50.0%), pos 120 (50.0%))" in result.stdout
    assert "suggested max_length" in result.stdout
    saved = json.loads((out / "data_report.json").read_text())
    assert saved["splits"]["validation"]["origin"] == "carved from train"
    assert (out / "data_report.html").is_file()
