"""The shape every task has (see ARCHITECTURE.md, rule 2)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from datasets import Dataset
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from tunelab.config import RunConfig
    from tunelab.data import PreparedData


class Task(Protocol):
    name: str
    metric_names: tuple[str, ...]
    groups_by_length: bool  # its datasets carry a `length` column for length-grouped batches

    def prepare_data(self, cfg: RunConfig) -> PreparedData: ...

    def load_model(
        self, model_dir: Path, data: PreparedData, cfg: RunConfig
    ) -> PreTrainedModel: ...

    def for_run(self, cfg: RunConfig) -> Task: ...

    def tokenize(
        self, tokenizer: PreTrainedTokenizerBase, data: PreparedData, cfg: RunConfig
    ) -> dict[str, Dataset]: ...

    def best_metric(self, cfg: RunConfig) -> str: ...

    def greater_is_better(self, metric: str) -> bool: ...

    def before_training(self, session: Any) -> dict[str, Any]: ...

    def save_extras(self, model_dir: Path, data: PreparedData) -> None: ...

    def final_metrics(
        self, session: Any, trained: PreTrainedModel, before: dict[str, Any]
    ) -> dict[str, Any]: ...

    def loss_function(self, data: PreparedData, cfg: RunConfig) -> Any: ...

    def collator(self, tokenizer: PreTrainedTokenizerBase) -> Any: ...

    def compute_metrics(self, eval_pred: Any) -> dict[str, float]: ...
