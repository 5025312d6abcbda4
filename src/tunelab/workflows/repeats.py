"""k-fold cross-validation and multi-seed repeats: how much a result moves with the data split
and with the seed, before anyone believes a difference between two runs.

Both run the ordinary `train` once per fold or seed, so every fold is a complete run directory
(report included). Cross-validation prepares the data once (cleaning, dedup), keeps the test
split aside, and rotates the validation fold through train + validation with scikit-learn's
StratifiedKFold (StratifiedGroupKFold when data.group_column is set).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

from tunelab.config import RunConfig
from tunelab.console import say
from tunelab.errors import ConfigError, DataError
from tunelab.io import atomic_write_json, write_table
from tunelab.runs import load_predictor
from tunelab.tasks import TASKS, task_for, task_spec
from tunelab.workflows.check import check
from tunelab.workflows.train import train

SUMMARY_METRICS = ("accuracy", "macro_f1", "weighted_f1")


def cross_validate(cfg: RunConfig, folds: int) -> dict[str, Any]:
    """Train one run per fold; returns per-fold metrics, mean ± std and the out-of-fold file."""
    if folds < 2:
        raise ConfigError(f"--folds must be at least 2; got {folds}.")
    if cfg.task.type in TASKS and task_spec(cfg.task.type).output != "labels":
        raise ConfigError(
            f"cross-validation serves classification runs; this config is {cfg.task.type}."
        )
    cfg = check(cfg)
    data = task_for(cfg).prepare_data(cfg)
    if getattr(data, "train_table", None) is not None:
        raise ConfigError(
            "--folds writes every fold's rows as files and trains one run per fold; this train file is "
            "bigger than memory (data.memory_mapped). Train once without --folds."
        )
    names = data.labels.names
    pool = pd.concat([data.splits["train"], data.splits["validation"]], ignore_index=True)
    pool = pool.assign(label_name=[names[i] for i in pool["label"]])
    smallest = int(pool["label"].value_counts().min())
    if smallest < folds:
        raise DataError(
            f"the rarest class has {smallest} rows, fewer than --folds {folds}: a stratified fold would miss it. "
            "Lower --folds or add rows."
        )
    name = cfg.output.name or "cv"
    root = Path(cfg.output.dir) / f"{name}-cv"
    files = root / "folds"
    test_file = files / "test.jsonl"
    _write_split(
        data.splits["test"].assign(label_name=[names[i] for i in data.splits["test"]["label"]]),
        test_file,
    )

    grouped = "group" in pool.columns
    splitter = (
        StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=cfg.train.seed)
        if grouped
        else StratifiedKFold(n_splits=folds, shuffle=True, random_state=cfg.train.seed)
    )
    split_args = (
        (pool["text"], pool["label"], pool["group"]) if grouped else (pool["text"], pool["label"])
    )
    results: list[dict[str, Any]] = []
    out_of_fold: list[pd.DataFrame] = []
    for number, (train_index, held_index) in enumerate(splitter.split(*split_args), start=1):
        say(
            f"fold {number}/{folds}: {len(train_index)} train rows, {len(held_index)} validation rows"
        )
        fold_train, fold_held = pool.iloc[train_index], pool.iloc[held_index]
        _write_split(fold_train, files / f"fold-{number}-train.jsonl")
        _write_split(fold_held, files / f"fold-{number}-validation.jsonl")
        fold_cfg = _fold_config(cfg, files, number, test_file, root, grouped)
        result = train(fold_cfg)
        predictor = load_predictor(result.run_dir, cfg.train.eval_batch_size)
        ids, probabilities = predictor.predict(fold_held["text"].tolist())
        out_of_fold.append(
            pd.DataFrame(
                {
                    "fold": number,
                    "row": fold_held["row"].to_numpy(),
                    "text": fold_held["text"].to_numpy(),
                    "label": fold_held["label_name"].to_numpy(),
                    "predicted": [predictor.labels.names[i] for i in ids],
                    "probability": probabilities.max(-1),
                }
            )
        )
        results.append(
            {
                "fold": number,
                "run_dir": str(result.run_dir),
                "train_rows": len(fold_train),
                "validation_rows": len(fold_held),
                "validation": {k: result.metrics["validation"][k] for k in SUMMARY_METRICS},
                "test": {k: result.metrics["test"][k] for k in SUMMARY_METRICS},
            }
        )
    oof = pd.concat(out_of_fold, ignore_index=True)
    write_table(oof, root / "oof_predictions.csv")
    summary = {
        "folds": folds,
        "grouped": grouped,
        "per_fold": results,
        "validation": summarize([r["validation"] for r in results]),
        "test": summarize([r["test"] for r in results]),
        "out_of_fold_accuracy": float((oof["label"] == oof["predicted"]).mean()),
        "out_of_fold_file": str(root / "oof_predictions.csv"),
    }
    atomic_write_json(root / "cv.json", summary)
    return summary


def repeat_seeds(cfg: RunConfig, seeds: int) -> dict[str, Any]:
    """The same run with seeds seed, seed+1, …: mean ± std and the spread of each test metric."""

    if seeds < 2:
        raise ConfigError(f"--seeds must be at least 2 to show a spread; got {seeds}.")
    name = cfg.output.name or cfg.task.type
    root = Path(cfg.output.dir) / f"{name}-seeds"
    runs: list[dict[str, Any]] = []
    for offset in range(seeds):
        seed = cfg.train.seed + offset
        say(f"seed {seed} ({offset + 1}/{seeds})")
        run_cfg = cfg.model_copy(
            update={
                "train": cfg.train.model_copy(update={"seed": seed}),
                "output": cfg.output.model_copy(update={"dir": str(root), "name": f"seed-{seed}"}),
            }
        )
        result = train(run_cfg)
        runs.append(
            {
                "seed": seed,
                "run_dir": str(result.run_dir),
                "test": _headline(result.metrics["test"]),
            }
        )
    summary = {
        "seeds": [r["seed"] for r in runs],
        "per_seed": runs,
        "test": summarize([r["test"] for r in runs]),
    }
    atomic_write_json(root / "seeds.json", summary)
    return summary


def summarize(rows: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """mean, std (n-1), min, max per metric."""
    out = {}
    for key in rows[0]:
        values = np.array([r[key] for r in rows], dtype=float)
        out[key] = {
            "mean": float(values.mean()),
            "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
            "min": float(values.min()),
            "max": float(values.max()),
        }
    return out


def _headline(test: dict[str, Any]) -> dict[str, float]:
    if "accuracy" in test:
        return {k: test[k] for k in SUMMARY_METRICS}
    headline = {"perplexity": test["perplexity_after"]}
    if test.get("generation"):
        headline.update({k: test["generation"][k] for k in ("rougeL", "bleu", "exact_match")})
    return headline


def _write_split(frame: pd.DataFrame, path: Path) -> None:
    columns = {"text": frame["text"].to_numpy(), "label": frame["label_name"].to_numpy()}
    if "group" in frame.columns:
        columns["group"] = frame["group"].to_numpy()
    write_table(pd.DataFrame(columns), path)


def _fold_config(
    cfg: RunConfig, files: Path, number: int, test_file: Path, root: Path, grouped: bool
) -> RunConfig:
    data = cfg.data.model_copy(
        update={
            "train_file": str(files / f"fold-{number}-train.jsonl"),
            "validation_file": str(files / f"fold-{number}-validation.jsonl"),
            "test_file": str(test_file),
            "dataset": None,  # the folds are written as files from whatever source
            "dataset_config": None,
            "dataset_splits": {},
            "revision": None,
            "format": "auto",
            "text_column": "text",
            "label_column": "label",
            "group_column": "group" if grouped else None,
        }
    )
    output = cfg.output.model_copy(
        update={"dir": str(root), "name": f"fold-{number}", "overwrite": True}
    )
    return cfg.model_copy(update={"data": data, "output": output})
