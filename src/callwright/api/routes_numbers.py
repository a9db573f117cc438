"""Phone numbers (reference §7): inbound agents, outbound caller ids, block rules.

Self-hosted numbers reach callwright through the org's own SIP trunk or PBX, so "insert"
registers numbers the org already owns; nothing is purchased. The ``encrypted_key``
header (Twilio BYOT on the hosted platform) is accepted and ignored.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from callwright.api.auth import Org
from callwright.api.errors import STYLE_A, ApiError, not_found
from callwright.api.number_schema import (
    CLEARED_BY_PATHWAY,
    INBOUND_DEFAULTS,
    AddOutbound,
    CreateBlocks,
    EditBlock,
    InboundUpdate,
    InsertNumbers,
    UpdateLabel,
)
from callwright.api.phone import to_e164
from callwright.api.schemas import ErrorA, ErrorB
from callwright.api.services import Svc
from callwright.store import numbers as store
from callwright.store.number_models import BlockRule, InboundNumber, OutboundNumber
from callwright.store.views import iso

router = APIRouter(tags=["numbers"])


BlockId = Annotated[int, Path(ge=1, le=2**53)]


def path_number(raw: str) -> str:
    try:
        return to_e164(raw)
    except ValueError as exc:
        raise ApiError(
            400, "INVALID_PHONE_NUMBER", f"phone_number {exc}.", field="phone_number"
        ) from None


def inbound_object(row: InboundNumber) -> dict[str, Any]:
    return {
        **INBOUND_DEFAULTS,
        **row.config,
        "phone_number": row.phone_number,
        "label": row.label,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
    }


@router.get("/v1/inbound", summary="List inbound numbers")
async def list_inbound(org: Org, svc: Svc) -> JSONResponse:
    async with svc.db.session() as session:
        rows = await store.list_inbound(session, org)
    return JSONResponse({"inbound_numbers": [inbound_object(r) for r in rows]})


@router.post(
    "/v1/inbound/insert",
    openapi_extra=STYLE_A,
    responses={409: {"model": ErrorA}},
    summary="Add inbound numbers",
)
async def insert_inbound(body: InsertNumbers, org: Org, svc: Svc) -> JSONResponse:
    now = svc.clock.now()
    inserted: list[str] = []
    async with svc.db.transaction() as session:
        for number in dict.fromkeys(body.numbers):
            found = await store.find_inbound(session, number)
            if found is not None and found.org_id != org:
                raise ApiError(
                    409,
                    "NUMBER_UNAVAILABLE",
                    f"{number} is registered to another organization.",
                    field="numbers",
                )
            if found is None:
                session.add(
                    InboundNumber(
                        id=str(uuid.uuid4()),
                        org_id=org,
                        phone_number=number,
                        config={},
                        created_at=now,
                        updated_at=now,
                    )
                )
                inserted.append(number)
    return JSONResponse(
        {"status": "success", "message": f"Inserted {len(inserted)} numbers.", "inserted": inserted}
    )


@router.get("/v1/inbound/{phone_number}", summary="Inbound number details")
async def get_inbound(phone_number: str, org: Org, svc: Svc) -> JSONResponse:
    number = path_number(phone_number)
    async with svc.db.session() as session:
        row = await store.get_inbound(session, org, number)
    if row is None:
        raise not_found("Phone number")
    return JSONResponse(inbound_object(row))


@router.post("/v1/inbound/{phone_number}", openapi_extra=STYLE_A, summary="Update an inbound agent")
async def update_inbound(
    phone_number: str, body: InboundUpdate, org: Org, svc: Svc
) -> JSONResponse:
    number = path_number(phone_number)
    sent = body.model_dump(include=body.model_fields_set, mode="json")
    sent.update(body.model_extra or {})
    async with svc.db.transaction() as session:
        row = await store.get_inbound(session, org, number)
        if row is None:
            raise not_found("Phone number")
        config = dict(row.config)
        if sent.get("pathway_id"):
            for name in CLEARED_BY_PATHWAY:
                config.pop(name, None)
        config.update(sent)
        if not config.get("prompt") and not config.get("pathway_id"):
            raise ApiError(
                400,
                "VALIDATION_ERROR",
                "prompt is required unless pathway_id is set.",
                field="prompt",
            )
        row.config = config
        row.updated_at = svc.clock.now()
    return JSONResponse(
        {"status": "success", "message": "Inbound number updated.", "updates": sent}
    )


@router.post(
    "/v1/inbound/{phone_number}/delete", openapi_extra=STYLE_A, summary="Remove an inbound number"
)
async def delete_inbound(phone_number: str, org: Org, svc: Svc) -> JSONResponse:
    number = path_number(phone_number)
    async with svc.db.transaction() as session:
        row = await store.get_inbound(session, org, number)
        if row is None:
            raise not_found("Phone number")
        await session.delete(row)
    return JSONResponse({"status": "success", "message": "Inbound number removed."})


@router.post(
    "/inbound/update_label", responses={404: {"model": ErrorB}}, summary="Label an inbound number"
)
async def update_label(body: UpdateLabel, org: Org, svc: Svc) -> JSONResponse:
    number = path_number(body.phoneNumber)
    async with svc.db.transaction() as session:
        row = await store.get_inbound(session, org, number)
        if row is None:
            raise not_found("Phone number")
        row.label = body.newLabel or None
        row.updated_at = svc.clock.now()
    return JSONResponse(
        {
            "data": {"message": "Label updated.", "phone_number": number, "label": row.label},
            "errors": None,
        }
    )


@router.get("/v1/outbound", summary="List outbound numbers")
async def list_outbound(org: Org, svc: Svc) -> JSONResponse:
    async with svc.db.session() as session:
        rows = await store.list_outbound(session, org)
    return JSONResponse({"outbound_numbers": [_outbound(r) for r in rows]})


def _outbound(row: OutboundNumber) -> dict[str, Any]:
    return {
        "phone_number": row.phone_number,
        "trunk_id": row.trunk_id,
        "created_at": iso(row.created_at),
        "last_initiated": iso(row.last_initiated),
    }


@router.post(
    "/v1/outbound",
    openapi_extra=STYLE_A,
    responses={409: {"model": ErrorA}},
    summary="Add an outbound caller id",
)
async def add_outbound(body: AddOutbound, org: Org, svc: Svc) -> JSONResponse:
    row = OutboundNumber(
        id=str(uuid.uuid4()),
        org_id=org,
        phone_number=body.phone_number,
        trunk_id=body.trunk_id,
        created_at=svc.clock.now(),
    )
    try:
        async with svc.db.transaction() as session:
            session.add(row)
    except IntegrityError:
        raise ApiError(
            409,
            "ALREADY_EXISTS",
            f"{body.phone_number} is already an outbound number.",
            field="phone_number",
        ) from None
    return JSONResponse({"status": "success", **_outbound(row)})


def block_object(rule: BlockRule) -> dict[str, Any]:
    return {
        "id": rule.id,
        "blocked_number": rule.blocked_number,
        "is_global": rule.is_global,
        "inbound_number": rule.inbound_number,
        "org_id": rule.org_id,
        "reason": rule.reason,
        "is_active": rule.is_active,
        "created_at": iso(rule.created_at),
        "updated_at": iso(rule.updated_at),
    }


@router.post(
    "/v1/blocked_numbers", responses={404: {"model": ErrorB}}, summary="Create block rules"
)
async def create_blocks(body: CreateBlocks, org: Org, svc: Svc) -> JSONResponse:
    if body.is_global == (body.inbound_number is not None):
        raise ApiError(
            400,
            "VALIDATION_ERROR",
            "Give inbound_number for a rule that is not global, and not both.",
            field="inbound_number",
        )
    now = svc.clock.now()
    async with svc.db.transaction() as session:
        if (
            body.inbound_number
            and await store.get_inbound(session, org, body.inbound_number) is None
        ):
            raise not_found("Inbound number")
        rules = [
            BlockRule(
                org_id=org,
                blocked_number=n,
                is_global=body.is_global,
                inbound_number=body.inbound_number,
                reason=body.reason,
                is_active=True,
                created_at=now,
                updated_at=now,
            )
            for n in dict.fromkeys(body.numbers)
        ]
        session.add_all(rules)
        await session.flush()
        blocks = [block_object(r) for r in rules]
    return JSONResponse({"data": {"created_count": len(blocks), "blocks": blocks}, "errors": None})


@router.get("/v1/blocked_numbers", summary="List block rules")
async def list_blocks(
    org: Org,
    svc: Svc,
    inbound_number: str | None = None,
    active_only: bool = True,
    limit: Annotated[int, Query(ge=1, le=1000)] = 1000,
) -> JSONResponse:
    query = select(BlockRule).where(BlockRule.org_id == org)
    number = path_number(inbound_number) if inbound_number else None
    if number is None:
        query = query.where(BlockRule.is_global.is_(True))
    else:
        query = query.where(BlockRule.inbound_number == number)
    if active_only:
        query = query.where(BlockRule.is_active.is_(True))
    async with svc.db.session() as session:
        rules = list((await session.execute(query.order_by(BlockRule.id).limit(limit))).scalars())
    return JSONResponse(
        {
            "data": {
                "blocks": [block_object(r) for r in rules],
                "total_count": len(rules),
                "filters": {"inbound_number": number, "active_only": active_only},
            },
            "errors": None,
        }
    )


async def _rule(session: Any, org: str, block_id: int) -> BlockRule:
    rule = await session.get(BlockRule, block_id)
    if rule is None or rule.org_id != org:
        raise not_found("Block rule")
    assert isinstance(rule, BlockRule)
    return rule


@router.get("/v1/blocked_numbers/{block_id}", summary="Get a block rule")
async def get_block(block_id: BlockId, org: Org, svc: Svc) -> JSONResponse:
    async with svc.db.session() as session:
        rule = await _rule(session, org, block_id)
    return JSONResponse({"data": block_object(rule), "errors": None})


@router.post("/v1/blocked_numbers/{block_id}/edit", summary="Edit a block rule")
async def edit_block(block_id: BlockId, body: EditBlock, org: Org, svc: Svc) -> JSONResponse:
    async with svc.db.transaction() as session:
        rule = await _rule(session, org, block_id)
        if "reason" in body.model_fields_set:
            rule.reason = body.reason
        if body.is_active is not None:
            rule.is_active = body.is_active
        rule.updated_at = svc.clock.now()
        result = block_object(rule)
    return JSONResponse({"data": result, "errors": None})


@router.delete("/v1/blocked_numbers/{block_id}", summary="Delete a block rule")
async def delete_block(block_id: BlockId, org: Org, svc: Svc) -> JSONResponse:
    async with svc.db.transaction() as session:
        rule = await _rule(session, org, block_id)
        await session.delete(rule)
    return JSONResponse(
        {"data": {"message": "Block rule deleted.", "deleted_block_id": block_id}, "errors": None}
    )
