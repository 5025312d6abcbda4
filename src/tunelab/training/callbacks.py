"""Callbacks: concise progress (a bar on a terminal, plain lines in logs) and a JSONL log."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

_SKIP = {"epoch", "total_flos", "step"}


def format_log(logs: dict[str, Any], state: TrainerState) -> str:
    """'step 50/250 · epoch 0.40 · loss 0.4389 · lr 6.71e-05' style one-liners."""
    head = f"step {state.global_step}/{state.max_steps} · epoch {logs.get('epoch', state.epoch or 0):.2f}"
    parts = []
    for key, value in logs.items():
        if key in _SKIP or not isinstance(value, int | float):
            continue
        if "runtime" in key or "per_second" in key or "preparation_time" in key:
            continue
        name = {"learning_rate": "lr", "train_loss": "mean train loss"}.get(
            key, key.replace("eval_", "val_")
        )
        parts.append(f"{name} {value:.2e}" if name == "lr" else f"{name} {value:.4f}")
    return " · ".join([head, *parts])


class ConciseProgress(TrainerCallback):
    """Replaces the Trainer's dict printing with one readable line per log event."""

    def __init__(self, log_file: Path | None = None) -> None:
        self.show_bar = sys.stderr.isatty()
        self.bar: Any = None
        self.log_file = log_file
        self.quiet = False

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if not state.is_world_process_zero:  # several processes: rank 0 reports for all
            self.show_bar, self.log_file, self.quiet = False, None, True
        if self.show_bar:
            self.bar = tqdm(total=state.max_steps, desc="train", dynamic_ncols=True, leave=False)

    def on_step_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if not logs or self.quiet:
            return
        line = format_log(logs, state)
        if self.bar is not None:
            self.bar.write(line)
        else:
            print(line, flush=True)
        if self.log_file is not None:
            self.log_file.parent.mkdir(parents=True, exist_ok=True)
            with self.log_file.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps({"step": state.global_step, **logs}) + "\n")

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class LogLastStep(TrainerCallback):
    """Log at the last optimizer step too, so the loss curve ends where training ends.

    The Trainer drains the loss since its last log into the run's mean train loss at the end
    without gathering it across processes: with several processes, the steps after the last
    `log_every` multiple counted rank 0's share only. Logged, they are gathered like the rest.
    """

    def on_step_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if state.max_steps and state.global_step >= state.max_steps:
            control.should_log = True
