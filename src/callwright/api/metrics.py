"""Prometheus metrics. One registry per app so several apps (tests) never collide."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from sqlalchemy import func, select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from callwright.store.db import Database
from callwright.store.models import ACTIVE_STATUSES, Call


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.calls_by_status = Gauge(
            "callwright_calls", "Calls in the store by status", ["status"], registry=self.registry
        )
        self.active_calls = Gauge(
            "callwright_active_calls",
            "Calls allocated, ringing or in progress",
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "callwright_queue_depth", "Queued calls due now or scheduled", registry=self.registry
        )
        self.local_calls = Gauge(
            "callwright_process_running_calls",
            "Calls this process is running",
            registry=self.registry,
        )
        self.request_latency = Histogram(
            "callwright_http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route", "status"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
        self.dropped = Counter(
            "callwright_malformed_dropped",
            "Malformed inputs dropped, by kind",
            ["kind"],
            registry=self.registry,
        )

    async def render(self, db: Database, running: int) -> bytes:
        async with db.session() as session:
            rows = await session.execute(select(Call.status, func.count()).group_by(Call.status))
            counts = {status: int(n) for status, n in rows.all()}
        for status in (
            "queued",
            "allocated",
            "ringing",
            "in-progress",
            "completed",
            "failed",
            "no-answer",
            "busy",
            "canceled",
        ):
            self.calls_by_status.labels(status).set(counts.get(status, 0))
        self.active_calls.set(sum(counts.get(s, 0) for s in ACTIVE_STATUSES))
        self.queue_depth.set(counts.get("queued", 0))
        self.local_calls.set(running)
        return generate_latest(self.registry)


class LatencyMiddleware:
    """Times every HTTP request by route template (never by raw path: ids would explode
    the label set)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            self.metrics.request_latency.labels(scope["method"], template, str(status)).observe(
                time.perf_counter() - start
            )
