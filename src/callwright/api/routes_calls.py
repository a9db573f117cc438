"""Calls API (reference §2): send, list, details, stop, active calls, event log."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from callwright.api import schemas
from callwright.api.auth import Org
from callwright.api.call_schema import SendCallRequest, parse_start_time, zone_of
from callwright.api.errors import STYLE_A, ApiError, not_found, strict_json
from callwright.api.phone import to_e164
from callwright.api.services import Services, Svc
from callwright.providers.speech.base import UnknownVoice
from callwright.providers.speech.registry import check_voice
from callwright.store import calls as store
from callwright.store import numbers
from callwright.store.models import ACTIVE_STATUSES, TERMINAL_STATUSES, Call
from callwright.store.pathway_models import Pathway, PathwayVersion
from callwright.store.views import active_object, call_object, event_object

router = APIRouter(prefix="/v1", tags=["calls"])


def ok(body: dict[str, Any], status: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status)


def _call_link(path: str, method: str) -> dict[str, Any]:
    """An OpenAPI link from the new call's id to another call operation (clients and
    schemathesis's stateful phase follow these)."""
    ref = "#/paths/" + path.replace("/", "~1") + "/" + method
    return {"operationRef": ref, "parameters": {"call_id": "$response.body#/call_id"}}


@router.post(
    "/calls",
    openapi_extra=STYLE_A,
    responses={
        200: {
            "model": schemas.SendCallResponse,
            "links": {
                "GetCall": _call_link("/v1/calls/{call_id}", "get"),
                "StopCall": _call_link("/v1/calls/{call_id}/stop", "post"),
                "CallEvents": _call_link("/v1/calls/{call_id}/events", "get"),
            },
        },
        400: {"model": schemas.ErrorA},
        404: {"model": schemas.ErrorA},
        429: {"model": schemas.ErrorA},
    },
    summary="Send a call",
)
async def send_call(body: SendCallRequest, request: Request, org: Org, svc: Svc) -> JSONResponse:
    raw = strict_json(await request.body())
    try:
        check_voice(body.voice, svc.settings)
    except UnknownVoice as exc:
        raise ApiError(400, "INVALID_VOICE", f"voice: {exc}", field="voice") from None
    params = body.normalised()
    now = svc.clock.now()
    scheduled = now
    if body.start_time:
        scheduled = max(parse_start_time(body.start_time), now)
    tz = params["timezone"]
    new = store.NewCall(
        org_id=org,
        to_number=params["phone_number"],
        from_number=params.get("from"),
        request=raw,
        params=params,
        scheduled_at=scheduled,
        pathway_id=body.pathway_id,
        variables=builtin_variables(params, now, tz),
    )
    async with svc.db.transaction() as session:
        if await numbers.is_blocked(session, org, new.to_number):
            # The reference answers a blocked destination with 429 (its "blacklisted number").
            raise ApiError(
                429,
                "NUMBER_BLOCKED",
                "This phone number is blocked for your organization.",
                field="phone_number",
            )
        if body.pathway_id:
            await check_pathway(session, org, body.pathway_id, body.pathway_version)
        call = await store.create_call(session, new, now)
        call.variables = {**call.variables, "call_id": call.id}
    svc.dispatcher.wake()
    return ok(
        {
            "status": "success",
            "message": "Call successfully queued.",
            "call_id": call.id,
            "batch_id": "",
        }
    )


async def check_pathway(
    session: AsyncSession, org: str, pathway_id: str, version: int | str | None
) -> None:
    pathway = await session.get(Pathway, pathway_id)
    if pathway is None or pathway.org_id != org:
        raise ApiError(
            404, "NOT_FOUND", f'Pathway with ID "{pathway_id}" not found', field="pathway_id"
        )
    if isinstance(version, int):
        found = await session.scalar(
            select(PathwayVersion.id).where(
                PathwayVersion.pathway_id == pathway_id,
                PathwayVersion.version_number == version,
                PathwayVersion.archived.is_(False),
            )
        )
        if found is None:
            raise ApiError(
                404, "NOT_FOUND", f"Pathway version {version} not found", field="pathway_version"
            )


