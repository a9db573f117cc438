"""Inbound phone calls: which agent answers an INVITE, and the call's record.

Theory of operation
-------------------
1. ``admit`` runs before the user agent answers. The called number (the request URI's
   user part, normalised to E.164) must be an inbound number (else 404) with an agent
   configured (a prompt or a pathway; else 480); the caller must not be blocked for the
   org or on that number (403); the org must be below ``max_calls_per_org`` live calls
   (486, recorded as a failed inbound call so the org sees whom it missed). Beyond the
   process's capacity the user agent itself answers 503 before asking us.
2. ``on_call`` runs once the call is answered. In one transaction it re-checks the org
   limit under the org row's lock (two INVITEs may have passed ``admit`` together),
   creates the call row (``inbound``, parameters from the number's agent config) and
   moves it allocated -> in-progress, holding a lease like a dispatched call: if this
   process dies, lease expiry fails the call instead of leaving it live forever.
3. The conversation runs through the ``ConversationRunner``; when it ends the call is
   completed (or failed, with ``error_message``), each transition committed as it
   happens. A renewal loop extends the leases and hangs up calls the API stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from callwright.clock import Clock
from callwright.dispatch import queue
from callwright.dispatch.sip import Converse, RtpTotals, SipPort, ended_by, ending_message
from callwright.store import calls, numbers
from callwright.store.db import Database
from callwright.store.models import ACTIVE_STATUSES, Call, Org
from callwright.store.number_models import InboundNumber
from callwright.telephony.sip_call import InboundCall, SipCall

log = logging.getLogger("callwright.dispatch.inbound")

NOT_FOUND = 404
BLOCKED = 403
NO_AGENT = 480
ORG_BUSY = 486
FAILED = "Call failed."
SHUTDOWN = "The server shut down during the call."
STOPPED = "Call ended by API request."

# Parameters an inbound call takes from its number's agent config when unset there.
DEFAULTS: dict[str, Any] = {
    "model": "base",
    "language": "en-US",
    "wait_for_greeting": False,
    "temperature": 0.7,
    "interruption_threshold": 500,
    "block_interruptions": False,
    "timezone": "America/Los_Angeles",
    "max_duration": 30,
    "record": False,
    "request_data": {},
    "metadata": {},
}
_SEPARATORS = re.compile(r"[\s().-]")


def number_candidates(user: str) -> list[str]:
    """E.164 forms a SIP user part may stand for (``+15550100``, ``0015550100``,
    ``15550100``; ten digits may also be a North American number without its 1)."""
    text = _SEPARATORS.sub("", user)
    if text.startswith("+") and text[1:].isdigit():
        return [text]
    if text.startswith("00") and text[2:].isdigit():
        return ["+" + text[2:]]
    if not text.isdigit():
        return []
    found = ["+" + text]
    if len(text) == 10:
        found.append("+1" + text)
    return found


def call_params(number: InboundNumber) -> dict[str, Any]:
    """The call parameters the number's agent config describes (``prompt`` is the task)."""
    config = {k: v for k, v in number.config.items() if v is not None}
    params = {**DEFAULTS, **config}
    params["task"] = params.pop("prompt", None)
    return params


@dataclass(slots=True)
class InboundStats:
    """Counters for ``/metrics``: calls answered, and INVITEs refused by reason."""

    answered: int = 0
    unknown_number: int = 0
    no_agent: int = 0
    blocked: int = 0
    org_limit: int = 0

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(slots=True)
class _Live:
    call: SipCall
    stopped: bool = False


