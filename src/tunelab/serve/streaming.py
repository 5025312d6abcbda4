"""`stream: true`: tokens reach the client as the model makes them (server-sent events).

Real streaming, not a finished text cut into chunks: the batcher's worker runs `Generator.stream`
with a transformers streamer that hands decoded words to the event loop, and the route forwards
each as an OpenAI chunk. A streamed request runs alone (one prompt, no padding), so its greedy
text equals the non-streamed answer. The route waits for the first words before it answers, so a
full queue (503), a too-long prompt (400, before it is queued) or a failing model (500) is still a plain error status;
a client that disconnects stops the generation at its next token.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi.responses import StreamingResponse
from transformers import AsyncTextIteratorStreamer

from tunelab.serve.backend import Generated, GenerationKey, ServedGenerator, StreamJob, StreamKey
from tunelab.serve.errors import APIError
from tunelab.serve.state import ServerState

_serial = itertools.count()


class TokenStreamer(AsyncTextIteratorStreamer):
    """Words to the event loop as they are decoded; also keeps the whole text and the count of
    generated tokens, which the worker reads once generation is done."""

    def __init__(self, tokenizer: Any) -> None:
        super().__init__(tokenizer, skip_prompt=True, skip_special_tokens=True)
        self.text = ""
        self.generated = 0
        self.ended_on_eos = False
        self.eos_token_id = tokenizer.eos_token_id

    def put(self, value: Any) -> None:
        if not (self.skip_prompt and self.next_tokens_are_prompt):
            tokens = value.reshape(-1).tolist()
            self.generated += len(tokens)
            self.ended_on_eos = bool(tokens) and tokens[-1] == self.eos_token_id
        super().put(value)

    def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
        self.text += text
        super().on_finalized_text(text, stream_end)


async def stream_response(
    state: ServerState,
    served: ServedGenerator,
    prompt: str,
    key: GenerationKey,
    chat: bool,
    include_usage: bool,
) -> StreamingResponse:
    streamer = TokenStreamer(served.generator.tokenizer)
    cancel = threading.Event()
    stream_key = StreamKey(key, next(_serial))
    jobs = await state.encode([StreamJob(prompt, streamer, cancel)], stream_key)  # too long: 400
    future = state.enqueue(jobs, stream_key)
    # However the job ends (refused, failed, server stopping), the text iterator must end too.
    future.add_done_callback(lambda _: streamer.text_queue.put_nowait(streamer.stop_signal))
    pieces = aiter(streamer)
    try:
        first: str | None = await anext(pieces)
    except StopAsyncIteration:
        first = None
    except BaseException:
        cancel.set()
        raise
    if first is None:  # nothing was generated: a failure is still told with a status code
        await state.wait(future)
    chunks = _Chunks(served.name, chat)
    return StreamingResponse(
        _events(chunks, first, pieces, state, future, cancel, include_usage),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache"},
    )


async def _events(
    chunks: _Chunks,
    first: str | None,
    pieces: AsyncIterator[str],
    state: ServerState,
    future: asyncio.Future[list[Any]],
    cancel: threading.Event,
    include_usage: bool,
) -> AsyncIterator[str]:
    try:
        if chunks.chat:
            yield chunks.event(chunks.delta({"role": "assistant", "content": ""}))
        if first:
            yield chunks.event(chunks.delta(text=first))
        async for piece in pieces:
            if piece:
                yield chunks.event(chunks.delta(text=piece))
        result: Generated = (await state.wait(future))[0]
        yield chunks.event(chunks.delta(finish_reason=result.finish_reason))
        if include_usage:
            yield chunks.event(chunks.usage(result))
        yield "data: [DONE]\n\n"
    except APIError as exc:
        yield chunks.event({"error": {"message": exc.message, "type": exc.type}})
    except Exception as exc:  # after the status line, an error can only be told in the stream
        message = f"internal server error ({type(exc).__name__}) while streaming"
        yield chunks.event({"error": {"message": message, "type": "server_error"}})
    finally:
        cancel.set()  # the client left or the answer is done: stop generating


class _Chunks:
    """OpenAI's chunk objects: `chat.completion.chunk` deltas or `text_completion` pieces."""

    def __init__(self, model: str, chat: bool) -> None:
        self.model, self.chat = model, chat
        self.id = f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex}"
        self.created = int(time.time())

    def _base(self) -> dict[str, Any]:
        kind = "chat.completion.chunk" if self.chat else "text_completion"
        return {"id": self.id, "object": kind, "created": self.created, "model": self.model}

    def delta(
        self,
        delta: dict[str, str] | None = None,
        text: str | None = None,
        finish_reason: str | None = None,
    ) -> dict[str, Any]:
        choice: dict[str, Any] = {"index": 0, "finish_reason": finish_reason, "logprobs": None}
        if self.chat:
            choice["delta"] = delta if delta is not None else ({"content": text} if text else {})
        else:
            choice["text"] = text or ""
        return {**self._base(), "choices": [choice]}

    def usage(self, result: Generated) -> dict[str, Any]:
        total = result.prompt_tokens + result.completion_tokens
        usage = {
            "prompt_tokens": result.prompt_tokens,
            "completion_tokens": result.completion_tokens,
            "total_tokens": total,
        }
        return {**self._base(), "choices": [], "usage": usage}

    @staticmethod
    def event(data: dict[str, Any]) -> str:
        return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"
