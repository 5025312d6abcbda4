"""Tasks, one file each, registered in TASKS as a `TaskSpec` bundle.

Owns: for each task, data preparation, the model and its head, tokenization, collator, loss,
metrics and final scoring, plus the facts other layers ask about it (its model class, what a
run answers with, the methods it refuses). `task.type` picks one; `task_for(cfg)` gives the task
object for one run.
May import: inference, evaluation, methods, data, models, config and the base modules. Adding a
task is one file here plus its import below (see CONTRIBUTING.md).
"""

from tunelab.tasks import (  # noqa: F401  (each module registers its spec)
    causal_lm,
    classification,
    instruction,
    language_model,
    seq2seq,
)
from tunelab.tasks.base import TASKS, Task, TaskSpec, task_for, task_spec
from tunelab.tasks.classification import ClassificationTask
from tunelab.tasks.instruction import InstructionTask
from tunelab.tasks.language_model import LanguageModelTask
from tunelab.tasks.seq2seq import Seq2SeqTask

__all__ = [
    "TASKS",
    "ClassificationTask",
    "InstructionTask",
    "LanguageModelTask",
    "Seq2SeqTask",
    "Task",
    "TaskSpec",
    "task_for",
    "task_spec",
]