class InboundCalls:
    """``admit`` and ``on_call`` for the user agent (see the module docstring)."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        converse: Converse,
        *,
        worker_id: str,
        lease_seconds: float,
        per_org_limit: int,
        rtp: RtpTotals | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.converse = converse
        self.worker_id = worker_id
        self.lease = timedelta(seconds=lease_seconds)
        self.per_org_limit = per_org_limit
        self.rtp = rtp or RtpTotals()
        self.stats = InboundStats()
        self.live: dict[str, _Live] = {}
        self._renewer: asyncio.Task[None] | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        self._renewer = asyncio.create_task(self._lease_loop(), name="sip-inbound-lease")

    async def close(self) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer

    # -- before answering ------------------------------------------------------------------
    async def admit(self, info: InboundCall) -> int | None:
        async with self.db.session() as session:
            number = await _find_number(session, info.to_number)
            if number is None:
                self.stats.unknown_number += 1
                log.info("sip.inbound.unknown_number", extra={"to": info.to_number})
                return NOT_FOUND
            if not number.config.get("prompt") and not number.config.get("pathway_id"):
                self.stats.no_agent += 1
                log.info("sip.inbound.no_agent", extra={"to": number.phone_number})
                return NO_AGENT
            caller = _caller(info)
            if caller and await numbers.is_blocked(
                session, number.org_id, caller, number.phone_number
            ):
                self.stats.blocked += 1
                log.info("sip.inbound.blocked", extra={"to": number.phone_number})
                return BLOCKED
            if await _active(session, number.org_id) < self.per_org_limit:
                return None
        await self._record_refusal(number, info)
        return ORG_BUSY

    async def _record_refusal(self, number: InboundNumber, info: InboundCall) -> None:
        self.stats.org_limit += 1
        message = (
            f"Refused (486): the org already has {self.per_org_limit} live calls "
            "(max_calls_per_org)."
        )
        log.warning("sip.inbound.org_limit", extra={"to": number.phone_number})
        async with self.db.transaction() as session:
            now = self.clock.now()
            call = await calls.create_call(session, _new_call(number, info, now), now)
            await calls.transition(session, call, "failed", now, message, error_message=message)

    # -- the answered call -----------------------------------------------------------------
    async def on_call(self, sip_call: SipCall, info: InboundCall) -> None:
        call_id = await self._open(info)
        if call_id is None:
            return  # refused after all (the org limit, raced); the user agent hangs up
        self.stats.answered += 1
        live = self.live[call_id] = _Live(sip_call)
        try:
            result = await self.converse(SipPort(sip_call), call_id)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._finish(call_id, "failed", SHUTDOWN, SHUTDOWN))
            raise
        except Exception as exc:
            log.exception("sip.inbound.failed", extra={"call_id": call_id})
            await self._finish(call_id, "failed", f"Internal error ({type(exc).__name__}).", FAILED)
        else:
            if live.stopped:
                await self._finish(call_id, "completed", STOPPED, ended="ASSISTANT")
            else:
                await self._finish(
                    call_id, "completed", ending_message(result), ended=ended_by(result)
                )
        finally:
            self.live.pop(call_id, None)
            self.rtp.add(sip_call.media)

    async def _open(self, info: InboundCall) -> str | None:
        """The new call's id, allocated to us and in progress; None if refused."""
        async with self.db.transaction() as session:
            number = await _find_number(session, info.to_number)
            if number is None:
                return None  # deleted while ringing
            org_id = number.org_id
            await session.execute(select(Org.id).where(Org.id == org_id).with_for_update())
            now = self.clock.now()
            new = _new_call(number, info, now)
            if await _active(session, org_id) >= self.per_org_limit:
                self.stats.org_limit += 1
                message = f"Refused: the org already has {self.per_org_limit} live calls."
                call = await calls.create_call(session, new, now)
                await calls.transition(session, call, "failed", now, message, error_message=message)
                return None
            call = await calls.create_call(session, new, now)
            call.variables = {**call.variables, "call_id": call.id}
            call.attempts = 1
            call.lease_owner = self.worker_id
            call.lease_expires_at = now + self.lease
            await calls.transition(
                session,
                call,
                "allocated",
                now,
                "Inbound call allocated to a worker",
                level="queue",
                data={"worker": self.worker_id, "sip_call_id": info.call_id_sip},
            )
            await calls.transition(
                session,
                call,
                "in-progress",
                now,
                f"Inbound call from {new.from_number or 'an anonymous caller'} answered",
                data={"remote": f"{info.remote[0]}:{info.remote[1]}", "transport": info.transport},
            )
            return call.id

    async def _finish(
        self,
        call_id: str,
        status: str,
        message: str,
        error_message: str | None = None,
        *,
        ended: str | None = None,
    ) -> None:
        async with self.db.transaction() as session:
            call = await queue.lock_if_owned(session, call_id, self.worker_id)
            if call is None:
                log.warning("sip.inbound.not_owned", extra={"call_id": call_id})
                return
            if ended is not None:
                call.call_ended_by = ended
            await calls.transition(
                session, call, status, self.clock.now(), message, error_message=error_message
            )

    # -- leases ------------------------------------------------------------------------------
    async def _lease_loop(self) -> None:
        while True:
            await asyncio.sleep(self.lease.total_seconds() / 3)
            try:
                await self.renew_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("sip.inbound.renew_failed")

    async def renew_once(self) -> None:
        ids = list(self.live)
        if not ids:
            return
        async with self.db.transaction() as session:
            held, stops = await queue.renew(
                session, self.worker_id, ids, self.clock.now(), self.lease
            )
        for call_id in ids:
            live = self.live.get(call_id)
            if live is None or (call_id in held and call_id not in stops):
                continue
            live.stopped = True
            await live.call.hang_up()


async def _find_number(session: AsyncSession, user: str) -> InboundNumber | None:
    for candidate in number_candidates(user):
        found = await numbers.find_inbound(session, candidate)
        if found is not None:
            return found
    return None


async def _active(session: AsyncSession, org_id: str) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(Call)
        .where(Call.org_id == org_id, Call.status.in_(ACTIVE_STATUSES))
    )
    return int(count or 0)


def _caller(info: InboundCall) -> str | None:
    found = number_candidates(info.from_number)
    return found[0] if found else None


def _new_call(number: InboundNumber, info: InboundCall, now: datetime) -> calls.NewCall:
    caller = _caller(info) or (info.from_number[:32] or None)
    params = call_params(number)
    return calls.NewCall(
        org_id=number.org_id,
        to_number=number.phone_number,
        from_number=caller,
        request={"inbound": True, "from": info.from_uri, "to": info.to_uri},
        params=params,
        scheduled_at=now,
        pathway_id=params.get("pathway_id"),
        inbound=True,
        variables={
            "from": caller or "",
            "to": number.phone_number,
            "phone_number": caller or "",
            "timezone": params.get("timezone"),
            "language": params.get("language"),
            "now_utc": now.isoformat().replace("+00:00", "Z"),
            "inbound": True,
        },
    )
