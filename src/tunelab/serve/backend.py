"""The model behind the server, loaded once with the library's own loaders.

A classification run is served through `Predictor` (what `tunelab predict` runs), a seq2seq or
instruction-tuned causal_lm run through `Generator` (what `tunelab generate` runs), so the
server answers exactly what the CLI would. Any other run is refused before the server binds.
Both are only called through the batcher's single worker, which keeps their tokenizers
(whose truncation and padding state is shared, so not thread-safe) on one thread: token counting
happens there too; the routes only render chat templates, which does not tokenize.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple

from tunelab.errors import RunDirError
from tunelab.io import read_json
from tunelab.pipeline import _run_config as run_config  # schema-only read of config.yaml
from tunelab.tasks import chat_format

GENERATIVE = ("seq2seq", "causal_lm")


class GenerationKey(NamedTuple):
    """Settings that must be equal for requests to share one generate call."""

    max_new_tokens: int
    temperature: float | None
    top_p: float | None
    stop: tuple[str, ...]


@dataclass(frozen=True)
class StreamKey:
    """A streamed request's key: equal to no other, so it runs alone (one prompt, no padding)."""

    settings: GenerationKey
    serial: int


@dataclass
class StreamJob:
    """One prompt to stream: tokens go to `streamer` (see `streaming`), `cancel` stops early."""

    prompt: str
    streamer: Any
    cancel: threading.Event


@dataclass(frozen=True)
class Generated:
    """One answer, or why the prompt was refused (`error`)."""

    text: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: Literal["stop", "length"] = "stop"
    error: str | None = None


@dataclass
class ServedModel:
    """What every backend shares: where it came from and what `/v1/model` says about it."""

    path: Path
    task: str
    card: dict[str, Any]
    export: dict[str, Any] | None
    name: str = field(init=False)

    def __post_init__(self) -> None:
        self.name = self.path.name

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "task": self.task,
            "path": str(self.path),
            "kind": "export" if self.export is not None else "run",
            "base_model": (self.card.get("model") or {}).get("source"),
            "export": self.export,
        }

    def run_batch(self, key: Hashable, items: list[Any]) -> list[Any]:
        raise NotImplementedError


@dataclass
class ServedClassifier(ServedModel):
    predictor: Any = None  # tunelab.inference.Predictor

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "labels": list(self.predictor.labels.names),
            "max_length": self.predictor.max_length,
        }

    def run_batch(self, key: Hashable, items: list[Any]) -> list[Any]:
        """One prediction dict per text: label, its probability, all class probabilities."""
        names = self.predictor.labels.names
        ids, probabilities = self.predictor.predict(items)
        return [
            {
                "label": names[int(i)],
                "probability": float(row[int(i)]),
                "probabilities": {name: float(p) for name, p in zip(names, row, strict=True)},
            }
            for i, row in zip(ids, probabilities, strict=True)
        ]


