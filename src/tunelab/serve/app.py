"""The app factory: `create_app(run_dir)` loads the model once and wires the routes.

Loading happens in the factory, not at first request, so a bad run directory fails before the
server binds a port (one line on the CLI) and no client waits on a cold model. The batcher's
worker starts and stops with the app's lifespan.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Response

from tunelab.errors import ConfigError
from tunelab.serve.auth import api_key_guard
from tunelab.serve.backend import CLASSIFIERS, Failed, ServedClassifier, load_served_model
from tunelab.serve.batching import MicroBatcher
from tunelab.serve.errors import APIError, install_error_handlers
from tunelab.serve.guards import BodyLimit, ShedNewConnections, uvicorn_options
from tunelab.serve.metrics import MetricsMiddleware, ServerMetrics
from tunelab.serve.openai_routes import router as openai_router
from tunelab.serve.schemas import Prediction, PredictRequest, PredictResponse
from tunelab.serve.state import Limits, ServerState, get_state

State = Annotated[ServerState, Depends(get_state)]


def create_app(
    run_dir: str | Path,
    *,
    api_key: str | None = None,
    max_batch_size: int = 32,
    max_wait_ms: float = 5,
    queue_size: int = 256,
    max_items: int = 64,
    max_chars: int = 10_000,
    body_timeout: float = 30,
    load_in: str | None = None,
) -> FastAPI:
    """A FastAPI app serving the run (or export) in `run_dir`; see `tunelab.serve` for routes."""
    limits = Limits(max_batch_size, max_wait_ms, queue_size, max_items, max_chars, body_timeout)
    limits.check()
    if api_key is not None and not api_key.strip():
        raise ConfigError(
            "the API key is empty. Pass a non-empty --api-key (or TUNELAB_API_KEY), or none."
        )
    served = load_served_model(run_dir, max_batch_size, load_in)
    metrics = ServerMetrics()
    batcher = MicroBatcher(
        served.run_batch,
        encode=served.encode,
        max_batch_size=max_batch_size,
        max_wait_ms=max_wait_ms,
        queue_size=queue_size,
        on_queue_depth=metrics.queue_depth.set,
        on_batch=metrics.observe_batch,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await batcher.start()
        try:
            yield
        finally:
            await batcher.stop()

    docs = api_key is None  # with a key, nothing but /health is open, the API docs included
    app = FastAPI(
        title=f"tunelab serve: {served.name}",
        description=f"{served.task} model from {served.path}",
        lifespan=lifespan,
        docs_url="/docs" if docs else None,
        redoc_url=None,
        openapi_url="/openapi.json" if docs else None,
    )
    app.state.tunelab = ServerState(served, batcher, metrics, limits)
    install_error_handlers(app)
    app.add_middleware(BodyLimit, max_bytes=limits.max_body_bytes, timeout=limits.body_timeout)
    app.add_middleware(ShedNewConnections, threshold=limits.shed_new_at)
    app.add_middleware(MetricsMiddleware, metrics=metrics)  # added last: outermost, sees all
    app.get("/health")(health)
    guarded = [Depends(api_key_guard(api_key))]
    app.include_router(router, dependencies=guarded)
    app.include_router(openai_router, dependencies=guarded)
    return app


async def health() -> dict[str, str]:
    """Liveness: the model is loaded and the process answers (no API key needed)."""
    return {"status": "ok"}


router = APIRouter()


@router.get("/v1/model")
async def model_info(state: State) -> dict[str, Any]:
    """What is served: task, source, labels or generation settings, export record, limits."""
    return {**state.served.describe(), "limits": state.limits.to_dict()}


@router.get("/metrics")
async def metrics(state: State) -> Response:
    """Prometheus exposition of this server's counters and histograms."""
    from prometheus_client import CONTENT_TYPE_LATEST

    return Response(state.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


@router.post("/v1/predict")
async def predict(body: PredictRequest, state: State) -> PredictResponse:
    """Label each text: the most likely label, its probability and every class's probability."""
    state.require_task(CLASSIFIERS, "use POST /v1/completions or /v1/chat/completions for it.")
    state.check_texts(body.texts)
    assert isinstance(state.served, ServedClassifier)
    results = await state.run(body.texts)
    failed = next(((i, r) for i, r in enumerate(results) if isinstance(r, Failed)), None)
    if failed is not None:  # e.g. NaN probabilities: an error, never invalid JSON or nulls
        raise APIError(500, f"text {failed[0]}: {failed[1].message}")
    return PredictResponse(predictions=[Prediction(**r) for r in results], model=state.served.name)


def check_port_free(host: str, port: int) -> None:
    """Fail in one line, before the model loads, when the address is taken or not ours."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ConfigError(f"--host {host} cannot be resolved ({exc}).") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise ConfigError(
                f"cannot listen on {host}:{port} ({exc.strerror}). Pick another --port, or stop what uses it."
            ) from None


def run_server(
    run_dir: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    api_key: str | None = None,
    header_timeout: float = 10,
    keep_alive_timeout: int = 5,
    limit_concurrency: int = 1000,
    **limits: Any,
) -> None:
    """`tunelab serve`: check the address, load the model, say where it is, serve until stopped.

    `header_timeout`, `keep_alive_timeout` and `limit_concurrency` guard the connections (see
    `tunelab.serve.guards`); the other limits go to `create_app`.
    """
    import uvicorn

    from tunelab.console import errors, say

    problems = [
        f"--{name.replace('_', '-')} must be at least {low}; got {value}."
        for name, value, low in (
            ("header_timeout", header_timeout, 0.1),
            ("keep_alive_timeout", keep_alive_timeout, 1),
            ("limit_concurrency", limit_concurrency, 1),
        )
        if value < low
    ]
    if problems:
        raise ConfigError(problems)
    check_port_free(host, port)
    app = create_app(run_dir, api_key=api_key, **limits)
    state: ServerState = app.state.tunelab
    if api_key is None and host not in ("127.0.0.1", "localhost", "::1"):
        errors.print(
            f"warning: serving on {host} without an API key: anyone who can reach it can use the "
            "model. Set --api-key or TUNELAB_API_KEY.",
            markup=False,
        )
    shown = f"[{host}]" if ":" in host else host
    routes = (
        "POST /v1/predict"
        if isinstance(state.served, ServedClassifier)
        else "POST /v1/completions, /v1/chat/completions"
    )
    say(
        f"serving the {state.served.task} model of {run_dir} at http://{shown}:{port} ({routes}; "
        f"GET /health, /v1/model, /metrics; {'API key required' if api_key else 'no API key'}). "
        "Ctrl+C stops."
    )
    options = uvicorn_options(header_timeout, keep_alive_timeout, limit_concurrency)
    uvicorn.run(app, host=host, port=port, log_level="warning", **options)
