"""Optional experiment tracking in MLflow (`output.tracking: mlflow`).

Logged once a run has finished, from the files it wrote: the resolved config as parameters,
every logged training/validation value per step, the final test metrics, and the run card,
metrics and report as artifacts. The default store is a local SQLite file (`<output.dir>/mlflow.db`,
nothing to start; artifacts beside it in `mlartifacts/`); `output.tracking_uri` points at a server instead.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

from tunelab.config import RunConfig
from tunelab.console import say
from tunelab.errors import ConfigError
from tunelab.io import flatten

ARTIFACTS = ("config.yaml", "run_card.json", "metrics.json", "report.html")


def check_tracking(cfg: RunConfig) -> None:
    if cfg.output.tracking == "mlflow" and importlib.util.find_spec("mlflow") is None:
        raise ConfigError(
            "output.tracking=mlflow needs the mlflow package. Install it: pip install 'tunelab[mlflow]'."
        )


def track_run(cfg: RunConfig, run_dir: Path, metrics: dict[str, Any]) -> str | None:
    """Log a finished run to MLflow; returns the MLflow run id (None when tracking is off)."""
    if cfg.output.tracking != "mlflow":
        return None
    import mlflow

    uri = cfg.output.tracking_uri or f"sqlite:///{Path(cfg.output.dir).resolve() / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    if (
        mlflow.get_experiment_by_name(cfg.output.experiment) is None
    ):  # artifacts beside the store, not in the cwd
        artifacts = (Path(cfg.output.dir).resolve() / "mlartifacts").as_uri()
        mlflow.create_experiment(cfg.output.experiment, artifact_location=artifacts)
    mlflow.set_experiment(cfg.output.experiment)
    with mlflow.start_run(run_name=run_dir.name) as run:
        mlflow.log_params(
            {k: str(v)[:500] for k, v in flatten(cfg.to_dict()).items()}
        )  # MLflow caps values
        for entry in _log_entries(run_dir):
            step = int(entry.pop("step", 0))
            values = {
                k: float(v)
                for k, v in entry.items()
                if isinstance(v, (int, float)) and k != "epoch"
            }
            if values:
                mlflow.log_metrics(values, step=step)
        mlflow.log_metrics(_final(metrics))
        for name in ARTIFACTS:
            if (run_dir / name).is_file():
                mlflow.log_artifact(str(run_dir / name))
        say(f"tracked in MLflow: {uri}, experiment {cfg.output.experiment}, run {run.info.run_id}")
        return str(run.info.run_id)


def _final(metrics: dict[str, Any]) -> dict[str, float]:
    """Scalar test metrics (and perplexities, generation scores) as test_<name>."""
    test = metrics.get("test", {})
    flat = {
        f"test_{k}": float(v)
        for k, v in test.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    }
    for key, value in (test.get("generation") or {}).items():
        if isinstance(value, (int, float)):
            flat[f"test_generation_{key}"] = float(value)
    return flat


def _log_entries(run_dir: Path) -> list[dict[str, Any]]:
    log = run_dir / "logs" / "train_log.jsonl"
    if not log.is_file():
        return []
    return [
        json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line.strip()
    ]