@dataclass
class ServedGenerator(ServedModel):
    generator: Any = None  # tunelab.generator.Generator
    batch_size: int = 8

    @property
    def max_length(self) -> int:
        return int(self.generator.cfg.data.max_length)

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "chat": self.generator.chat,
            "max_length": self.max_length,
            "default_max_new_tokens": self.generator.cfg.task.generation.max_new_tokens
            or self.generator.default_max_new_tokens,
            "generation": self.generator.cfg.task.generation.model_dump(),
        }

    def key(
        self,
        max_tokens: int | None,
        temperature: float | None,
        top_p: float | None,
        stop: tuple[str, ...],
    ) -> GenerationKey:
        configured = self.generator.cfg.task.generation.max_new_tokens
        limit = max_tokens or configured or self.generator.default_max_new_tokens
        return GenerationKey(limit, temperature, top_p, stop)

    def run_batch(self, key: Hashable, items: list[Any]) -> list[Any]:
        """Generate for prompts laid out by the routes; a prompt the model cannot read whole is refused."""
        if isinstance(key, StreamKey):
            return [self._stream(job, key.settings) for job in items]
        assert isinstance(key, GenerationKey)
        counts = [self.generator.count_tokens(p, prompt=True) for p in items]
        fits = [i for i, n in enumerate(counts) if n <= self.max_length]
        texts = (
            self.generator.generate_prompts(
                [items[i] for i in fits],
                self.batch_size,
                key.max_new_tokens,
                key.temperature,
                key.top_p,
            )
            if fits
            else []
        )
        out = [Generated(prompt_tokens=n, error=self._too_long(n)) for n in counts]
        for i, text in zip(fits, texts, strict=True):
            text, stopped = _cut_at_stop(text, key.stop)
            completion = self.generator.count_tokens(text)
            length = not stopped and completion >= key.max_new_tokens
            out[i] = Generated(text, counts[i], completion, "length" if length else "stop")
        return out

    def _stream(self, job: StreamJob, key: GenerationKey) -> Generated:
        """Stream one answer; the result (counts, finish reason) follows once it is complete."""
        n = self.generator.count_tokens(job.prompt, prompt=True)
        if n > self.max_length:
            return Generated(prompt_tokens=n, error=self._too_long(n))
        config = self.generator.generation_config(key.max_new_tokens, key.temperature, key.top_p)
        self.generator.stream(job.prompt, job.streamer, config, stop=job.cancel.is_set)
        text = job.streamer.text.strip()
        length = job.streamer.generated >= key.max_new_tokens and not job.streamer.ended_on_eos
        return Generated(text, n, self.generator.count_tokens(text), "length" if length else "stop")

    def _too_long(self, tokens: int) -> str:
        return (
            f"the prompt is {tokens} tokens laid out; this model reads at most "
            f"{self.max_length} (the run's data.max_length). Shorten it."
        )


def _cut_at_stop(text: str, stops: tuple[str, ...]) -> tuple[str, bool]:
    """The text before the first stop sequence (OpenAI's `stop`), and whether one was found."""
    cuts = [text.find(s) for s in stops if s in text]
    return (text[: min(cuts)].rstrip(), True) if cuts else (text, False)


def load_served_model(
    run_dir: str | Path, max_batch_size: int, load_in: str | None = None
) -> ServedModel:
    """The run's model, ready to serve; a run the server cannot serve is a RunDirError."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # a weight-loading bar says nothing a server log needs
    path = Path(run_dir).expanduser().resolve()
    if not path.is_dir():
        raise RunDirError(
            f"{run_dir} is not a directory. Pass a run directory (`tunelab train` printed it) or an export."
        )
    card = read_json(path / "run_card.json")
    if card is None:
        raise RunDirError(
            f"{run_dir} has no readable run_card.json, so what it serves is unknown. Pass the directory "
            "of a finished `tunelab train` run or of a `tunelab export`."
        )
    task = str(card.get("task", "classification"))
    export = read_json(path / "export.json")
    if task == "classification":
        from tunelab.inference import Predictor

        predictor = Predictor.from_run_dir(path, batch_size=64, load_in=load_in)
        return ServedClassifier(path, task, card, export, predictor=predictor)
    chat = (path / "model" / chat_format.PROMPT_FILE).is_file()
    if task not in GENERATIVE or (task == "causal_lm" and not chat):
        kind = (
            "causal_lm run without a chat template (continued pre-training)"
            if task == "causal_lm"
            else f"{task} run"
        )
        raise RunDirError(
            f"{run_dir} is a {kind}; `tunelab serve` serves classification, seq2seq and instruction-tuned "
            "causal_lm runs. Fine-tune a classifier or an instruction model from it (model.name: its model/)."
        )
    from tunelab.generator import Generator

    generator = Generator.from_run_dir(path, run_config(path), load_in)
    return ServedGenerator(
        path, task, card, export, generator=generator, batch_size=max(1, max_batch_size)
    )
