"""Prometheus metrics of one server: requests, latency, queue depth and batch sizes.

Each app owns its CollectorRegistry, so several apps in one process (tests, notebooks) do not
collide on metric names. Routes are labelled by their template (`/v1/predict`), never by the
raw path, so a scan of random URLs cannot grow the label set without bound.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class ServerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "tunelab_requests",
            "HTTP requests answered, by route and status code",
            ["route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "tunelab_request_seconds",
            "Time from request to response, by route",
            ["route"],
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "tunelab_queue_depth", "Requests waiting for the model", registry=self.registry
        )
        self.batch_size = Histogram(
            "tunelab_batch_size",
            "Texts per model call (micro-batches)",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.batch_requests = Histogram(
            "tunelab_batch_requests",
            "Requests sharing one model call",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )

    def observe_batch(self, items: int, requests: int) -> None:
        self.batch_size.observe(items)
        self.batch_requests.observe(requests)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Counts every HTTP response by route template and status, and times it."""

    def __init__(self, app: ASGIApp, metrics: ServerMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # what the client gets if the app raises before responding
        started = time.perf_counter()

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            route: Any = scope.get("route")
            name = getattr(route, "path", None) or "unmatched"
            self.metrics.requests.labels(name, str(status)).inc()
            self.metrics.latency.labels(name).observe(time.perf_counter() - started)
