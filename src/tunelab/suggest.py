"""Hints and values in messages: 'did you mean …', and lists and values cut to a readable length.

Every user-facing error is one line; a value or list printed in it is capped here, so a
200-label file or an expanded YAML alias cannot turn the line into a page (or a memory blow-up).
"""

from __future__ import annotations

import difflib
import reprlib
from collections.abc import Iterable, Mapping
from typing import Any

# Names other fine-tuning tools use for settings tunelab spells differently (HF TrainingArguments,
# Keras, PEFT configs). Checked before the fuzzy match: 'learning_rate' is not close to 'lr'.
ALIASES: Mapping[str, str] = {
    "learning_rate": "lr",
    "learningrate": "lr",
    "lr_rate": "lr",
    "num_train_epochs": "epochs",
    "num_epochs": "epochs",
    "n_epochs": "epochs",
    "epoch": "epochs",
    "per_device_train_batch_size": "batch_size",
    "train_batch_size": "batch_size",
    "batchsize": "batch_size",
    "bs": "batch_size",
    "per_device_eval_batch_size": "eval_batch_size",
    "gradient_accumulation_steps": "grad_accum",
    "gradient_accumulation": "grad_accum",
    "accumulation_steps": "grad_accum",
    "lr_scheduler_type": "scheduler",
    "lr_scheduler": "scheduler",
    "warmup": "warmup_ratio",
    "warmup_steps": "warmup_ratio",
    "max_seq_length": "max_length",
    "max_seq_len": "max_length",
    "seq_length": "max_length",
    "max_len": "max_length",
    "logging_steps": "log_every",
    "eval_strategy": "eval_every",
    "evaluation_strategy": "eval_every",
    "metric_for_best_model": "best_metric",
    "early_stopping": "early_stopping_patience",
    "output_dir": "dir",
    "run_name": "name",
    "overwrite_output_dir": "overwrite",
    "model_name_or_path": "name",
    "model_name": "name",
    "resume_from_checkpoint": "resume",
    "fp16": "precision",
    "bf16": "precision",
    "train_path": "train_file",
    "train_data": "train_file",
    "validation_path": "validation_file",
    "eval_file": "validation_file",
    "dev_file": "validation_file",
    "test_path": "test_file",
    "lora_r": "r",
    "rank": "r",
    "lora_alpha": "alpha",
    "lora_dropout": "dropout",
}

MAX_VALUE_CHARS = 80
MAX_LIST_CHARS = 120


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ' Did you mean 'x'?' for the closest choice (or a known alias), or '' when nothing is close."""
    options = list(choices)
    alias = ALIASES.get(str(name).lower().replace("-", "_"))
    if alias is not None and alias in options:
        return f" Did you mean '{alias}'?"
    close = difflib.get_close_matches(str(name), options, n=1, cutoff=0.6)
    return f" Did you mean '{close[0]}'?" if close else ""


_repr = reprlib.Repr()
_repr.maxstring = MAX_VALUE_CHARS
_repr.maxother = MAX_VALUE_CHARS
_repr.maxlist = _repr.maxtuple = _repr.maxset = _repr.maxdict = 6
_repr.maxlevel = 3


def short_repr(value: Any, limit: int = MAX_VALUE_CHARS) -> str:
    """repr(value) cut to about `limit` characters; never walks more than a few levels or items.

    reprlib stops at depth 3 and 6 items per level, so a value with 10^9 nested elements (an
    expanded YAML alias bomb) costs a few dozen steps, not its size.
    """
    text = repr(value[: limit + 1]) if isinstance(value, str) else _repr.repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def short_text(text: Any, limit: int = MAX_VALUE_CHARS) -> str:
    """str(text) on one line (whitespace runs become one space), cut to `limit` characters."""
    flat = " ".join(str(text)[: limit * 4].split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def short_list(items: Iterable[Any], limit: int = MAX_LIST_CHARS, quote: bool = False) -> str:
    """'a, b, c, … 197 more': the items that fit in about `limit` characters, then the count left."""
    values = list(items)
    shown: list[str] = []
    used = 0
    for item in values:
        text = short_repr(item, 40) if quote else str(item)
        if len(text) > 40:
            text = text[:39] + "…"
        if shown and used + len(text) + 2 > limit:
            break
        shown.append(text)
        used += len(text) + 2
    rest = len(values) - len(shown)
    return ", ".join(shown) + (f", … {rest} more" if rest else "")


MAX_PATH_CHARS = 100


def short_path(path: Any, limit: int = MAX_PATH_CHARS) -> str:
    """A path for a message: whole when short, else '…/' and as many trailing parts as fit."""
    text = str(path)
    if len(text) <= limit:
        return text
    parts = text.split("/")
    kept = parts[-1][-(limit - 2) :]
    for part in reversed(parts[:-1]):
        if len(part) + len(kept) + 3 > limit:
            break
        kept = f"{part}/{kept}"
    return f"…/{kept}"
