"""What the routes share: the served model, the batcher, the metrics and the limits.

One `ServerState` per app lives in `app.state.tunelab`; routes get it through `get_state`, so
the route modules need no globals and several apps can live in one process.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Hashable
from dataclasses import asdict, dataclass
from typing import Any

from fastapi import Request

from tunelab.errors import ConfigError
from tunelab.serve.backend import Refused, ServedModel
from tunelab.serve.batching import MicroBatcher, QueueFull, ServerStopping
from tunelab.serve.errors import APIError
from tunelab.serve.metrics import ServerMetrics

log = logging.getLogger("tunelab.serve")


@dataclass(frozen=True)
class Limits:
    max_batch_size: int = 32  # texts per model call; 1 = one request at a time
    max_wait_ms: float = 5  # how long a batch waits for company: latency traded for throughput
    queue_size: int = 256  # requests waiting beyond this get 503 instead of ever-growing latency
    max_items: int = 64  # texts (or prompts) in one request
    max_chars: int = 10_000  # characters in one text (a conversation: all its messages)
    body_timeout: float = 30  # seconds for a request's body to arrive, once its head has

    def check(self) -> None:
        """Every bad setting at once, each with what to do."""
        problems = [
            f"--{name.replace('_', '-')} must be at least {low}; got {getattr(self, name)}."
            for name, low in (
                ("max_batch_size", 1),
                ("max_wait_ms", 0),
                ("queue_size", 1),
                ("max_items", 1),
                ("max_chars", 1),
                ("body_timeout", 0.1),
            )
            if getattr(self, name) < low
        ]
        if problems:
            raise ConfigError(problems)

    @property
    def max_body_bytes(self) -> int:
        """A request body no valid request can exceed (JSON escapes a character in ≤ 6 bytes)."""
        return self.max_items * self.max_chars * 6 + 1_000_000

    @property
    def shed_new_at(self) -> int:
        """Requests in progress from which requests on new connections get 503: the last
        quarter of the queue is kept for clients that already hold a connection."""
        return self.queue_size - self.queue_size // 4

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "shed_new_connections_at": self.shed_new_at}


@dataclass
class ServerState:
    served: ServedModel
    batcher: MicroBatcher
    metrics: ServerMetrics
    limits: Limits

    async def run(self, items: list[Any], key: Hashable = None) -> list[Any]:
        """The model's results for `items`: encoded alone (a 400 if it cannot be), then batched;
        a full queue is a 503, a failing model a 500 for this request only."""
        return await self.wait(self.enqueue(await self.encode(items, key), key))

    async def encode(self, items: list[Any], key: Hashable = None) -> list[Any]:
        """This request's items encoded on their own, before they join anyone's batch."""
        if self.batcher.full():  # refuse before doing any work for it
            raise self._busy(QueueFull(f"{self.batcher.depth()} requests are already waiting"))
        try:
            return await self.batcher.prepare(items, key)
        except Refused as exc:
            raise APIError(400, exc.message, code=exc.code) from None

    def enqueue(self, items: list[Any], key: Hashable = None) -> asyncio.Future[list[Any]]:
        try:
            return self.batcher.enqueue(items, key)
        except QueueFull as exc:
            raise self._busy(exc) from None

    def _busy(self, exc: QueueFull) -> APIError:
        return APIError(
            503,
            f"the server is busy ({exc}; queue size {self.limits.queue_size}); retry shortly.",
            headers={"Retry-After": "1"},
        )

    async def wait(self, future: asyncio.Future[list[Any]]) -> list[Any]:
        try:
            return await future
        except ServerStopping as exc:
            raise APIError(503, f"{exc}; retry on another instance.") from None
        except Exception as exc:  # this request's own model call failed (its batch was rerun)
            log.error("the model failed on a request", exc_info=exc)
            raise APIError(
                500,
                f"internal server error ({type(exc).__name__}) in the model call for this "
                "request; the server log has the traceback.",
            ) from None

    def check_texts(self, texts: list[str], noun: str = "text") -> None:
        """413 for more items or longer texts than this server takes."""
        if len(texts) > self.limits.max_items:
            raise APIError(
                413,
                f"{len(texts)} {noun}s in one request; this server takes at most "
                f"{self.limits.max_items}. Split the request.",
            )
        for i, text in enumerate(texts):
            if len(text) > self.limits.max_chars:
                raise APIError(
                    413,
                    f"{noun} {i} has {len(text)} characters; this server takes at most "
                    f"{self.limits.max_chars}. Shorten it.",
                )

    def require_task(self, tasks: tuple[str, ...], instead: str) -> None:
        if self.served.task not in tasks:
            raise APIError(400, f"this server serves a {self.served.task} model; {instead}")


def get_state(request: Request) -> ServerState:
    state: ServerState = request.app.state.tunelab
    return state
