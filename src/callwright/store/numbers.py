"""Repositories for inbound/outbound numbers and block rules (all scoped by org)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from callwright.store.number_models import BlockRule, InboundNumber, OutboundNumber


async def is_blocked(
    session: AsyncSession, org_id: str, number: str, inbound_number: str | None = None
) -> BlockRule | None:
    """The active rule blocking ``number`` (globally for the org, or on ``inbound_number``)."""
    scope: ColumnElement[bool] = BlockRule.is_global.is_(True)
    if inbound_number is not None:
        scope = or_(scope, BlockRule.inbound_number == inbound_number)
    rows = await session.execute(
        select(BlockRule)
        .where(
            BlockRule.org_id == org_id,
            BlockRule.blocked_number == number,
            BlockRule.is_active.is_(True),
            scope,
        )
        .limit(1)
    )
    return rows.scalar_one_or_none()


async def get_inbound(session: AsyncSession, org_id: str, number: str) -> InboundNumber | None:
    rows = await session.execute(
        select(InboundNumber).where(
            InboundNumber.org_id == org_id, InboundNumber.phone_number == number
        )
    )
    return rows.scalar_one_or_none()


async def find_inbound(session: AsyncSession, number: str) -> InboundNumber | None:
    """Across orgs: which agent answers a call to ``number`` (the SIP side asks this)."""
    rows = await session.execute(select(InboundNumber).where(InboundNumber.phone_number == number))
    return rows.scalar_one_or_none()


async def list_inbound(session: AsyncSession, org_id: str) -> list[InboundNumber]:
    rows = await session.execute(
        select(InboundNumber)
        .where(InboundNumber.org_id == org_id)
        .order_by(InboundNumber.created_at, InboundNumber.phone_number)
    )
    return list(rows.scalars())


async def list_outbound(session: AsyncSession, org_id: str) -> list[OutboundNumber]:
    rows = await session.execute(
        select(OutboundNumber)
        .where(OutboundNumber.org_id == org_id)
        .order_by(OutboundNumber.created_at, OutboundNumber.phone_number)
    )
    return list(rows.scalars())


async def touch_outbound(session: AsyncSession, org_id: str, number: str, now: datetime) -> None:
    rows = await session.execute(
        select(OutboundNumber).where(
            OutboundNumber.org_id == org_id, OutboundNumber.phone_number == number
        )
    )
    found = rows.scalar_one_or_none()
    if found is not None:
        found.last_initiated = now
