"""Request and response bodies of the server.

Requests ignore fields they do not know: OpenAI clients send many (user, seed, metadata, ...)
that change nothing here. Limits that depend on the server's settings (items, characters) are
checked in the routes, which answer 413 for them; the models here only refuse what is never
valid (an empty list, an empty text, a wrong type, a string that is not Unicode), which FastAPI
answers with 422.

JSON may escape a lone surrogate (`"\\ud800"`), which Python's JSON parser accepts but no
tokenizer (and no UTF-8 encoder) can take: every request body is checked for one, anywhere in
it, before it is validated further, so such a request fails alone, with a 422, before it is
tokenized or batched with anyone else's.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

FinishReason = Literal["stop", "length"]


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore")


def not_unicode(value: Any) -> str | None:
    """Where in a parsed JSON value a string holds a lone surrogate, said in one line; else None.

    Iterative, so a deeply nested body cannot exhaust the stack.
    """
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as exc:
                code = f"\\u{ord(item[exc.start]):04x}"
                return (
                    f"{where or 'the body'} holds a lone surrogate ({code}) at character "
                    f"{exc.start}, which is not Unicode text; send valid UTF-8 text."
                )
        elif isinstance(item, dict | list):
            pairs = item.items() if isinstance(item, dict) else enumerate(item)
            for key, child in reversed(list(pairs)):
                name = str(key).encode("utf-8", "backslashreplace").decode()
                here = f"{where}.{name}" if where else name
                stack.append((here, child))
                if isinstance(key, str):
                    stack.append((f"{here} (a field name)", key))
    return None


class _Body(_Request):
    """A whole request body: refused at once when any string in it is not Unicode."""

    @model_validator(mode="before")
    @classmethod
    def _unicode_only(cls, data: Any) -> Any:
        problem = not_unicode(data)
        if problem:
            raise ValueError(problem)
        return data


def _no_empty_texts(texts: list[str]) -> list[str]:
    for i, text in enumerate(texts):
        if not text.strip():
            raise ValueError(
                f"text {i} is empty; every text needs at least one non-space character"
            )
    return texts


class PredictRequest(_Body):
    texts: list[str] = Field(
        min_length=1, description="texts to label, at most the server's max_items"
    )

    _check_texts = field_validator("texts")(_no_empty_texts)


class Prediction(BaseModel):
    model_config = ConfigDict(allow_inf_nan=False)  # JSON has no NaN; the route answers 500

    label: str
    probability: float = Field(description="probability of `label`, the most likely class")
    probabilities: dict[str, float]


class PredictResponse(BaseModel):
    predictions: list[Prediction]
    model: str


class StreamOptions(_Request):
    include_usage: bool = False


class GenerationRequest(_Body):
    model: str | None = Field(None, description="accepted for OpenAI clients; one model is served")
    max_tokens: int | None = Field(None, ge=1, description="tokens to generate at most")
    temperature: float | None = Field(
        None, ge=0, le=2, description="0 = greedy; > 0 samples; unset = the run's task.generation"
    )
    top_p: float | None = Field(None, gt=0, le=1)
    n: int = Field(1, ge=1, description="only 1 is supported")
    stream: bool | None = Field(False, description="send tokens as server-sent events as they come")
    stream_options: StreamOptions | None = None
    stop: str | list[str] | None = Field(None, description="cut the answer before any of these")

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)

    def stop_sequences(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        stops = [self.stop] if isinstance(self.stop, str) else self.stop
        return tuple(s for s in stops if s)


class CompletionRequest(GenerationRequest):
    prompt: str | list[str] = Field(
        description="one text or a list; each is laid out as in training (a user turn for chat runs)"
    )

    @field_validator("prompt")
    @classmethod
    def _check_prompt(cls, prompt: str | list[str]) -> str | list[str]:
        if isinstance(prompt, list):
            if not prompt:
                raise ValueError("the prompt list is empty")
            return _no_empty_texts(prompt)
        return _no_empty_texts([prompt])[0]

    def prompts(self) -> list[str]:
        return [self.prompt] if isinstance(self.prompt, str) else list(self.prompt)


class ContentPart(_Request):
    type: str
    text: str | None = None


class ChatMessage(_Request):
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[ContentPart] | None = None

    def as_turn(self) -> dict[str, str]:
        """The message as the chat template takes it: developer counts as system."""
        role = "system" if self.role == "developer" else self.role
        if self.content is None or isinstance(self.content, str):
            return {"role": role, "content": self.content or ""}
        if any(part.type != "text" for part in self.content):
            raise ValueError("only text content parts are supported")
        return {"role": role, "content": "".join(part.text or "" for part in self.content)}


class ChatCompletionRequest(GenerationRequest):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1, description="overrides max_tokens")

    @field_validator("messages")
    @classmethod
    def _check_messages(cls, messages: list[ChatMessage]) -> list[ChatMessage]:
        turns = [m.as_turn() for m in messages]
        if not any(t["role"] == "user" and t["content"].strip() for t in turns):
            raise ValueError("the conversation needs a user message with text")
        return messages

    def turns(self) -> list[dict[str, str]]:
        return [m.as_turn() for m in self.messages]


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class CompletionChoice(BaseModel):
    index: int
    text: str
    finish_reason: FinishReason
    logprobs: None = None


class CompletionResponse(BaseModel):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class ChatChoice(BaseModel):
    index: int
    message: AssistantMessage
    finish_reason: FinishReason
    logprobs: None = None


class ChatCompletionResponse(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage
