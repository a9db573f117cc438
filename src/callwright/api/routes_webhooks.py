"""Webhooks API: delivery logs and resends (reference §8.4), and the signing secret.

The reference keeps the signing secret behind a dashboard button ("Replace Secret");
callwright has no dashboard, so it is read and rotated here, under
``/v1/webhooks/signing_secret``.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from callwright.api.auth import Org
from callwright.api.errors import ApiError, not_found
from callwright.api.schemas import ErrorB
from callwright.api.services import Svc
from callwright.store import calls
from callwright.store.models import WebhookAttempt, WebhookDelivery
from callwright.store.views import iso
from callwright.webhooks import history, signing_secrets

router = APIRouter(prefix="/v1", tags=["webhooks"])


class ResendRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    call_ids: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        min_length=1, max_length=1000
    )


def data(value: Any) -> JSONResponse:
    return JSONResponse({"data": value, "errors": None})


@router.get("/webhooks/signing_secret", summary="Read the org's webhook signing secret")
async def get_signing_secret(org: Org, svc: Svc) -> JSONResponse:
    async with svc.db.transaction() as session:
        info = await signing_secrets.get(session, svc.box, org, svc.clock.now())
    return data(_secret(info))


@router.post("/webhooks/signing_secret/rotate", summary="Replace the webhook signing secret")
async def rotate_signing_secret(org: Org, svc: Svc) -> JSONResponse:
    async with svc.db.transaction() as session:
        info = await signing_secrets.rotate(session, svc.box, org, svc.clock.now())
    return data(_secret(info))


def _secret(info: signing_secrets.SecretInfo) -> dict[str, Any]:
    return {
        "secret": info.secret,
        "created_at": iso(info.created_at),
        "rotated_at": iso(info.rotated_at),
    }


@router.get("/postcall/webhooks/{call_id}", summary="The post-call webhook of a call")
async def postcall_webhook(call_id: str, org: Org, svc: Svc) -> JSONResponse:
    async with svc.db.session() as session:
        logged = await history.deliveries_of(session, org, call_id, kind="post_call")
    if not logged:
        raise not_found("Post-call webhook")
    return data(_postcall(logged))


@router.post(
    "/postcall/webhooks/resend",
    responses={404: {"model": ErrorB}},
    summary="Send post-call webhooks again",
)
async def resend_postcall(body: ResendRequest, org: Org, svc: Svc) -> JSONResponse:
    try:
        async with svc.db.transaction() as session:
            queued = await history.resend(session, org, body.call_ids, svc.clock.now())
    except history.ResendError as exc:
        raise ApiError(exc.status, exc.code, exc.message, field="call_ids") from None
    return data([_postcall([(row, [])]) for row in queued])


@router.get("/calls/{call_id}/webhooks", summary="A call's webhook deliveries and attempts")
async def call_webhooks(call_id: str, org: Org, svc: Svc) -> JSONResponse:
    async with svc.db.session() as session:
        if await calls.get_call(session, org, call_id) is None:
            raise not_found()
        logged = await history.deliveries_of(session, org, call_id)
    return data([_delivery(row, attempts) for row, attempts in logged])


def _postcall(logged: list[history.Logged]) -> dict[str, Any]:
    """Reference shape; the newest delivery's payload, every attempt of every one."""
    latest = logged[-1][0]
    return {
        "payload": json.loads(latest.body),
        "url": latest.url,
        "created_at": iso(latest.created_at),
        "call_id": latest.call_id,
        "user_id": latest.org_id,
        "metadata": [
            {
                "sent_at": iso(a.at),
                "response_code": a.status_code,
                "response_time": f"{a.latency_ms}ms",
                "send_type": row.send_type,
                "delivery_id": row.delivery_id,
                "error": a.error,
            }
            for row, attempts in logged
            for a in attempts
        ],
    }


def _delivery(row: WebhookDelivery, attempts: list[WebhookAttempt]) -> dict[str, Any]:
    return {
        "delivery_id": row.delivery_id,
        "kind": row.kind,
        "category": row.category,
        "send_type": row.send_type,
        "url": row.url,
        "status": row.status,
        "attempts": row.attempts,
        "created_at": iso(row.created_at),
        "next_attempt_at": iso(row.next_attempt_at) if row.status == "pending" else None,
        "delivered_at": iso(row.delivered_at),
        "last_status_code": row.last_status_code,
        "last_error": row.last_error,
        "payload": json.loads(row.body),
        "attempt_log": [
            {
                "number": a.number,
                "at": iso(a.at),
                "status_code": a.status_code,
                "latency_ms": a.latency_ms,
                "error": a.error,
                "outcome": a.outcome,
            }
            for a in attempts
        ],
    }