def builtin_variables(params: dict[str, Any], now: datetime, tz: str) -> dict[str, Any]:
    local = now.astimezone(zone_of(tz))
    to, from_ = params["phone_number"], params.get("from") or ""
    return {
        "now": local.strftime("%A, %B %d, %Y %I:%M %p"),
        "now_utc": now.isoformat().replace("+00:00", "Z"),
        "timestamp": local.isoformat(),
        "timezone": tz,
        "language": params.get("language"),
        "to": to,
        "from": from_,
        "phone_number": to,
        "short_to": to[2:] if to.startswith("+1") else to,
        "short_from": from_[2:] if from_.startswith("+1") else from_,
    }


@router.get("/calls", responses={200: {"model": schemas.ListCallsResponse}}, summary="List calls")
async def list_calls(
    org: Org,
    svc: Svc,
    from_number: str | None = None,
    to_number: str | None = None,
    start: Annotated[int, Query(alias="from", ge=0, le=10_000_000)] = 0,
    end: Annotated[int | None, Query(alias="to", ge=0, le=10_000_000)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 1000,
    ascending: bool = False,
    sort_by: Literal["created_at", "updated_at"] = "created_at",
    start_date: str | None = None,
    end_date: str | None = None,
    created_at: str | None = None,
    timezone: str = "UTC",
    update_start_date: str | None = None,
    update_end_date: str | None = None,
    completed: bool | None = None,
    batch_id: Annotated[str | None, Query(max_length=64)] = None,
    campaign_id: Annotated[str | None, Query(max_length=64)] = None,
    answered_by: Annotated[str | None, Query(max_length=20)] = None,
    inbound: bool | None = None,
    duration_gt: Annotated[float | None, Query(ge=0)] = None,
    duration_lt: Annotated[float | None, Query(ge=0)] = None,
) -> JSONResponse:
    tzinfo = _zone_param(timezone)
    query: Select[Call] = select(Call).where(Call.org_id == org)
    if from_number:
        query = query.where(Call.from_number == _phone_param("from_number", from_number))
    if to_number:
        query = query.where(Call.to_number == _phone_param("to_number", to_number))
    if created_at and (start_date or end_date):
        raise ApiError(
            400,
            "VALIDATION_ERROR",
            "created_at cannot be combined with start_date/end_date.",
            field="created_at",
        )
    if created_at:
        start_date = end_date = created_at
    if start_date:
        query = query.where(Call.created_at >= _bound("start_date", start_date, tzinfo, False))
    if end_date:
        query = query.where(Call.created_at <= _bound("end_date", end_date, tzinfo, True))
    if update_start_date:
        query = query.where(
            Call.updated_at >= _bound("update_start_date", update_start_date, tzinfo, False)
        )
    if update_end_date:
        query = query.where(
            Call.updated_at <= _bound("update_end_date", update_end_date, tzinfo, True)
        )
    if completed is not None:
        terminal = Call.status.in_(TERMINAL_STATUSES)
        query = query.where(terminal if completed else ~terminal)
    if batch_id or campaign_id:
        query = query.where(Call.batch_id == (batch_id or campaign_id))
    if answered_by:
        query = query.where(Call.answered_by == answered_by)
    if inbound is not None:
        query = query.where(Call.inbound.is_(inbound))
    if duration_gt is not None:
        query = query.where(Call.duration_seconds > duration_gt * 60)
    if duration_lt is not None:
        query = query.where(Call.duration_seconds < duration_lt * 60)
    column = Call.created_at if sort_by == "created_at" else Call.updated_at
    query = query.order_by(column.asc() if ascending else column.desc(), Call.id)
    if end is not None:
        if end < start:
            raise ApiError(400, "VALIDATION_ERROR", "to must not be below from.", field="to")
        limit = min(limit, end - start)
    async with svc.db.session() as session:
        total, rows = await store.count_and_page(session, query, start, limit)
    items = [call_object(c, with_transcripts=False) for c in rows]
    return ok({"total_count": total, "count": len(items), "calls": items})


def _phone_param(name: str, value: str) -> str:
    try:
        return to_e164(value)
    except ValueError as exc:
        raise ApiError(400, "VALIDATION_ERROR", f"{name}: {exc}", field=name) from None


def _zone_param(value: str) -> Any:
    try:
        return zone_of(value)
    except ValueError as exc:
        raise ApiError(400, "VALIDATION_ERROR", f"timezone: {exc}", field="timezone") from None


def _bound(name: str, value: str, tzinfo: Any, upper: bool) -> datetime:
    """A date (whole day in ``timezone``, inclusive) or an ISO datetime with offset."""
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            moment = datetime.combine(day, time.max if upper else time.min, tzinfo)
        else:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=tzinfo)
    except ValueError:
        raise ApiError(
            400,
            "VALIDATION_ERROR",
            f"{name}: must be YYYY-MM-DD or an ISO 8601 datetime.",
            field=name,
        ) from None
    return moment


