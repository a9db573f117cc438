"""The FastAPI application: routers, error shapes, middlewares. No I/O happens here;
``callwright.server`` builds the services and owns their lifecycle."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from fastapi import FastAPI

from callwright import __version__
from callwright.api import (
    errors,
    routes_calls,
    routes_numbers,
    routes_ops,
    routes_secrets,
    routes_trunks,
)
from callwright.api.metrics import LatencyMiddleware, Metrics
from callwright.api.middleware import (
    AssumeJsonMiddleware,
    BodyLimitMiddleware,
    RequestIdMiddleware,
)
from callwright.api.routes_analysis import router as analysis_router
from callwright.api.routes_chat import router as chat_router
from callwright.api.routes_pathways import router as pathways_router
from callwright.api.routes_recordings import router as recordings_router
from callwright.api.routes_webhooks import router as webhooks_router
from callwright.config import Settings

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def create_app(settings: Settings, metrics: Metrics, lifespan: Lifespan | None = None) -> FastAPI:
    """The app; ``app.state.services`` is set by whoever runs it (the lifespan in
    ``callwright.server``, or a test)."""
    app = FastAPI(
        title="callwright",
        version=__version__,
        description="Self-hosted voice-AI phone agents; Bland-compatible REST API.",
        lifespan=lifespan,
    )
    errors.install(app)
    app.include_router(routes_ops.router)
    app.include_router(routes_calls.router)
    app.include_router(routes_numbers.router)
    app.include_router(routes_trunks.router)
    app.include_router(routes_secrets.router)
    app.include_router(webhooks_router)
    app.include_router(recordings_router)
    app.include_router(analysis_router)
    app.include_router(chat_router)  # before pathways: /pathway/chat/... is not /pathway/{id}
    app.include_router(pathways_router)
    app.add_middleware(AssumeJsonMiddleware)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(LatencyMiddleware, metrics=metrics)
    app.add_middleware(RequestIdMiddleware)
    return app
