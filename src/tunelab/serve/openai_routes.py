"""OpenAI-compatible generation: `/v1/completions`, `/v1/chat/completions`, `/v1/models`.

The shapes follow OpenAI's API closely enough for the official `openai` client: ids, `object`,
`created`, `choices` with `finish_reason`, and `usage` in tokens. A completion prompt is laid out
as training laid out prompts (a user turn for chat runs, the source prefix for seq2seq), not
continued raw, because that is what the fine-tuned model learned to answer.

Requests with equal generation settings share generate calls through the micro-batcher;
`stream: true` streams tokens as they are made (see `streaming`). Not supported, refused with a
400 that says so: `n > 1`, `stop` together with `stream`, several prompts in one stream, and
conversations for seq2seq runs (they take one user text); logprobs are not returned.
`usage.completion_tokens` counts the returned text re-tokenized, special tokens aside; without
streaming, `finish_reason` is `length` when that count reached the token limit.
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Response
from jinja2 import TemplateError

from tunelab.serve.backend import GENERATIVE, Generated, ServedGenerator
from tunelab.serve.errors import APIError
from tunelab.serve.schemas import (
    AssistantMessage,
    ChatChoice,
    ChatCompletionRequest,
    ChatCompletionResponse,
    CompletionChoice,
    CompletionRequest,
    CompletionResponse,
    GenerationRequest,
    Usage,
)
from tunelab.serve.state import ServerState, get_state
from tunelab.serve.streaming import stream_response

router = APIRouter()
State = Annotated[ServerState, Depends(get_state)]
USE_PREDICT = 'use POST /v1/predict with {"texts": [...]} for it.'


@router.get("/v1/models")
async def list_models(state: State) -> dict[str, object]:
    """The one served model, as OpenAI clients list models."""
    return {
        "object": "list",
        "data": [{"id": state.served.name, "object": "model", "created": 0, "owned_by": "tunelab"}],
    }


@router.post("/v1/completions", response_model=CompletionResponse)
async def completions(body: CompletionRequest, state: State) -> CompletionResponse | Response:
    """Answer each prompt; several prompts give several choices, in order."""
    served = _generator(state, body)
    prompts = body.prompts()
    state.check_texts(prompts, "prompt")
    laid_out = [served.generator.prompt(p) for p in prompts]
    if body.stream:
        if len(prompts) > 1:
            raise APIError(400, f"stream=true takes one prompt; got {len(prompts)}.")
        key = served.key(body.max_tokens, body.temperature, body.top_p, ())
        return await stream_response(state, served, laid_out[0], key, False, body.include_usage)
    results = await _generate(state, served, body, laid_out, body.max_tokens)
    return CompletionResponse(
        id=f"cmpl-{uuid.uuid4().hex}",
        created=int(time.time()),
        model=served.name,
        choices=[
            CompletionChoice(index=i, text=r.text, finish_reason=r.finish_reason)
            for i, r in enumerate(results)
        ],
        usage=_usage(results),
    )


@router.post("/v1/chat/completions", response_model=ChatCompletionResponse)
async def chat_completions(
    body: ChatCompletionRequest, state: State
) -> ChatCompletionResponse | Response:
    """Answer the conversation's next assistant turn, rendered with the run's chat template."""
    served = _generator(state, body)
    turns = body.turns()
    characters = sum(len(t["content"]) for t in turns)
    if characters > state.limits.max_chars:
        raise APIError(
            413,
            f"the conversation has {characters} characters; this server takes at most "
            f"{state.limits.max_chars}. Shorten it.",
        )
    if served.generator.chat:
        try:
            prompt = served.generator.render_messages(turns)
        except TemplateError as exc:  # templates may refuse, e.g. turns that do not alternate
            raise APIError(
                400, f"the run's chat template refused this conversation: {exc}"
            ) from None
    elif len(turns) == 1 and turns[0]["role"] == "user":
        prompt = served.generator.prompt(turns[0]["content"])
    else:
        raise APIError(
            400,
            f"this {served.task} run has no chat template, so it takes one user message, not a "
            f"conversation of {len(turns)}. Send only the user's text.",
        )
    limit = body.max_completion_tokens or body.max_tokens
    if body.stream:
        key = served.key(limit, body.temperature, body.top_p, ())
        return await stream_response(state, served, prompt, key, True, body.include_usage)
    results = await _generate(state, served, body, [prompt], limit)
    return ChatCompletionResponse(
        id=f"chatcmpl-{uuid.uuid4().hex}",
        created=int(time.time()),
        model=served.name,
        choices=[
            ChatChoice(
                index=0,
                message=AssistantMessage(content=results[0].text),
                finish_reason=results[0].finish_reason,
            )
        ],
        usage=_usage(results),
    )


def _generator(state: ServerState, body: GenerationRequest) -> ServedGenerator:
    state.require_task(GENERATIVE, USE_PREDICT)
    if body.n != 1:
        raise APIError(400, f"n={body.n}: this server returns one choice per prompt; send n=1.")
    if body.stream and body.stop_sequences():
        raise APIError(400, "stop sequences are not supported with stream=true; drop one of them.")
    served = state.served
    assert isinstance(served, ServedGenerator)
    return served


async def _generate(
    state: ServerState,
    served: ServedGenerator,
    body: GenerationRequest,
    prompts: list[str],
    max_tokens: int | None,
) -> list[Generated]:
    key = served.key(max_tokens, body.temperature, body.top_p, body.stop_sequences())
    results: list[Generated] = await state.run(prompts, key)  # too long a prompt: 400 there
    return results


def _usage(results: list[Generated]) -> Usage:
    prompt = sum(r.prompt_tokens for r in results)
    completion = sum(r.completion_tokens for r in results)
    return Usage(
        prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
    )
