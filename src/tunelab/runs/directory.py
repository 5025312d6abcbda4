"""`RunDir`: the one reader of a run directory (or of an export, which has the same layout).

Layout: `config.yaml` (the settings, as run), `run_card.json` (what ran, where, its status, split
hashes), `metrics.json`, `model/` (weights or an adapter, the tokenizer, labels.json), `checkpoint-*`
(each completed by a `tunelab_checkpoint.json` record), `export.json` for an export. Every module
that reads a run goes through this class, so a broken or foreign directory gets one set of answers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from tunelab.config import RunConfig, read_yaml
from tunelab.errors import RunDirError
from tunelab.io import read_json
from tunelab.runs.card import split_sha256
from tunelab.runs.place import CARD, is_tunelab_run, resume_checkpoint, stale_status

if TYPE_CHECKING:
    import pandas as pd

    from tunelab.data import PreparedData

CONFIG = "config.yaml"
METRICS = "metrics.json"
MODEL = "model"
EXPORT = "export.json"
WHERE = "Pass the directory `tunelab train` printed (or a `tunelab export`)."


class RunDir:
    """A run directory on disk; nothing is read until asked for."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __str__(self) -> str:
        return str(self.path)

    @property
    def model_dir(self) -> Path:
        return self.path / MODEL

    def is_tunelab_run(self) -> bool:
        return is_tunelab_run(self.path)

    def has_config(self) -> bool:
        return (self.path / CONFIG).is_file()

    def has_model(self) -> bool:
        return any((self.model_dir / f).is_file() for f in ("config.json", "adapter_config.json"))

    def card(self) -> dict[str, Any]:
        """run_card.json; a directory without a readable one is not a run (one line)."""
        card = read_json(self.path / CARD)
        if card is None:
            raise RunDirError(
                f"{self.path} has no run_card.json (or an unreadable one), so it is not a tunelab run directory. {WHERE}"
            )
        return card

    def card_or_empty(self) -> dict[str, Any]:
        return read_json(self.path / CARD) or {}

    def metrics(self) -> dict[str, Any]:
        return read_json(self.path / METRICS) or {}

    def export_record(self) -> dict[str, Any] | None:
        return read_json(self.path / EXPORT)

    def task(self) -> str:
        return str(self.card_or_empty().get("task", "classification"))

    def status(self) -> str | None:
        """The card's status, 'interrupted' for a run whose process died while it said running."""
        card = self.card_or_empty()
        return stale_status(card) or card.get("status")

    def config(self) -> RunConfig:
        """config.yaml, schema only: a finished run must not need its data or base model anymore."""
        if not self.has_config():
            raise RunDirError(
                f"{self.path} is not a tunelab run directory (no config.yaml). Pass the directory `tunelab train` printed."
            )
        try:
            return RunConfig.model_validate(read_yaml(self.path / CONFIG))
        except ValidationError as exc:
            raise RunDirError(
                f"{self.path}/config.yaml is not a valid run config ({exc.error_count()} problems). Re-run training."
            ) from None

    def require_model(self) -> Path:
        """model/, or one line saying the run has none (and its status, when it has a card)."""
        if not self.has_model():
            card = read_json(self.path / CARD)
            status = f" (run status: {stale_status(card) or card.get('status')})" if card else ""
            raise RunDirError(
                f"{self.path} has no trained model in model/{status}. Pass the directory of a finished `tunelab train` run."
            )
        return self.model_dir

    def split_hashes(self) -> dict[str, str]:
        return dict(self.card_or_empty().get("split_sha256") or {})

    def check_same_split(self, data: PreparedData) -> None:
        """The test split rebuilt from the config must be the one the run was scored on."""
        recorded = self.split_hashes().get("test")
        if recorded and recorded != split_sha256(data.splits["test"]):
            raise RunDirError(
                f"{self.path}: the data files changed since this run, so its test split cannot be rebuilt. "
                "Pass the labelled file to score with --data."
            )

    def test_split(self) -> pd.DataFrame:
        """The run's own test split, rebuilt from its config; refused if its data files changed."""
        from tunelab.tasks import task_for

        cfg = self.config()
        data = task_for(cfg).prepare_data(cfg)
        self.check_same_split(data)
        return data.splits["test"]

    def require_labels(self, command: str) -> None:
        """`tunelab predict`/`evaluate` need a run that answers with labels (a classifier)."""
        from tunelab.tasks import task_spec

        task = self.config().task.type
        if task_spec(task).output != "labels":
            raise RunDirError(
                f"{self.path} is a {task} run; `tunelab {command}` serves classification runs. "
                "Its perplexities (and generation scores) are in metrics.json; `tunelab generate` writes text with it."
            )

    def latest_checkpoint(self) -> Path:
        return resume_checkpoint(self.path)

    def write_card(self, card: dict[str, Any]) -> None:
        from tunelab.io import atomic_write_json

        atomic_write_json(self.path / CARD, card)

    def previous_card(self) -> dict[str, Any]:
        """The card of a run being resumed (it must exist: the run was claimed as resumable)."""
        return json.loads((self.path / CARD).read_text(encoding="utf-8"))


__all__ = ["CARD", "CONFIG", "EXPORT", "METRICS", "MODEL", "RunDir"]
