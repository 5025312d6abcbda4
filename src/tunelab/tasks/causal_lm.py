"""causal_lm: decoder-only language models. With instruction or chat data it is instruction
tuning (`instruction.py`); with plain text, continued pre-training (`language_model.py`)."""

from __future__ import annotations

from tunelab.config import RunConfig
from tunelab.data import chat_format
from tunelab.data.pairs import causal_format
from tunelab.tasks.base import TASKS, Task, TaskSpec
from tunelab.tasks.instruction import InstructionTask
from tunelab.tasks.language_model import LanguageModelTask


def task_for_run(cfg: RunConfig) -> Task:
    kind = causal_format(cfg)
    if kind == "text":
        return LanguageModelTask("causal_lm", masked=False)
    return InstructionTask(cfg, kind)


PROBE = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]


def checks(cfg: RunConfig) -> list[str]:
    """Instruction tuning needs a chat template that masks prompts: checked on the tokenizer alone."""
    if causal_format(cfg) == "text":
        return []
    from tunelab.errors import ConfigError
    from tunelab.models import load_tokenizer, model_dir_for

    tokenizer = load_tokenizer(model_dir_for(cfg.model), cfg.model)
    try:
        chat_format.choose_template(tokenizer, cfg.task.template)
        chat_format.response_spans(tokenizer, PROBE)
    except ConfigError as exc:
        return exc.problems
    return []


TASKS.add(
    "causal_lm",
    TaskSpec(
        "causal_lm",
        task_for_run,
        "AutoModelForCausalLM",
        output="text",
        needs_prompt_format=True,  # continued pre-training saves no chat template: nothing to prompt
        checks=checks,
    ),
)
