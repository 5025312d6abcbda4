"""`tunelab evaluate`: score a finished classification run on its own test split or on another
labelled file; the report is kept in the run's evaluations/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tunelab.data import load_labelled_file
from tunelab.data.load import EVALUATE, check_data_file
from tunelab.errors import ConfigError
from tunelab.io import atomic_write_json
from tunelab.runs import RunDir, load_predictor
from tunelab.tasks.classification import score_split


def evaluate(
    run_dir: str | Path,
    data_file: str | Path | None = None,
    text_column: str | None = None,
    label_column: str | None = None,
) -> dict[str, Any]:
    """Score a finished run on its own test split, or on another labelled file (`data_file`).

    `text_column`/`label_column` name the columns of `data_file` (else the run's settings, or
    auto-detection by the common names); its problems advise --text-column/--label-column.
    """
    run = RunDir(run_dir)
    run_dir = run.path
    cfg = run.config()
    run.require_labels("evaluate")
    if data_file is not None:
        check_data_file(data_file, what="--data file", advice=EVALUATE)
    elif text_column is not None or label_column is not None:
        raise ConfigError("--text-column and --label-column go with --data FILE.")
    predictor = load_predictor(run_dir, cfg.train.eval_batch_size)
    if data_file is None:
        frame, name = run.test_split(), "test"
    else:
        columns = {
            k: v
            for k, v in (("text_column", text_column), ("label_column", label_column))
            if v is not None
        }
        frame, name = (
            load_labelled_file(
                data_file, cfg.data.model_copy(update=columns), predictor.labels, EVALUATE
            ),
            Path(data_file).stem,
        )
    report = score_split(predictor, frame)
    report["data"] = str(data_file) if data_file else "the run's test split"
    atomic_write_json(run_dir / "evaluations" / f"{name}.json", report)
    return report


__all__ = ["evaluate"]
