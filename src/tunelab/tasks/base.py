"""The shape every task has (`Task`, see ARCHITECTURE.md rule 2), the bundle it is registered as
(`TaskSpec`), and the registry (`TASKS`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from tunelab.registry import Registry

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


def _no_problems(cfg: RunConfig) -> list[str]:
    return []


@dataclass(frozen=True)
class TaskSpec:
    """Everything tunelab knows about a task, registered once (`TASKS.add(spec.name, spec)`).

    - `factory(cfg)`: the Task object that runs `cfg` (it may pick a variant from the data:
      causal_lm with instruction or chat data is instruction tuning, with plain text
      continued pre-training);
    - `model_class`: the transformers Auto class of its model (how a run of it is reloaded);
    - `output`: what a trained run answers with: "labels" (predict/evaluate/serve /predict),
      "text" (generate/serve completions), or None (its numbers are in metrics.json);
    - `needs_prompt_format`: a run answers with text only when it saved a prompt format
      (a chat template), as instruction-tuned causal_lm runs do;
    - `lm_head`: its model ends in a head over the vocabulary (sized in memory estimates);
    - `metric_names(cfg)`: the validation metrics it reports (train.best_metric, search.metric);
    - `refused_methods`: methods that cannot train it, each with the reason and the fix;
    - `checks(cfg)`: problems with a config that only this task can see.
    """

    name: str
    factory: Callable[[RunConfig], Task]
    model_class: str
    output: Literal["labels", "text"] | None = None
    needs_prompt_format: bool = False
    lm_head: bool = True
    refused_methods: dict[str, str] = field(default_factory=dict)
    checks: Callable[[RunConfig], list[str]] = _no_problems

    def metric_names(self, cfg: RunConfig) -> tuple[str, ...]:
        return self.factory(cfg).metric_names

    def answers_with(self, has_prompt_format: bool) -> str | None:
        """'labels', 'text' or None for a finished run of this task."""
        if self.output == "text" and self.needs_prompt_format and not has_prompt_format:
            return None
        return self.output

    def auto_class(self) -> Any:
        import transformers

        return getattr(transformers, self.model_class)


TASKS: Registry[TaskSpec] = Registry("task", "task.type")


def task_spec(name: str) -> TaskSpec:
    return TASKS.get(name)


def task_for(cfg: RunConfig) -> Task:
    """The task object that runs `cfg` (bound to it where the task needs run settings)."""
    return TASKS.get(cfg.task.type).factory(cfg)


__all__ = ["TASKS", "Task", "TaskSpec", "task_for", "task_spec"]
