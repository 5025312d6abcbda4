"""Text generation from a finished generative run: `tunelab generate` and `tunelab serve`.

The prompt is laid out exactly as in training: the source prefix for seq2seq, the saved chat
template (checked against the training rendering) for instruction runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from transformers import GenerationConfig as HFGenerationConfig
from transformers import StoppingCriteria, StoppingCriteriaList

from tunelab.config import RunConfig
from tunelab.data import chat_format
from tunelab.errors import RunDirError
from tunelab.inference.generation import generate, hf_generation_config
from tunelab.models.precision import autocast


class Generator:
    def __init__(
        self, model: Any, tokenizer: Any, cfg: RunConfig, chat: bool, precision: str
    ) -> None:
        self.model, self.tokenizer, self.cfg = model, tokenizer, cfg
        self.chat = chat
        self.precision = precision

    @property
    def default_max_new_tokens(self) -> int:
        """Tokens generated when neither the request nor `task.generation` says how many."""
        return self.cfg.task.max_target_length if not self.chat else 128

    def prompt(self, text: str) -> str:
        """A user's text laid out as the model saw prompts in training."""
        if not self.chat:
            return self.cfg.task.source_prefix + text
        return self.render_messages([{"role": "user", "content": text}])

    def render_messages(self, messages: list[dict[str, str]]) -> str:
        """A conversation (system/user/assistant turns) as an instruction run's prompt.

        The run's `task.system_prompt` goes first unless the conversation brings its own system
        turn, as in training; the text ends with the cue for the assistant's next answer.
        """
        if not self.chat:
            raise RunDirError(
                "this seq2seq run has no chat template, so it takes one text, not a conversation."
            )
        if self.cfg.task.system_prompt and not any(m["role"] == "system" for m in messages):
            messages = [{"role": "system", "content": self.cfg.task.system_prompt}, *messages]
        return chat_format.render(self.tokenizer, messages, prompt=True)

    def count_tokens(self, text: str, prompt: bool = False) -> int:
        """Tokens in `text`; a prompt is counted as generation encodes it (truncation aside)."""
        special = prompt and not self.chat
        return len(self.tokenizer(text, add_special_tokens=special)["input_ids"])

    def generate(
        self, texts: list[str], batch_size: int = 8, max_new_tokens: int | None = None
    ) -> list[str]:
        """One answer per user text, each laid out with `prompt`, in input order."""
        return self.generate_prompts([self.prompt(t) for t in texts], batch_size, max_new_tokens)

    def generate_prompts(
        self,
        prompts: list[str],
        batch_size: int = 8,
        max_new_tokens: int | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
    ) -> list[str]:
        """Generate for prompts already laid out by `prompt` or `render_messages`."""
        return generate(
            self.model,
            self.tokenizer,
            prompts,
            self.generation_config(max_new_tokens, temperature, top_p),
            max_input_length=self.cfg.data.max_length,
            batch_size=batch_size,
            precision=self.precision,
            add_special_tokens=not self.chat,
        )

    def generation_config(
        self,
        max_new_tokens: int | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
    ) -> HFGenerationConfig:
        """The run's `task.generation` with a request's overrides.

        Unset options keep the run's settings; temperature 0 decodes greedily and a temperature
        above 0 samples (with `top_p`), as OpenAI-style clients expect.
        """
        settings = self.cfg.task.generation
        update: dict[str, object] = {}
        if max_new_tokens is not None:
            update["max_new_tokens"] = max_new_tokens
        if temperature is not None:
            update["do_sample"] = temperature > 0
            if temperature > 0:
                update["temperature"] = temperature
        if top_p is not None:
            update["top_p"] = top_p
        if update:
            settings = settings.model_copy(update=update)
        return hf_generation_config(settings, self.tokenizer, self.default_max_new_tokens)

    @torch.inference_mode()
    def stream(
        self,
        prompt: str,
        streamer: Any,
        config: HFGenerationConfig,
        stop: Callable[[], bool] | None = None,
    ) -> None:
        """Generate for one laid-out prompt, handing each new token to `streamer` (a transformers
        streamer) as it is made; `stop()` returning True ends generation at the next token.

        One prompt, so no padding: greedy output equals `generate_prompts` for the same prompt.
        """
        encoded = self.tokenizer(
            prompt,
            truncation=True,
            max_length=self.cfg.data.max_length,
            add_special_tokens=not self.chat,
            return_tensors="pt",
        )
        device = next(self.model.parameters()).device
        inputs = {k: encoded[k].to(device) for k in ("input_ids", "attention_mask")}
        if self.model.config.is_encoder_decoder and config.decoder_start_token_id is None:
            config.decoder_start_token_id = self.model.config.decoder_start_token_id
        criteria = StoppingCriteriaList([_Stop(stop)]) if stop else None
        with autocast(self.precision, device.type):
            self.model.generate(
                **inputs, generation_config=config, streamer=streamer, stopping_criteria=criteria
            )


class _Stop(StoppingCriteria):
    """Ends generation when a callback says so (a streaming client went away)."""

    def __init__(self, stop: Callable[[], bool]) -> None:
        self.stop = stop

    def __call__(
        self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any
    ) -> torch.BoolTensor:
        done = torch.full((input_ids.shape[0],), self.stop(), device=input_ids.device)
        return done  # type: ignore[return-value]
