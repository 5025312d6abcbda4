"""The model behind the server, loaded once with the library's own loaders.

A classification run is served through `Predictor` (what `tunelab predict` runs), a seq2seq or
instruction-tuned causal_lm run through `Generator` (what `tunelab generate` runs), so the
server answers exactly what the CLI would. Any other run is refused before the server binds.

Each request goes through two steps. `encode` runs per request, before it joins a batch, on
the batcher's encoding thread: it tokenizes the request's texts (a classifier) or counts its
prompt's tokens (a generator) with its own copy of the tokenizer, and refuses what the model
cannot take (`Refused`, a 400), so a bad request fails alone. `run_batch` then runs the model
once on the encoded items of many requests, on the batcher's model worker. A tokenizer's
truncation and padding state is shared, so not thread-safe: the copy keeps the two threads
apart. The routes only render chat templates, which does not tokenize.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np

from tunelab.data import chat_format
from tunelab.errors import RunDirError
from tunelab.runs import RunDir
from tunelab.tasks import TASKS, task_spec

GENERATIVE = tuple(name for name, spec in TASKS.items() if spec.output == "text")
CLASSIFIERS = tuple(name for name, spec in TASKS.items() if spec.output == "labels")


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
    prompt_tokens: int = 0  # counted by `encode`


@dataclass(frozen=True)
class Prompt:
    """A laid-out prompt and its token count, as `encode` hands it to the batch."""

    text: str
    tokens: int


@dataclass(frozen=True)
class Generated:
    """One answer."""

    text: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: Literal["stop", "length"] = "stop"


class Refused(ValueError):
    """A request the model cannot take (the route answers 400 with this one-line message)."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message, self.code = message, code


@dataclass(frozen=True)
class Failed:
    """The result for one item the model could not answer sensibly (the route answers 500)."""

    message: str


NON_FINITE = (
    "the model's probabilities for this text are not finite (NaN or infinity), so there is no "
    "answer to give: its weights are likely broken (a diverged run). Serve a run with finite weights."
)


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

    def encode(self, key: Hashable, items: list[Any]) -> list[Any]:
        """One request's items, ready for `run_batch`; `Refused` for what the model cannot take."""
        raise NotImplementedError

    def run_batch(self, key: Hashable, items: list[Any]) -> list[Any]:
        raise NotImplementedError


def _tokenizer_copy(tokenizer: Any) -> Any:
    """A tokenizer of its own for the encoding thread (fast tokenizers' state is not thread-safe)."""
    return copy.deepcopy(tokenizer)


@dataclass
class ServedClassifier(ServedModel):
    predictor: Any = None  # tunelab.inference.predictor.Predictor
    _encoder: Any = field(init=False, repr=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        self._encoder = _tokenizer_copy(self.predictor.tokenizer)

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "labels": list(self.predictor.labels.names),
            "max_length": self.predictor.max_length,
        }

    def encode(self, key: Hashable, items: list[Any]) -> list[Any]:
        """Each text's token ids, truncated as `Predictor` truncates (unpadded)."""
        try:
            encoded = self._encode(items)
        except Exception:
            for i, text in enumerate(items):  # name the text that cannot be tokenized
                try:
                    self._encode([text])
                except Exception as exc:
                    raise Refused(
                        f"text {i} cannot be tokenized ({type(exc).__name__}); send plain text."
                    ) from None
            raise
        return [{k: encoded[k][i] for k in encoded} for i in range(len(items))]

    def _encode(self, texts: list[str]) -> Any:
        return self._encoder(texts, truncation=True, max_length=self.predictor.max_length)

    def run_batch(self, key: Hashable, items: list[Any]) -> list[Any]:
        """One prediction dict per encoded text: label, its probability, all class probabilities.

        The encoded texts are scored as `Predictor.logits` scores texts: in length-sorted chunks
        of its batch size, each padded to its longest. A text whose probabilities are not finite
        gets `Failed`, never NaN (which is not JSON) or null.
        """
        import torch

        from tunelab.evaluation.metrics import softmax

        predictor = self.predictor
        order = np.argsort([len(item["input_ids"]) for item in items], kind="stable")
        logits = np.zeros((len(items), len(predictor.labels.names)), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(items), predictor.batch_size):
                index = order[start : start + predictor.batch_size]
                batch = predictor.tokenizer.pad(
                    {k: [items[i][k] for i in index] for k in items[0]}, return_tensors="np"
                )
                logits[index] = predictor.scores(batch)
        probabilities = softmax(logits)
        finite = np.isfinite(logits).all(-1) & np.isfinite(probabilities).all(-1)
        names = predictor.labels.names
        results: list[Any] = []
        for row, ok in zip(probabilities, finite, strict=True):
            if not ok:
                results.append(Failed(NON_FINITE))
                continue
            best = int(row.argmax())
            results.append(
                {
                    "label": names[best],
                    "probability": float(row[best]),
                    "probabilities": {name: float(p) for name, p in zip(names, row, strict=True)},
                }
            )
        return results


