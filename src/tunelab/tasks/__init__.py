"""Tasks: each bundles data preparation, model head, tokenization, collator and metrics.

A task is registered by name in TASKS; `task.type` in the config picks one, and `task_for(cfg)`
gives the task object for one run: causal_lm with instruction or chat data is instruction
tuning, with plain text continued pre-training.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tunelab.registry import Registry
from tunelab.tasks.base import Task

if TYPE_CHECKING:
    from tunelab.config import RunConfig

TASKS: Registry[Task] = Registry("task", "task.type")

from tunelab.tasks.classification import ClassificationTask  # noqa: E402
from tunelab.tasks.instruction import InstructionTask  # noqa: E402
from tunelab.tasks.language_model import LanguageModelTask  # noqa: E402
from tunelab.tasks.seq2seq import Seq2SeqTask  # noqa: E402

TASKS.register("classification")(ClassificationTask())
TASKS.register("seq2seq")(Seq2SeqTask())
TASKS.register("causal_lm")(LanguageModelTask("causal_lm", masked=False))
TASKS.register("masked_lm")(LanguageModelTask("masked_lm", masked=True))


def task_for(cfg: RunConfig) -> Task:
    """The task object that runs `cfg` (bound to it where the task needs run settings)."""
    if cfg.task.type == "causal_lm":
        from tunelab.data.pairs import causal_format

        kind = causal_format(cfg)
        if kind != "text":
            return InstructionTask(cfg, kind)
    return TASKS.get(cfg.task.type).for_run(cfg)


__all__ = [
    "TASKS",
    "ClassificationTask",
    "InstructionTask",
    "LanguageModelTask",
    "Seq2SeqTask",
    "Task",
    "task_for",
]