@router.get(
    "/calls/active",
    responses={200: {"model": schemas.ActiveCallsResponse}, 404: {"model": schemas.ErrorB}},
    summary="List queued and in-progress calls",
)
async def active_calls(
    org: Org, svc: Svc, x_bland_org_id: Annotated[str | None, Header(max_length=64)] = None
) -> JSONResponse:
    if x_bland_org_id and x_bland_org_id != org:
        raise not_found("Organization")
    async with svc.db.session() as session:
        rows = (await session.execute(store.active_query(org))).scalars().all()
    return ok({"data": [active_object(c) for c in rows], "errors": None})


@router.post(
    "/calls/active/stop",
    openapi_extra=STYLE_A,
    responses={200: {"model": schemas.StopAllResponse}},
    summary="Stop every active call",
)
async def stop_all(org: Org, svc: Svc) -> JSONResponse:
    async with svc.db.transaction() as session:
        ids = [c.id for c in (await session.execute(store.active_query(org))).scalars()]
        stopped = 0
        for call_id in ids:
            call = await store.lock_call(session, call_id, org)
            if call is not None and await _stop(session, svc, call):
                stopped += 1
    for call_id in ids:
        svc.dispatcher.request_stop(call_id)
    return ok(
        {"status": "success", "message": f"Stopped {stopped} active calls.", "num_calls": stopped}
    )


@router.get(
    "/calls/{call_id}",
    responses={200: {"model": schemas.CallObject}, 404: {"model": schemas.ErrorB}},
    summary="Call details",
)
async def get_call(call_id: str, org: Org, svc: Svc) -> Response:
    async def read() -> tuple[bytes, bool] | None:
        async with svc.db.session() as session:
            call = await store.get_call(session, org, call_id)
        if call is None:
            return None
        return bytes(ok(call_object(call)).body), call.status in TERMINAL_STATUSES

    body = await svc.call_cache.load(org, call_id, read)
    if body is None:
        raise not_found()
    return Response(body, media_type="application/json")


@router.post(
    "/calls/{call_id}/stop",
    openapi_extra=STYLE_A,
    responses={200: {"model": schemas.StatusMessage}, 404: {"model": schemas.ErrorA}},
    summary="Stop a call",
)
async def stop_call(call_id: str, org: Org, svc: Svc) -> JSONResponse:
    async with svc.db.transaction() as session:
        call = await store.lock_call(session, call_id, org)
        if call is None:
            raise not_found()
        stopped = await _stop(session, svc, call)
    svc.dispatcher.request_stop(call_id)
    message = "Call ended successfully." if stopped else "Call has already ended."
    return ok({"status": "success", "message": message})


async def _stop(session: Any, svc: Services, call: Call) -> bool:
    now = svc.clock.now()
    if call.status in TERMINAL_STATUSES:
        return False
    if call.status == "queued":
        await store.transition(
            session, call, "canceled", now, "Call stopped by API request.", level="queue"
        )
        return True
    if call.status in ACTIVE_STATUSES and not call.stop_requested:
        call.stop_requested = True
        await store.add_event(session, call, now, "stop.requested", "Stop requested by API.")
    return True


@router.get(
    "/calls/{call_id}/events",
    responses={200: {"model": schemas.EventsResponse}},
    summary="Call event log",
)
async def call_events(call_id: str, org: Org, svc: Svc) -> JSONResponse:
    return await _events(call_id, org, svc)


@router.get(
    "/event_stream/{call_id}",
    responses={200: {"model": schemas.EventsResponse}},
    summary="Call event log (reference path)",
)
async def event_stream(call_id: str, org: Org, svc: Svc) -> JSONResponse:
    return await _events(call_id, org, svc)


async def _events(call_id: str, org: str, svc: Services) -> JSONResponse:
    async with svc.db.session() as session:
        call = await store.get_call(session, org, call_id)
        if call is None:
            raise not_found()
        events = await store.list_events(session, org, call_id)
    return ok({"data": [event_object(e) for e in events], "errors": None})
