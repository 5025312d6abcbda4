"""Every error the server answers has one shape, OpenAI's: {"error": {"message", "type", ...}}.

OpenAI clients read `error.message` into the exception they raise, so a client sees the same
one-line reason a curl user does. FastAPI's own 422 (a list of pydantic errors) and Starlette's
404/405 bodies are replaced by it too.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    405: "invalid_request_error",
    408: "invalid_request_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    500: "server_error",
    503: "server_overloaded",
}


class APIError(Exception):
    """A request the server refuses: its status, a one-line reason, and headers to send."""

    def __init__(
        self,
        status: int,
        message: str,
        type: str | None = None,
        headers: dict[str, str] | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message = status, message
        self.type = type or ERROR_TYPES.get(status, "server_error")
        self.headers, self.code = headers, code


def error_response(
    status: int,
    message: str,
    type: str | None = None,
    headers: dict[str, str] | None = None,
    code: str | None = None,
) -> JSONResponse:
    # One line, and encodable: a lone surrogate from a request must not break the error itself.
    message = " ".join(message.split()).encode("utf-8", "backslashreplace").decode("utf-8")
    body = {
        "error": {
            "message": message,
            "type": type or ERROR_TYPES.get(status, "server_error"),
            "param": None,
            "code": code,
        }
    }
    return JSONResponse(body, status_code=status, headers=headers)


def readable(errors: list[Any]) -> str:
    """Pydantic's validation errors as one line: `texts.2: text 2 is empty; model: ...`."""
    for error in errors:
        if error.get("type") == "json_invalid":
            reason = error.get("ctx", {}).get("error", "")
            return (
                f"the request body is not valid JSON ({reason}); "
                "send a JSON object with Content-Type: application/json."
            )
    if any(
        tuple(e.get("loc", ())) == ("body",) and e.get("type") not in ("missing", "value_error")
        for e in errors
    ):
        return (
            "the request body must be a JSON object; send it with Content-Type: application/json."
        )
    parts = []
    for error in errors[:3]:
        where = ".".join(str(part) for part in error.get("loc", ()) if part != "body") or "body"
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        whole = where == "body" and error.get("type") == "value_error"  # it says where itself
        parts.append(message if whole else f"{where}: {message}")
    more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    return "; ".join(parts) + more


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def api_error(_: Request, exc: APIError) -> JSONResponse:
        return error_response(exc.status, exc.message, exc.type, exc.headers, exc.code)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, readable(list(exc.errors())))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(exc.headers) if exc.headers else None
        return error_response(exc.status_code, str(exc.detail), headers=headers)

    @app.exception_handler(Exception)
    async def internal(_: Request, exc: Exception) -> JSONResponse:
        # A bug, not the user's doing: the traceback goes to the server's log, not to the client.
        return error_response(
            500, f"internal server error ({type(exc).__name__}); the server log has the traceback."
        )
