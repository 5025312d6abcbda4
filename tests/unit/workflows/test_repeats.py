"""k-fold cross-validation (disjoint, stratified, group-aware folds) and multi-seed repeats."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_cli import assert_one_line_error, run, write_config

from tunelab.errors import DataError
from tunelab.workflows.check import build_checked as build_config
from tunelab.workflows.repeats import cross_validate, summarize


def cv_config(tiny_config, **data):
    raw = tiny_config.to_dict()
    raw["train"].update(epochs=1, eval_on_start=False)
    raw["data"].update(data)
    raw["eval"] = {"baselines": False}
    return build_config(raw)


def fold_frames(root: Path, folds: int) -> list[tuple[pd.DataFrame, pd.DataFrame]]:
    return [
        (
            pd.read_json(root / "folds" / f"fold-{k}-train.jsonl", lines=True),
            pd.read_json(root / "folds" / f"fold-{k}-validation.jsonl", lines=True),
        )
        for k in range(1, folds + 1)
    ]


def test_folds_are_disjoint_cover_the_pool_and_keep_label_shares(tiny_config) -> None:
    cfg = cv_config(tiny_config)
    summary = cross_validate(cfg, 3)
    root = Path(cfg.output.dir) / "tiny-cv"
    frames = fold_frames(root, 3)
    held = [set(v["text"]) for _, v in frames]
    assert all(not (a & b) for i, a in enumerate(held) for b in held[i + 1 :])  # disjoint
    pool = set(frames[0][0]["text"]) | held[0]
    assert set().union(*held) == pool  # every pooled row is held out exactly once
    shares = pd.concat([v for _, v in frames])["label"].value_counts(normalize=True)
    for _, validation in frames:
        fold_shares = validation["label"].value_counts(normalize=True)
        assert (fold_shares - shares).abs().max() < 0.05  # stratified
    test = pd.read_json(root / "folds" / "test.jsonl", lines=True)
    assert not (set(test["text"]) & pool)  # the test split stays out of every fold
    oof = pd.read_csv(root / "oof_predictions.csv")
    assert len(oof) == len(pool) and sorted(oof["fold"].unique()) == [1, 2, 3]
    accuracies = [f["validation"]["accuracy"] for f in summary["per_fold"]]
    assert summary["validation"]["accuracy"]["mean"] == pytest.approx(np.mean(accuracies))
    assert summary["validation"]["accuracy"]["std"] == pytest.approx(np.std(accuracies, ddof=1))
    saved = json.loads((root / "cv.json").read_text())
    assert saved["out_of_fold_accuracy"] == pytest.approx((oof["label"] == oof["predicted"]).mean())


def test_with_a_group_column_no_group_is_in_train_and_validation(
    tiny_config, tmp_path: Path, toy_rows
) -> None:
    rows = toy_rows(240).assign(user=[f"u{i % 40}" for i in range(240)])
    path = tmp_path / "grouped.csv"
    rows.to_csv(path, index=False)
    cfg = cv_config(tiny_config, train_file=str(path), group_column="user")
    assert cross_validate(cfg, 3)["grouped"]
    for train, validation in fold_frames(Path(cfg.output.dir) / "tiny-cv", 3):
        assert not (set(train["group"]) & set(validation["group"]))


def test_too_few_rows_of_a_class_for_the_folds_is_one_line(
    tiny_config, tmp_path: Path, toy_rows
) -> None:
    rows = toy_rows(60)
    path = tmp_path / "rare.csv"
    pd.concat(
        [
            rows,
            pd.DataFrame(
                {"text": [f"meh film {w}" for w in ("a", "the", "plot", "is")], "label": "mixed"}
            ),
        ]
    ).to_csv(path, index=False)
    cfg = cv_config(tiny_config, train_file=str(path))
    with pytest.raises(DataError, match="fewer than --folds 10"):
        cross_validate(cfg, 10)


def test_seeds_repeat_the_run_and_report_the_spread(tiny_config, tmp_path: Path) -> None:
    raw = tiny_config.to_dict()
    raw["train"].update(epochs=1, eval_on_start=False)
    raw["eval"] = {"baselines": False}
    config = write_config(tmp_path / "run.yaml", raw)
    done = run("train", str(config), "--seeds", "2")
    assert done.returncode == 0, done.stderr
    summary = json.loads((Path(raw["output"]["dir"]) / "tiny-seeds" / "seeds.json").read_text())
    assert summary["seeds"] == [7, 8]
    accuracies = [r["test"]["accuracy"] for r in summary["per_seed"]]
    assert summary["test"]["accuracy"]["max"] == max(accuracies)
    assert "test metrics over 2 seeds" in done.stdout
    assert_one_line_error(run("cv", str(config), "--folds", "1"), "--folds must be at least 2")


def test_summarize_uses_the_sample_standard_deviation() -> None:
    stats = summarize([{"a": 1.0}, {"a": 2.0}, {"a": 4.0}])["a"]
    assert stats["mean"] == pytest.approx(7 / 3)
    assert stats["std"] == pytest.approx(np.std([1, 2, 4], ddof=1))
    assert (stats["min"], stats["max"]) == (1.0, 4.0)
