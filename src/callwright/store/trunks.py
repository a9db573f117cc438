"""Repository for SIP trunks (all scoped by org), and what the SIP side needs to dial.

Two things bind a number to a trunk: the trunk's own ``numbers`` list (``/v1/sip/trunks``)
and an outbound caller id's ``trunk_id`` (``/v1/outbound``). ``outbound_trunk`` reads both,
so a call finds its trunk whichever way the org set it up.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from callwright.store.crypto import SecretBox
from callwright.store.number_models import OutboundNumber
from callwright.store.trunk_models import SipTrunk

ID_PREFIX = "trk_"
OUTBOUND_DIRECTIONS = ("outbound", "both")


def new_trunk_id() -> str:
    return ID_PREFIX + uuid.uuid4().hex


@dataclass(frozen=True, slots=True)
class TrunkTarget:
    """A trunk as the SIP user agent dials it: credentials in the clear, so keep it in
    memory only (its repr hides the password)."""

    trunk_id: str
    host: str
    port: int | None
    transport: str
    auth_mode: str
    username: str | None
    password: str | None = field(repr=False)
    caller_id: str | None
    headers: dict[str, Any]


def target(box: SecretBox, trunk: SipTrunk) -> TrunkTarget:
    password = None if trunk.password_sealed is None else box.open(trunk.password_sealed)
    return TrunkTarget(
        trunk_id=trunk.id,
        host=trunk.host,
        port=trunk.port,
        transport=trunk.transport,
        auth_mode=trunk.auth_mode,
        username=trunk.username,
        password=password,
        caller_id=trunk.caller_id,
        headers=dict(trunk.headers),
    )


async def list_trunks(session: AsyncSession, org_id: str) -> list[SipTrunk]:
    rows = await session.execute(
        select(SipTrunk).where(SipTrunk.org_id == org_id).order_by(SipTrunk.created_at, SipTrunk.id)
    )
    return list(rows.scalars())


async def get_trunk(session: AsyncSession, org_id: str, trunk_id: str) -> SipTrunk | None:
    rows = await session.execute(
        select(SipTrunk).where(SipTrunk.org_id == org_id, SipTrunk.id == trunk_id)
    )
    return rows.scalar_one_or_none()


async def numbers_taken(
    session: AsyncSession, org_id: str, numbers: Iterable[str], *, except_trunk: str | None
) -> dict[str, str]:
    """Which of ``numbers`` another trunk of the org already carries: number -> trunk id."""
    wanted = set(numbers)
    taken: dict[str, str] = {}
    for trunk in await list_trunks(session, org_id):
        if trunk.id == except_trunk:
            continue
        for number in trunk.numbers:
            if number in wanted:
                taken.setdefault(number, trunk.id)
    return taken


async def delete_trunk(session: AsyncSession, trunk: SipTrunk) -> int:
    """Delete the trunk; numbers bound to it stay (as caller ids), unbound. Returns how
    many numbers were unbound."""
    outbound = await session.execute(
        select(OutboundNumber.phone_number).where(
            OutboundNumber.org_id == trunk.org_id, OutboundNumber.trunk_id == trunk.id
        )
    )
    unbound = set(trunk.numbers) | set(outbound.scalars())
    await session.execute(
        update(OutboundNumber)
        .where(OutboundNumber.org_id == trunk.org_id, OutboundNumber.trunk_id == trunk.id)
        .values(trunk_id=None)
    )
    await session.delete(trunk)
    return len(unbound)


async def outbound_trunk(
    session: AsyncSession, org_id: str, from_number: str | None
) -> SipTrunk | None:
    """The trunk an outbound call from ``from_number`` goes through: the one its caller id
    names, else the one that carries the number, else the org's oldest outbound trunk."""
    trunks = [t for t in await list_trunks(session, org_id) if t.direction in OUTBOUND_DIRECTIONS]
    if not trunks:
        return None
    if from_number is not None:
        rows = await session.execute(
            select(OutboundNumber.trunk_id).where(
                OutboundNumber.org_id == org_id, OutboundNumber.phone_number == from_number
            )
        )
        named = rows.scalar_one_or_none()
        for trunk in trunks:
            if trunk.id == named:
                return trunk
        for trunk in trunks:
            if from_number in trunk.numbers:
                return trunk
    return trunks[0]
