"""What protects the server from clients that send too much, too slowly, or not at all.

- `BodyLimit` (ASGI middleware) reads the whole request body before the app sees it, counting
  bytes as chunks arrive: a body past the limit gets 413 as soon as the count passes it, whether
  it declared a Content-Length or came chunked without one, and a body that has not fully arrived
  `body_timeout` seconds after its head gets 408. Both close the connection, so the rest of the
  body is never read. The app then gets the body from memory, in one message.
- `guarded_protocol` is uvicorn's HTTP/1.1 protocol with a request-head timeout, which
  uvicorn lacks: a connection that has not sent a complete request head (request line and
  headers) `header_timeout` seconds after it opened or after its previous response is answered
  408 and closed. This is what ends slowloris clients (headers sent a byte at a time, never
  finished) and clients that connect and send nothing.
- `ShedNewConnections`: with three quarters of the queue's size in requests in progress,
  requests on new connections get 503 first, so a flood of new connections does not starve
  clients that keep theirs.
- `uvicorn_options` are the rest, uvicorn's own: `timeout_keep_alive` closes idle keep-alive
  connections, `limit_concurrency` answers 503 to requests beyond that many open connections or
  running requests, `h11_max_incomplete_event_size` caps a request head's bytes (400 past it).

Not covered: a client that sends its request and then never reads the response (its request
holds a slot until the response is written or the connection drops); more stalled connections
than `limit_concurrency` within one `header_timeout` (good clients get 503 until the stalled
ones time out); a flood over many kept-alive connections, which looks like that many good
clients (nothing here tells clients apart: there are no per-address quotas). Put a reverse proxy
in front for hostile networks.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tunelab.serve.errors import error_response

HEAD_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
    b"content-length: %d\r\n\r\n%s"
)
HEAD_TIMEOUT_BODY = (
    b'{"error": {"message": "the request head (request line and headers) did not arrive within '
    b'%g s; send it whole.", "type": "invalid_request_error", "param": null, "code": null}}'
)


class BodyLimit:
    """413 for a body larger than any valid request, 408 for one that arrives too slowly."""

    def __init__(self, app: ASGIApp, max_bytes: int, timeout: float = 30) -> None:
        self.app, self.max_bytes, self.timeout = app, max_bytes, timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length", b"0")
        if length.isdigit() and int(length) > self.max_bytes:
            await self._too_large(f"the request body has {int(length)} bytes", scope, send)
            return
        chunks, size = [], 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        while True:
            try:
                message = await asyncio.wait_for(receive(), max(deadline - loop.time(), 0))
            except TimeoutError:
                late = (
                    f"the request body did not arrive within {self.timeout:g} s "
                    f"({size} bytes came); send it whole, without pauses."
                )
                await _answer(408, late, scope, send)
                return
            if message["type"] != "http.request":  # the client left: nobody to answer
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:  # counted as it arrives: chunked bodies too
                what = f"the request body has more than {self.max_bytes} bytes (refused at {size})"
                await self._too_large(what, scope, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        chunks.clear()
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if delivered:
                return await receive()  # what follows: http.disconnect, for streaming responses
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _too_large(self, what: str, scope: Scope, send: Send) -> None:
        message = f"{what}; at most {self.max_bytes} are taken. Send less per request."
        await _answer(413, message, scope, send)


async def _answer(status: int, message: str, scope: Scope, send: Send) -> None:
    """The error, then the connection closes: the unread rest of the body is never read."""

    async def nothing() -> Message:
        return {"type": "http.disconnect"}

    await error_response(status, message, headers={"Connection": "close"})(scope, nothing, send)


def guarded_protocol(base: type[Any], header_timeout: float) -> type[Any]:
    """`base` (uvicorn's H11Protocol or HttpToolsProtocol) with a request-head timeout, and each
    request's scope told how many responses its connection had before (`CONNECTION`).

    A request's head is complete when the protocol makes its request cycle (`self.cycle`): the
    timer runs from the connection's start, and again from each response, until a new cycle
    appears.
    """

    class Guarded(base):
        _head_timer: asyncio.TimerHandle | None = None
        _head_of: Any = None
        _tagged: Any = None
        _answered = 0

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._await_head()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            self._head_arrived()

        def on_response_complete(self) -> None:
            self._answered += 1
            self._await_head()  # before: a pipelined request may start inside it
            super().on_response_complete()
            self._head_arrived()

        def connection_lost(self, exc: Exception | None) -> None:
            self._stop_head_timer()
            super().connection_lost(exc)

        def _await_head(self) -> None:
            self._stop_head_timer()
            if self.transport is None or self.transport.is_closing():
                return
            self._head_of = self.cycle  # the head is in once the cycle is another
            self._head_timer = self.loop.call_later(header_timeout, self._head_timed_out)

        def _head_arrived(self) -> None:
            cycle = self.cycle
            if cycle is not None and cycle is not self._tagged:  # its task has not run yet
                cycle.scope.setdefault("extensions", {})[CONNECTION] = {"answered": self._answered}
                self._tagged = cycle
            if self._head_timer is not None and (
                cycle is not self._head_of or self.transport.is_closing()
            ):
                self._stop_head_timer()

        def _stop_head_timer(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_timed_out(self) -> None:
            self._head_timer = None
            if self.transport.is_closing() or self.cycle is not self._head_of:
                return
            body = HEAD_TIMEOUT_BODY % header_timeout
            self.transport.write(HEAD_TIMEOUT_RESPONSE % (len(body), body))
            self.transport.close()

    Guarded.__name__ = Guarded.__qualname__ = f"Guarded{base.__name__}"
    return Guarded


CONNECTION = "tunelab.connection"  # scope extension: {"answered": responses sent before on it}


class ShedNewConnections:
    """Under overload, requests on new connections are refused first (503, and the connection
    closed) and clients that already hold a connection keep their place.

    It counts the model requests (POST) in progress, from the moment they arrive (body read,
    encoding, queued, in the model, streaming); with `threshold` or more in progress, a request
    that is the first on its connection is refused. A burst of new connections is cut at the
    threshold as it arrives, before any of it reaches the queue, so the queue's last places
    stay for clients that reuse their connection (what HTTP clients do). Without `CONNECTION`
    in the scope (no guarded uvicorn, e.g. a test client) every request counts as on a known
    connection.
    """

    def __init__(self, app: ASGIApp, threshold: int) -> None:
        self.app, self.threshold = app, threshold
        self.in_progress = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        connection = scope.get("extensions", {}).get(CONNECTION)
        new = connection is not None and connection["answered"] == 0
        if new and self.in_progress >= self.threshold:
            message = (
                f"the server is busy ({self.in_progress} requests in progress; from "
                f"{self.threshold} on, requests on new connections are refused); retry shortly."
            )
            headers = {"Retry-After": "1", "Connection": "close"}
            await error_response(503, message, headers=headers)(scope, receive, send)
            return
        self.in_progress += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_progress -= 1


def uvicorn_options(
    header_timeout: float = 10,
    keep_alive_timeout: int = 5,
    limit_concurrency: int | None = 1000,
    max_head_bytes: int = 16 * 1024,
) -> dict[str, Any]:
    """Keyword arguments for `uvicorn.Config`/`uvicorn.run` that apply these guards."""
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    return {
        "http": guarded_protocol(AutoHTTPProtocol, header_timeout),
        "ws": "none",  # no websocket routes: an upgrade request is plain HTTP here
        "timeout_keep_alive": keep_alive_timeout,
        "limit_concurrency": limit_concurrency,
        "h11_max_incomplete_event_size": max_head_bytes,
    }
