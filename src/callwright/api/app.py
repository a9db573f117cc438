"""The FastAPI application: routers, error shapes, middlewares. No I/O happens here;
``callwright.server`` builds the services and owns their lifecycle."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from callwright import __version__
from callwright.api import (
    errors,
    routes_calls,
    routes_numbers,
    routes_ops,
    routes_secrets,
    routes_trunks,
)
from callwright.api.auth import API_KEY_SCHEME, API_KEY_SECURITY, current_org
from callwright.api.metrics import Metrics
from callwright.api.middleware import EdgeMiddleware
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
    otel = settings.opentelemetry
    app = FastAPI(
        title="callwright",
        version=__version__,
        description="Self-hosted voice-AI phone agents; Bland-compatible REST API.",
        lifespan=lifespan,
        # FastAPI's own OpenTelemetry checks its providers on every request; our metrics
        # are Prometheus, so it is on only when an operator asks for it.
        telemetry={"tracing": otel, "metrics": otel, "logs": otel},
    )
    declare_api_key(app)
    errors.install(app)  # after: it documents a 401 where an operation takes the key
    for router in (
        routes_ops.router,
        routes_calls.router,
        routes_numbers.router,
        routes_trunks.router,
        routes_secrets.router,
        webhooks_router,
        recordings_router,
        analysis_router,
        chat_router,  # before pathways: /pathway/chat/... is not /pathway/{id}
        pathways_router,
    ):
        add_routes(app, router)
    app.add_middleware(EdgeMiddleware, metrics=metrics, max_bytes=settings.max_body_bytes)
    return app


def add_routes(app: FastAPI, router: APIRouter) -> None:
    """``include_router`` without the nesting: FastAPI keeps an included router as a
    nested router whose routes are matched twice per request (once to pick the router,
    once inside it). Our routers carry their prefix on each route and take no
    include-time options, so their routes join the app's own list unchanged."""
    app.router.routes.extend(router.routes)


def declare_api_key(app: FastAPI) -> None:
    """State in the OpenAPI document that every operation depending on ``current_org``
    takes the API key (clients and schemathesis learn how to authenticate from it)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            keyed = {
                (route.path_format, method.lower())
                for route in app.routes
                if isinstance(route, APIRoute) and _depends_on(route.dependant, current_org)
                for method in route.methods or ()
            }
            schema = generate()
            schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
            schemes[API_KEY_SCHEME] = API_KEY_SECURITY
            for path, operations in schema["paths"].items():
                for method, operation in operations.items():
                    if (path, method) in keyed:
                        operation["security"] = [{API_KEY_SCHEME: []}]
        return app.openapi_schema or generate()

    app.openapi = openapi  # type: ignore[method-assign]


def _depends_on(dependant: Dependant, call: Callable[..., Any]) -> bool:
    return any(d.call is call or _depends_on(d, call) for d in dependant.dependencies)
