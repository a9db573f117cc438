"""Health and metrics: unauthenticated, for load balancers and Prometheus."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from callwright.api import schemas
from callwright.api.services import Services

router = APIRouter(tags=["operations"])


@router.get("/healthz", responses={200: {"model": schemas.Health}, 503: {"model": schemas.Health}})
async def healthz(request: Request) -> JSONResponse:
    svc: Services = request.app.state.services
    try:
        await svc.db.ping()
    except Exception as exc:  # report, never raise: a health check must answer
        return JSONResponse({"status": "error", "database": type(exc).__name__}, status_code=503)
    return JSONResponse({"status": "ok", "database": "ok"})


@router.get("/metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    svc: Services = request.app.state.services
    body = await svc.metrics.render(svc.db, len(svc.dispatcher.running))
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")
