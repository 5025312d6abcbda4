"""Text generation from a finished generative run: `tunelab generate` and, later, the server.

The prompt is laid out exactly as in training: the source prefix for seq2seq, the saved chat
template (checked against the training rendering) for instruction runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tunelab.config import ModelConfig, RunConfig
from tunelab.errors import RunDirError
from tunelab.generation import generate, hf_generation_config
from tunelab.inference import load_run_model
from tunelab.io import read_json
from tunelab.models import load_tokenizer
from tunelab.tasks import chat_format
from tunelab.training.precision import resolve_precision


class Generator:
    def __init__(
        self, model: Any, tokenizer: Any, cfg: RunConfig, chat: bool, precision: str
    ) -> None:
        self.model, self.tokenizer, self.cfg = model, tokenizer, cfg
        self.chat = chat
        self.precision = precision

    @classmethod
    def from_run_dir(cls, run_dir: str | Path, cfg: RunConfig) -> Generator:
        run_dir = Path(run_dir)
        model_dir = run_dir / "model"
        card = read_json(run_dir / "run_card.json") or {}
        task = card.get("task")
        chat = (model_dir / chat_format.PROMPT_FILE).is_file()
        if task not in ("seq2seq", "causal_lm") or (task == "causal_lm" and not chat):
            raise RunDirError(
                f"{run_dir} is a {task} run without a generation prompt format; `tunelab generate` serves "
                "seq2seq and instruction-tuned causal_lm runs."
            )
        tokenizer = load_tokenizer(model_dir, ModelConfig(name=str(model_dir)))
        if chat:
            chat_format.check_saved_template(model_dir, tokenizer)
        model = load_run_model(run_dir).eval()
        precision = resolve_precision("auto") if card.get("precision") == "bf16" else "fp32"
        return cls(model, tokenizer, cfg, chat, precision)

    def prompt(self, text: str) -> str:
        """A user's text laid out as the model saw prompts in training."""
        if not self.chat:
            return self.cfg.task.source_prefix + text
        messages = [{"role": "user", "content": text}]
        if self.cfg.task.system_prompt:
            messages.insert(0, {"role": "system", "content": self.cfg.task.system_prompt})
        return chat_format.render(self.tokenizer, messages, prompt=True)

    def generate(
        self, texts: list[str], batch_size: int = 8, max_new_tokens: int | None = None
    ) -> list[str]:
        settings = self.cfg.task.generation
        if max_new_tokens is not None:
            settings = settings.model_copy(update={"max_new_tokens": max_new_tokens})
        default = self.cfg.task.max_target_length if not self.chat else 128
        config = hf_generation_config(settings, self.tokenizer, default)
        return generate(
            self.model,
            self.tokenizer,
            [self.prompt(t) for t in texts],
            config,
            max_input_length=self.cfg.data.max_length,
            batch_size=batch_size,
            precision=self.precision,
            add_special_tokens=not self.chat,
        )
