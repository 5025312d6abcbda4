"""The optional API key: `Authorization: Bearer <key>` (what OpenAI clients send) or `X-API-Key`.

Keys are compared with `secrets.compare_digest`, whose time does not depend on where the keys
differ, so response timing does not leak the key a character at a time.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable

from fastapi import Request

from tunelab.serve.errors import APIError


def _presented(request: Request) -> list[str]:
    keys = []
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        keys.append(credentials.strip())
    if request.headers.get("x-api-key"):
        keys.append(request.headers["x-api-key"])
    return keys


def api_key_guard(api_key: str | None) -> Callable[[Request], Awaitable[None]]:
    """A dependency that lets a request through only with the key (always, when there is none)."""
    expected = api_key.encode() if api_key is not None else None

    async def require_api_key(request: Request) -> None:
        if expected is None:
            return
        presented = _presented(request)
        if not presented:
            raise APIError(
                401,
                "this server needs an API key: send `Authorization: Bearer <key>` or `X-API-Key: <key>`.",
                headers={"WWW-Authenticate": "Bearer"},
                code="missing_api_key",
            )
        # Every presented key is compared (no early exit), each in constant time.
        matches = [secrets.compare_digest(key.encode(), expected) for key in presented]
        if not any(matches):
            raise APIError(
                401,
                "the API key is not valid for this server.",
                headers={"WWW-Authenticate": "Bearer"},
                code="invalid_api_key",
            )

    return require_api_key
