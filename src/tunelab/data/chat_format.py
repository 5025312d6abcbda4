"""Prompt templates and response-only labels for instruction tuning.

One template renders a conversation for training and, saved with the tokenizer, for inference:
the two can only drift apart if someone edits the saved tokenizer, which `check_saved_template`
catches. Labels come from character spans: each assistant turn is the text between the prompt
rendered up to it (with the generation prompt) and the conversation rendered through it, so
the model learns exactly what it will be asked to write, end-of-turn marker included.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transformers import PreTrainedTokenizerBase

from tunelab.errors import ConfigError, RunDirError
from tunelab.io import atomic_write_json

Messages = list[dict[str, str]]

NAMED_TEMPLATES = {
    "chatml": (
        "{% for message in messages %}"
        "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
        "{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
    ),
    "alpaca": (
        "{% if bos_token %}{{ bos_token }}{% endif %}"
        "{% for message in messages %}"
        "{% if message['role'] == 'system' %}{{ message['content'] + '\\n\\n' }}"
        "{% elif message['role'] == 'user' %}{{ '### Instruction:\\n' + message['content'] + '\\n\\n' }}"
        "{% else %}{{ '### Response:\\n' + message['content'] + eos_token + '\\n\\n' }}{% endif %}"
        "{% endfor %}"
        "{% if add_generation_prompt %}{{ '### Response:\\n' }}{% endif %}"
    ),
}
PROMPT_FILE = "tunelab_prompt.json"  # saved with the model: the template and a rendered probe


def choose_template(tokenizer: PreTrainedTokenizerBase, choice: str) -> str:
    """Install the chosen template on the tokenizer (it is saved with it); returns its name."""
    own = getattr(tokenizer, "chat_template", None)
    if choice in ("auto", "tokenizer"):
        if own:
            return "tokenizer"
        if choice == "tokenizer":
            raise ConfigError(
                "task.template=tokenizer, but this tokenizer has no chat template. "
                f"Set task.template to one of: {', '.join(NAMED_TEMPLATES)}."
            )
        choice = "chatml"
    if choice not in NAMED_TEMPLATES:
        raise ConfigError(
            f"task.template '{choice}' is unknown. Use auto, tokenizer or one of: {', '.join(NAMED_TEMPLATES)}."
        )
    tokenizer.chat_template = NAMED_TEMPLATES[choice]
    return choice


def render(tokenizer: PreTrainedTokenizerBase, messages: Messages, prompt: bool = False) -> str:
    """The conversation as text; `prompt=True` ends with the cue for the assistant's answer."""
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=prompt)
    return str(text)


def prompt_messages(messages: Messages) -> Messages:
    """Everything before the final answer: what the model is given at inference."""
    return messages[:-1]


@dataclass
class Encoded:
    input_ids: list[int]
    labels: list[int]
    truncated: bool
    eos_in_labels: bool


def response_spans(tokenizer: PreTrainedTokenizerBase, messages: Messages) -> list[tuple[int, int]]:
    """Character spans of every assistant turn in render(messages)."""
    full = render(tokenizer, messages)
    spans = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        before = render(tokenizer, messages[:i], prompt=True)
        through = render(tokenizer, messages[: i + 1])
        if not through.startswith(before) or not full.startswith(through):
            raise ConfigError(
                "the chat template does not render a conversation as a prefix of its continuation, so the "
                "prompt cannot be masked from the labels. Set task.template to chatml or alpaca."
            )
        spans.append((len(before), len(through)))
    return spans


def encode(tokenizer: PreTrainedTokenizerBase, messages: Messages, max_length: int) -> Encoded:
    """Token ids and labels: -100 on prompt tokens, the answer's ids (and EOS) on response tokens."""
    text = render(tokenizer, messages)
    spans = response_spans(tokenizer, messages)
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = list(encoded["input_ids"])
    labels = [
        token if any(start <= begin < end for start, end in spans) else -100
        for token, (begin, _) in zip(ids, encoded["offset_mapping"], strict=True)
    ]
    eos = tokenizer.eos_token_id
    if eos is not None and eos not in [t for t in labels if t != -100]:
        ids.append(
            eos
        )  # the template's turn end is not EOS: append it, so generation learns to stop
        labels.append(eos)
    truncated = len(ids) > max_length
    ids, labels = ids[:max_length], labels[:max_length]
    return Encoded(ids, labels, truncated, eos is not None and eos in labels)


def template_record(
    tokenizer: PreTrainedTokenizerBase, name: str, probe: Messages
) -> dict[str, Any]:
    template = str(getattr(tokenizer, "chat_template", "") or "")
    return {
        "template": name,
        "template_sha256": hashlib.sha256(template.encode()).hexdigest(),
        "probe_messages": prompt_messages(probe),
        "probe_prompt": render(tokenizer, prompt_messages(probe), prompt=True),
    }


def save_template_record(model_dir: Path, record: dict[str, Any]) -> None:
    atomic_write_json(model_dir / PROMPT_FILE, record)


def check_saved_template(model_dir: Path, tokenizer: PreTrainedTokenizerBase) -> dict[str, Any]:
    """Fail when the saved tokenizer renders prompts differently from the way training did."""
    path = model_dir / PROMPT_FILE
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        raise RunDirError(
            f"{model_dir} has no readable {PROMPT_FILE}, so the training prompt format is unknown. "
            "Point at the model/ of a tunelab instruction run."
        ) from None
    if not getattr(tokenizer, "chat_template", None):
        raise RunDirError(
            f"the tokenizer saved in {model_dir} lost its chat template; training used '{record['template']}'. "
            "Restore tokenizer_config.json / chat_template.jinja from the run."
        )
    rendered = render(tokenizer, record["probe_messages"], prompt=True)
    if rendered != record["probe_prompt"]:
        raise RunDirError(
            f"the chat template saved in {model_dir} renders prompts differently from the one used in training "
            f"('{record['template']}'): inference would not match training. Restore the run's tokenizer files."
        )
    return record
