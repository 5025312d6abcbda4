"""Tasks: each bundles data preparation, model head, tokenization, collator and metrics.

A task is registered by name in TASKS; `task.type` in the config picks one.
"""

from __future__ import annotations

from tunelab.registry import Registry
from tunelab.tasks.base import Task

TASKS: Registry[Task] = Registry("task", "task.type")

from tunelab.tasks.classification import ClassificationTask  # noqa: E402
from tunelab.tasks.language_model import LanguageModelTask  # noqa: E402

TASKS.register("classification")(ClassificationTask())
TASKS.register("masked_lm")(LanguageModelTask("masked_lm", masked=True))
TASKS.register("causal_lm")(LanguageModelTask("causal_lm", masked=False))

__all__ = ["TASKS", "ClassificationTask", "LanguageModelTask", "Task"]
