"""causal_lm: decoder-only language models. With instruction or chat data it is instruction
tuning (`instruction.py`); with plain text, continued pre-training (`language_model.py`)."""

from __future__ import annotations

from tunelab.config import RunConfig
from tunelab.data.pairs import causal_format
from tunelab.tasks.base import TASKS, Task, TaskSpec
from tunelab.tasks.instruction import InstructionTask
from tunelab.tasks.language_model import LanguageModelTask


def task_for_run(cfg: RunConfig) -> Task:
    kind = causal_format(cfg)
    if kind == "text":
        return LanguageModelTask("causal_lm", masked=False)
    return InstructionTask(cfg, kind)


TASKS.add(
    "causal_lm",
    TaskSpec(
        "causal_lm",
        task_for_run,
        "AutoModelForCausalLM",
        output="text",
        needs_prompt_format=True,  # continued pre-training saves no chat template: nothing to prompt
    ),
)
