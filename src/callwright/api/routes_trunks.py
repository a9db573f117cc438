"""SIP trunks (reference §7.2: ``/v1/sip/trunks``, detailed in its SIP guide).

A trunk is the connection the SIP user agent dials through (and, for ``register``
trunks, registers to): host, port, transport, credentials, the caller id it presents,
and the numbers it carries. The password is sealed at rest and never returned; responses
say ``has_password`` instead. Responses use the reference's ``{data, errors}`` envelope.

Choices where the reference is silent: ``direction`` defaults to ``outbound`` (what a
trunk is for when it is first added); ``provider`` defaults to ``custom``; PATCH with
``numbers`` replaces the list; a number may be bound to one trunk of the org only (409),
so an outbound call's route is never ambiguous. ``test-connection`` (a SIP OPTIONS ping)
belongs to the SIP user agent and is not served here.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from callwright.api.auth import Org
from callwright.api.errors import ApiError, not_found
from callwright.api.schemas import ErrorB
from callwright.api.services import Svc
from callwright.api.trunk_schema import (
    REGISTER_PASSWORD_MIN,
    CreateTrunk,
    TrunkDeletedResponse,
    TrunkFields,
    TrunkListResponse,
    TrunkResponse,
    parse_endpoint,
    render_endpoint,
)
from callwright.store import crypto
from callwright.store import trunks as store
from callwright.store.trunk_models import SipTrunk
from callwright.store.views import iso

router = APIRouter(prefix="/v1/sip", tags=["sip"])
TrunkId = Annotated[str, Path(min_length=1, max_length=36)]


DIRECTIONS = {"inbound": ["inbound"], "outbound": ["outbound"], "both": ["inbound", "outbound"]}


def _links() -> dict[str, Any]:
    """OpenAPI links from a created trunk to the operations on it (clients and
    schemathesis's stateful phase follow these)."""
    ref = "#/paths/~1v1~1sip~1trunks~1{trunk_id}/"
    param = {"trunk_id": "$response.body#/data/trunk_id"}
    return {
        f"{name}Trunk": {"operationRef": ref + method, "parameters": param}
        for name, method in (("Get", "get"), ("Update", "patch"), ("Delete", "delete"))
    }


def trunk_object(row: SipTrunk) -> dict[str, Any]:
    directions = DIRECTIONS[row.direction]
    return {
        "trunk_id": row.id,
        "name": row.name,
        "provider": row.provider,
        "direction": row.direction,
        "sip_endpoint": render_endpoint(row.host, row.port, row.transport),
        "host": row.host,
        "port": row.port,
        "transport": row.transport,
        "auth_mode": row.auth_mode,
        "username": row.username,
        "has_password": row.password_sealed is not None,
        "caller_id": row.caller_id,
        "headers": row.headers,
        "bound_numbers": [{"phone_number": n, "directions": directions} for n in row.numbers],
        "bound_number_count": len(row.numbers),
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
    }


def data(value: Any) -> JSONResponse:
    return JSONResponse({"data": value, "errors": None})


def invalid(field: str, message: str) -> ApiError:
    return ApiError(400, "VALIDATION_ERROR", f"{field}: {message}", field=field)


def _connection(body: TrunkFields) -> dict[str, Any]:
    """host/port/transport the body sets, from ``sip_endpoint`` and the flat fields;
    where both give one, they must agree."""
    sent: dict[str, Any] = {}
    if body.sip_endpoint is not None:
        host, port, transport = parse_endpoint(body.sip_endpoint)
        sent["host"] = host
        if port is not None:
            sent["port"] = port
        if transport is not None:
            sent["transport"] = transport
    for name in ("host", "port", "transport"):
        value = getattr(body, name)
        if value is None:
            continue
        if sent.get(name, value) != value:
            raise invalid(name, f"{value} disagrees with sip_endpoint ({sent[name]}).")
        sent[name] = value
    return sent


def _credentials(body: TrunkFields) -> dict[str, Any]:
    """username/password the body sets (``register_auth`` or the flat fields); a field
    sent as null clears it."""
    if body.register_auth is not None:
        if {"username", "password"} & body.model_fields_set:
            raise invalid("register_auth", "give register_auth or username/password, not both.")
        return {
            "username": body.register_auth.username,
            "password": body.register_auth.password.get_secret_value(),
        }
    sent: dict[str, Any] = {}
    if "username" in body.model_fields_set:
        sent["username"] = body.username
    if "password" in body.model_fields_set:
        sent["password"] = None if body.password is None else body.password.get_secret_value()
    return sent


async def _apply(
    session: AsyncSession, box: crypto.SecretBox, row: SipTrunk, body: TrunkFields
) -> None:
    """Write what ``body`` sets onto ``row``, then check the result as a whole."""
    connection = _connection(body)
    if body.sip_endpoint is not None:
        # A new endpoint replaces the whole address: what it leaves out is the default.
        connection = {"port": None, "transport": "udp", **connection}
    for name, value in connection.items():
        setattr(row, name, value)
    for name in ("name", "provider", "direction", "auth_mode", "headers"):
        value = getattr(body, name)
        if value is not None:
            setattr(row, name, value)
    if "caller_id" in body.model_fields_set:
        row.caller_id = body.caller_id
    credentials = _credentials(body)
    if "username" in credentials:
        row.username = credentials["username"]
    password = credentials.get("password")
    if "password" in credentials:
        row.password_sealed = None if password is None else box.seal(password)
    if body.numbers is not None:
        taken = await store.numbers_taken(session, row.org_id, body.numbers, except_trunk=row.id)
        if taken:
            number, other = next(iter(taken.items()))
            raise ApiError(
                409,
                "NUMBER_UNAVAILABLE",
                f"{number} is already bound to trunk {other}; remove it there first.",
                field="numbers",
            )
        row.numbers = body.numbers
    _check(row, body, password)


def _check(row: SipTrunk, body: TrunkFields, new_password: str | None) -> None:
    if not row.host:
        raise invalid("sip_endpoint", "give sip_endpoint (or host).")
    if row.password_sealed is not None and not row.username:
        raise invalid("username", "a password needs a username.")
    if row.auth_mode == "register":
        field = "register_auth" if body.register_auth is not None else "password"
        if row.password_sealed is None or not row.username:
            raise invalid(
                "register_auth", "auth_mode register needs register_auth (username and password)."
            )
        if new_password is not None and len(new_password) < REGISTER_PASSWORD_MIN:
            raise invalid(
                field, f"a REGISTER password needs at least {REGISTER_PASSWORD_MIN} characters."
            )


async def _trunk(session: AsyncSession, org: str, trunk_id: str) -> SipTrunk:
    row = await store.get_trunk(session, org, trunk_id)
    if row is None:
        raise not_found("Trunk")
    return row


@router.post(
    "/trunks",
    responses={200: {"model": TrunkResponse, "links": _links()}, 409: {"model": ErrorB}},
    summary="Create a SIP trunk",
)
async def create_trunk(body: CreateTrunk, org: Org, svc: Svc) -> JSONResponse:
    now = svc.clock.now()
    row = SipTrunk(
        id=store.new_trunk_id(),
        org_id=org,
        name=body.name,
        provider="custom",
        direction="outbound",
        host="",
        port=None,
        transport="udp",
        auth_mode="ip",
        headers={},
        numbers=[],
        created_at=now,
        updated_at=now,
    )
    async with svc.db.transaction() as session:
        await _apply(session, svc.box, row, body)
        session.add(row)
    return data(trunk_object(row))


@router.get("/trunks", responses={200: {"model": TrunkListResponse}}, summary="List SIP trunks")
async def list_trunks(org: Org, svc: Svc) -> JSONResponse:
    async with svc.db.session() as session:
        rows = await store.list_trunks(session, org)
    return data({"trunks": [trunk_object(r) for r in rows]})


@router.get(
    "/trunks/{trunk_id}",
    responses={200: {"model": TrunkResponse}},
    summary="Get a SIP trunk and its numbers",
)
async def get_trunk(trunk_id: TrunkId, org: Org, svc: Svc) -> JSONResponse:
    async with svc.db.session() as session:
        row = await _trunk(session, org, trunk_id)
    return data(trunk_object(row))


@router.patch(
    "/trunks/{trunk_id}",
    responses={200: {"model": TrunkResponse}, 409: {"model": ErrorB}},
    summary="Update a SIP trunk",
)
async def update_trunk(trunk_id: TrunkId, body: TrunkFields, org: Org, svc: Svc) -> JSONResponse:
    async with svc.db.transaction() as session:
        row = await _trunk(session, org, trunk_id)
        await _apply(session, svc.box, row, body)
        row.updated_at = svc.clock.now()
        result = trunk_object(row)
    return data(result)


@router.delete(
    "/trunks/{trunk_id}",
    responses={200: {"model": TrunkDeletedResponse}},
    summary="Delete a SIP trunk",
)
async def delete_trunk(trunk_id: TrunkId, org: Org, svc: Svc) -> JSONResponse:
    async with svc.db.transaction() as session:
        row = await _trunk(session, org, trunk_id)
        unbound = await store.delete_trunk(session, row)
    return data({"trunk_id": trunk_id, "unbound_number_count": unbound})