@dataclass
class ServedGenerator(ServedModel):
    generator: Any = None  # tunelab.inference.generator.Generator
    batch_size: int = 8
    _counter: Any = field(init=False, repr=False)  # the generator with a tokenizer of its own

    def __post_init__(self) -> None:
        super().__post_init__()
        self._counter = copy.copy(self.generator)
        self._counter.tokenizer = _tokenizer_copy(self.generator.tokenizer)

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

    def encode(self, key: Hashable, items: list[Any]) -> list[Any]:
        """Count each laid-out prompt's tokens; a prompt the model cannot read whole is refused."""
        for i, item in enumerate(items):
            prompt = item.prompt if isinstance(item, StreamJob) else item
            try:
                tokens = self._counter.count_tokens(prompt, prompt=True)
            except Exception as exc:
                raise Refused(
                    f"prompt {i} cannot be tokenized ({type(exc).__name__}); send plain text."
                ) from None
            if tokens > self.max_length:
                raise Refused(self._too_long(tokens), code="context_length_exceeded")
            if isinstance(item, StreamJob):
                item.prompt_tokens = tokens
            else:
                items[i] = Prompt(prompt, tokens)
        return items

    def run_batch(self, key: Hashable, items: list[Any]) -> list[Any]:
        """Generate for prompts laid out by the routes and counted by `encode`."""
        if isinstance(key, StreamKey):
            return [self._stream(job, key.settings) for job in items]
        assert isinstance(key, GenerationKey)
        texts = self.generator.generate_prompts(
            [p.text for p in items], self.batch_size, key.max_new_tokens, key.temperature, key.top_p
        )
        out = []
        for prompt, text in zip(items, texts, strict=True):
            text, stopped = _cut_at_stop(text, key.stop)
            completion = self.generator.count_tokens(text)
            length = not stopped and completion >= key.max_new_tokens
            out.append(Generated(text, prompt.tokens, completion, "length" if length else "stop"))
        return out

    def _stream(self, job: StreamJob, key: GenerationKey) -> Generated:
        """Stream one answer; the result (counts, finish reason) follows once it is complete."""
        config = self.generator.generation_config(key.max_new_tokens, key.temperature, key.top_p)
        self.generator.stream(job.prompt, job.streamer, config, stop=job.cancel.is_set)
        text = job.streamer.text.strip()
        length = job.streamer.generated >= key.max_new_tokens and not job.streamer.ended_on_eos
        completion = self.generator.count_tokens(text)
        return Generated(text, job.prompt_tokens, completion, "length" if length else "stop")

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
    run = RunDir(path)
    card = run.card()
    task = str(card.get("task", "classification"))
    export = run.export_record()
    spec = task_spec(task) if task in TASKS else None
    chat = (path / "model" / chat_format.PROMPT_FILE).is_file()
    answers = spec.answers_with(chat) if spec else None
    if answers == "labels":
        from tunelab.runs import load_predictor

        predictor = load_predictor(path, batch_size=64, load_in=load_in)
        return ServedClassifier(path, task, card, export, predictor=predictor)
    if answers != "text":
        kind = (
            f"{task} run without a chat template (continued pre-training)"
            if spec is not None and spec.needs_prompt_format
            else f"{task} run"
        )
        raise RunDirError(
            f"{run_dir} is a {kind}; `tunelab serve` serves classification, seq2seq and instruction-tuned "
            "causal_lm runs. Fine-tune a classifier or an instruction model from it (model.name: its model/)."
        )
    from tunelab.runs import load_generator

    generator = load_generator(path, load_in)
    return ServedGenerator(
        path, task, card, export, generator=generator, batch_size=max(1, max_batch_size)
    )
